#include "config.h"

#include "tests.h"

Suite *net_suite(void)
{
    return suite_create("net");
}
