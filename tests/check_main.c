/*
 * Unit-test runner: one Check suite per module, forked per test so a crash
 * fails one test only. The exit status is the number of failures (capped).
 */
#include "config.h"

#include <stdlib.h>

#include "tests.h"

int main(void)
{
    Suite *(*const suites[])(void) = {
        util_suite,    dataset_suite,  metrics_suite,
        gemm_suite,    winograd_suite, direct_suite,  pool_suite,
        net_suite,
        optim_suite,   trainer_suite,  checkpoint_suite, draw_suite,
        augment_suite, training_suite, explore_suite,
        tui_suite,     linequeue_suite,
    };
    SRunner *runner = srunner_create(NULL);

    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        srunner_add_suite(runner, suites[i]());
    srunner_run_all(runner, CK_NORMAL);

    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
