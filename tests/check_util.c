#include "config.h"

#include "tests.h"

Suite *util_suite(void)
{
    return suite_create("util");
}
