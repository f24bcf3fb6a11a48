#include "config.h"

#include "tests.h"

Suite *trainer_suite(void)
{
    return suite_create("trainer");
}
