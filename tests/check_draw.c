#include "config.h"

#include "tests.h"

Suite *draw_suite(void)
{
    return suite_create("draw");
}
