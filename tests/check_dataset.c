#include "config.h"

#include "tests.h"

Suite *dataset_suite(void)
{
    return suite_create("dataset");
}
