#include "config.h"

#include "tests.h"

Suite *metrics_suite(void)
{
    return suite_create("metrics");
}
