/* Suites of the unit-test runner, one per module. */
#ifndef FMNIST_TESTS_H
#define FMNIST_TESTS_H

#include <check.h>

Suite *util_suite(void);
Suite *dataset_suite(void);
Suite *augment_suite(void);
Suite *metrics_suite(void);
Suite *gemm_suite(void);
Suite *winograd_suite(void);
Suite *direct_suite(void);
Suite *pool_suite(void);
Suite *net_suite(void);
Suite *optim_suite(void);
Suite *trainer_suite(void);
Suite *training_suite(void);
Suite *checkpoint_suite(void);
Suite *draw_suite(void);
Suite *explore_suite(void);
Suite *tui_suite(void);
Suite *linequeue_suite(void);

#endif
