#include "config.h"

#include "tests.h"

Suite *gemm_suite(void)
{
    return suite_create("gemm");
}
