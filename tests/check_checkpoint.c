#include "config.h"

#include "tests.h"

Suite *checkpoint_suite(void)
{
    return suite_create("checkpoint");
}
