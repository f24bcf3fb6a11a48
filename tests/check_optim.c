#include "config.h"

#include "tests.h"

Suite *optim_suite(void)
{
    return suite_create("optim");
}
