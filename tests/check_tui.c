/*
 * Tests of the summary that fmnist prints after the interface closes. The
 * summary is written to a memory stream from hand-made final statuses, so
 * no terminal is needed.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"
#include "tui.h"

/* Returns the summary of ST with the settings SUMMARY as one string; the
 * caller frees it. */
static char *summary_with(const TrainerStatus *st, const TuiSummary *summary)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(out);
    tui_print_summary(out, st, summary);
    fclose(out);
    return text;
}

/* Returns the summary of ST as one string; the caller frees it. */
static char *summary_of(const TrainerStatus *st, const char *log_path)
{
    TuiSummary summary = { .log_path = log_path };

    return summary_with(st, &summary);
}

/* A run of 2 epochs that ended on its own, with an evaluation. */
static void finished_run(TrainerStatus *st)
{
    memset(st, 0, sizeof *st);
    st->state = TRAINER_DONE;
    st->epoch = 2;
    st->epochs = 2;
    st->train_epochs = 2;
    st->epochs_done = 2;
    st->batch = 32;
    st->batches_per_epoch = 32;
    st->elapsed = 75.0;
    st->has_eval = 1;
    st->test_acc = 0.8113;
    st->test_loss = 0.5008;
}

START_TEST(test_tui_summary_finished_run)
{
    TrainerStatus st;

    finished_run(&st);
    st.saved_path = "run.ckpt";
    char *text = summary_of(&st, "run.csv");
    ck_assert_str_eq(text,
                     "fmnist: finished after 2 of 2 epochs; training time "
                     "1m15s\n"
                     "fmnist: test accuracy 81.13%, test loss 0.5008\n"
                     "fmnist: checkpoint run.ckpt\n"
                     "fmnist: log run.csv\n");
    free(text);
}
END_TEST

START_TEST(test_tui_summary_stopped_mid_epoch)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 5;
    st.train_epochs = 5;
    st.epoch = 3;
    st.batch = 10;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: stopped after 2 of 5 epochs; "
                                       "training time 1m15s\n"
                                       "fmnist: epoch 3 stopped after 10 of "
                                       "32 batches\n"));
    ck_assert_ptr_nonnull(strstr(text, "no checkpoint written"));
    ck_assert_ptr_null(strstr(text, "fmnist: log"));
    free(text);
}
END_TEST

START_TEST(test_tui_summary_resumed_run)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 4;
    st.epochs_done = 4;
    st.epoch = 4;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: finished after 4 of 4 "
                                       "epochs (2 loaded);"));
    free(text);
}
END_TEST

/* A resumed run stopped before it finished an epoch names the epoch it
 * was in, rather than "after 4 of 9 epochs (4 loaded)". */
START_TEST(test_tui_summary_resumed_none_finished)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 9;
    st.train_epochs = 5;
    st.epochs_done = 4;
    st.epoch = 5;
    st.batch = 10;
    st.batches_per_epoch = 938;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: stopped in epoch 5 of 9; "
                                       "training time 1m15s\n"
                                       "fmnist: 4 epochs were loaded, and "
                                       "this run finished none\n"
                                       "fmnist: epoch 5 stopped after 10 of "
                                       "938 batches\n"));
    ck_assert_ptr_null(strstr(text, "loaded)"));
    free(text);
}
END_TEST

/* Stopped before its first batch, a new run has no batch line. */
START_TEST(test_tui_summary_new_run_none_finished)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 5;
    st.train_epochs = 5;
    st.epochs_done = 0;
    st.epoch = 1;
    st.batch = 0;
    st.has_eval = 0;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: stopped in epoch 1 of 5; "
                                       "training time 1m15s\n"));
    ck_assert_ptr_null(strstr(text, "loaded"));
    ck_assert_ptr_null(strstr(text, "batches"));
    free(text);
}
END_TEST

/* A checkpoint written mid-epoch held part of the next epoch, which gets
 * a line of its own instead of "(2 loaded)". */
START_TEST(test_tui_summary_loaded_partial_epoch)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 4;
    st.epochs_done = 4;
    st.epoch = 4;
    st.loaded_batch = 147;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: finished after 4 of 4 "
                                       "epochs; training time"));
    ck_assert_ptr_nonnull(strstr(text, "fmnist: the loaded checkpoint held "
                                       "2 epochs and 147 batches\n"));
    ck_assert_ptr_null(strstr(text, "loaded)"));
    free(text);
}
END_TEST

/* A run that trained past its latest checkpoint reports what the file
 * has and summary to save the final model. */
START_TEST(test_tui_summary_checkpoint_behind)
{
    TrainerStatus st;

    finished_run(&st);
    st.saved_path = "run.ckpt";
    st.saved_epochs = 2;
    st.saved_batch = 46;
    st.saved_behind = 1;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: checkpoint run.ckpt\n"
                                       "fmnist: it holds an earlier model, "
                                       "after 2 epochs and 46 batches\n"));
    ck_assert_ptr_nonnull(strstr(text, "saves the final model"));
    free(text);
    st.saved_behind = 0;
    text = summary_of(&st, NULL);
    ck_assert_ptr_null(strstr(text, "earlier model"));
    free(text);
}
END_TEST

/* A run stopped within an epoch ends with a network that no evaluation
 * saw, and the summary names the network its test figures are of. */
START_TEST(test_tui_summary_eval_behind)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 5;
    st.epoch = 3;
    st.batch = 10;
    st.eval_behind = 1;
    st.eval_epoch_end = 1;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: test accuracy 81.13%, test "
                                       "loss 0.5008\n"
                                       "fmnist: measured on the network "
                                       "after epoch 2, not on the final "
                                       "network\n"));
    free(text);

    st.eval_epoch_end = 0;
    st.loaded = 1;
    text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: measured on the network as "
                                       "loaded, not on the final network\n"));
    free(text);

    st.eval_behind = 0;
    text = summary_of(&st, NULL);
    ck_assert_ptr_null(strstr(text, "measured on"));
    free(text);
}
END_TEST

/* Each line fits an 80-column terminal, for a resumed run stopped in the
 * middle of a long epoch with large numbers everywhere. */
START_TEST(test_tui_summary_lines_under_80)
{
    TrainerStatus st;

    finished_run(&st);
    st.epochs = 10000;
    st.train_epochs = 5000;
    st.epochs_done = 9999;
    st.epoch = 10000;
    st.batches_per_epoch = 60000;
    st.batch = 59999;
    st.elapsed = 4 * 86400 + 3600;
    st.has_val = 1;
    st.val_acc = 0.9;
    st.saved_path = "/a/path/of/some/length/run.ckpt";
    st.saved_epochs = 9998;
    st.saved_batch = 59998;
    st.saved_behind = 1;
    st.eval_behind = 1;
    st.eval_epoch_end = 1;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "(5000 loaded)"));
    ck_assert_ptr_nonnull(strstr(text, "after epoch 9999, not on the final"));
    ck_assert_ptr_nonnull(strstr(text, "after 9998 epochs and 59998 batches"));
    ck_assert_ptr_nonnull(strstr(text, "59999 of 60000 batches"));
    for (char *line = text; *line != '\0';) {
        char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        ck_assert_msg(end - line < 80, "%d columns: %.*s", (int)(end - line),
                      (int)(end - line), line);
        line = end + 1;
    }
    free(text);
}
END_TEST

/* Fills ST as a run that only explored a checkpoint of EPOCHS finished
 * epochs and BATCHES of the next, at the end of the evaluation. */
static void explored_run(TrainerStatus *st, int epochs, long batches)
{
    finished_run(st);
    st->train_epochs = 0;
    st->epochs_done = epochs;
    st->epochs = epochs;
    st->batch = batches;
}

START_TEST(test_tui_summary_explore_only)
{
    TrainerStatus st;

    explored_run(&st, 5, 0);
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: explored a model trained 5 "
                                       "epochs; nothing was trained"));
    ck_assert_ptr_nonnull(strstr(text, "test accuracy 81.13%"));
    /* Exploring never writes a checkpoint, so none is missed. */
    ck_assert_ptr_null(strstr(text, "checkpoint"));
    free(text);
}
END_TEST

START_TEST(test_tui_summary_explore_untrained)
{
    TrainerStatus st;

    explored_run(&st, 0, 0);
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: explored an untrained "
                                       "network; nothing was trained"));
    free(text);
}
END_TEST

/* A checkpoint saved partway through its first epoch contains a trained
 * network, which the summary must not call untrained, and one saved
 * partway through a later epoch counts that epoch's batches too. */
START_TEST(test_tui_summary_explore_partial_epoch)
{
    TrainerStatus st;

    explored_run(&st, 0, 58);
    st.loaded = 1;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: explored a model trained "
                                       "58 batches of epoch 1; nothing was "
                                       "trained"));
    ck_assert_ptr_null(strstr(text, "untrained"));
    free(text);

    st.epochs_done = 2;
    text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: explored a model trained "
                                       "2 epochs and 58 batches;"));
    free(text);
}
END_TEST

START_TEST(test_tui_summary_before_evaluation)
{
    TrainerStatus st;

    finished_run(&st);
    st.has_eval = 0;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: no test evaluation finished"));
    ck_assert_ptr_null(strstr(text, "accuracy"));
    free(text);
}
END_TEST

/* A resumed run that stopped before its first evaluation still names the
 * loaded run's last test accuracy, from the curve in the checkpoint. */
START_TEST(test_tui_summary_resumed_before_evaluation)
{
    TrainerStatus st;

    finished_run(&st);
    st.has_eval = 0;
    st.n_test_history = 2;
    st.test_acc_history[0] = 0.75f;
    st.test_acc_history[1] = 0.8125f;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: no test evaluation finished "
                                       "in this run\n"));
    ck_assert_ptr_nonnull(strstr(text, "fmnist: the loaded run's test "
                                       "accuracy curve ends at 81.25%\n"));
    free(text);
}
END_TEST

START_TEST(test_tui_summary_failed_save)
{
    TrainerStatus st;

    finished_run(&st);
    st.saved_path = "run.ckpt";
    st.message_is_error = 1;
    snprintf(st.message, sizeof st.message,
             "checkpoint not saved: run.ckpt: No space left on device");
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: checkpoint run.ckpt\n"));
    ck_assert_ptr_nonnull(strstr(text, "fmnist: checkpoint not saved: "
                                       "run.ckpt: No space left on device\n"));
    free(text);
}
END_TEST

START_TEST(test_tui_summary_failed_run)
{
    TrainerStatus st;

    finished_run(&st);
    st.state = TRAINER_FAILED;
    st.epochs_done = 1;
    st.message_is_error = 1;
    snprintf(st.message, sizeof st.message, "training stopped: the loss");
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: failed after 1 of 2 epochs"));
    /* Without --save, no checkpoint was requested. */
    ck_assert_ptr_null(strstr(text, "checkpoint"));
    /* main prints the reason itself, once. */
    ck_assert_ptr_null(strstr(text, "training stopped"));
    free(text);
    st.save_path = "run.ckpt";
    text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: no checkpoint written, "
                                       "because training failed\n"));
    free(text);
}
END_TEST

/* A failed run whose --save file is its --load file left the loaded
 * model in it, and the summary reports that as a headless run does. */
START_TEST(test_tui_summary_failed_keeps_loaded)
{
    TrainerStatus st;

    finished_run(&st);
    st.state = TRAINER_FAILED;
    st.loaded = 1;
    st.save_path = "run.ckpt";
    st.save_is_load = 1;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: training failed, so "
                                       "run.ckpt still holds the model "
                                       "loaded from it\n"));
    ck_assert_ptr_null(strstr(text, "no checkpoint written"));
    free(text);
}
END_TEST

/* A run that failed after an epoch's save names the model in the file,
 * but gives no way to save the final one, which diverged. */
START_TEST(test_tui_summary_failed_after_save)
{
    TrainerStatus st;

    finished_run(&st);
    st.state = TRAINER_FAILED;
    st.saved_path = "run.ckpt";
    st.saved_epochs = 1;
    st.saved_batch = 0;
    st.saved_behind = 1;
    char *text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: training failed, so "
                                       "run.ckpt still holds the model of "
                                       "epoch 1\n"));
    ck_assert_ptr_null(strstr(text, "saves the final model"));
    free(text);
    st.saved_epochs = 2;
    st.saved_batch = 46;
    text = summary_of(&st, NULL);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: training failed, so "
                                       "run.ckpt still holds the model "
                                       "after batch 46 of epoch 3\n"));
    free(text);
}
END_TEST

/* A signal that stopped training is named where the run stopped, in the
 * words of a headless run, and the usual lines on that place are left
 * out. */
START_TEST(test_tui_summary_signal_stopped_run)
{
    TrainerStatus st;
    TuiSummary summary = { .quit_signal = SIGTERM };

    finished_run(&st);
    st.epochs = 5;
    st.train_epochs = 5;
    st.epoch = 3;
    st.batch = 10;
    char *text = summary_with(&st, &summary);
    ck_assert_str_eq(text,
                     "fmnist: stopped by SIGTERM in epoch 3 after 10 of 32 "
                     "batches\n"
                     "fmnist: training time 1m15s\n"
                     "fmnist: test accuracy 81.13%, test loss 0.5008\n"
                     "fmnist: no checkpoint written; next time, --save FILE "
                     "or the s key writes one\n");
    free(text);

    summary.quit_signal = SIGINT;
    st.batch = 0;
    text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: stopped by SIGINT after 2 of "
                                       "5 epochs\n"));
    free(text);
}
END_TEST

/* A signal after training ended only closed the interface, and the
 * summary's first line names it. */
START_TEST(test_tui_summary_signal_after_end)
{
    TrainerStatus st;
    TuiSummary summary = { .quit_signal = SIGINT };

    finished_run(&st);
    char *text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: interface closed by SIGINT\n"
                                       "fmnist: finished after 2 of 2 "
                                       "epochs;"));
    ck_assert_ptr_null(strstr(text, "stopped"));
    free(text);

    explored_run(&st, 3, 0);
    summary.quit_signal = SIGTERM;
    text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: interface closed by "
                                       "SIGTERM\nfmnist: explored"));
    free(text);
}
END_TEST

/* A resumed run stopped before it finished an epoch of its own notes
 * that the earlier epochs were loaded. */
START_TEST(test_tui_stop_resumed_none_finished)
{
    TrainerStatus st;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(out);
    finished_run(&st);
    st.epochs = 9;
    st.train_epochs = 5;
    st.epochs_done = 4;
    st.epoch = 5;
    st.batch = 0;
    tui_print_stop(out, &st, SIGTERM);
    fclose(out);
    ck_assert_str_eq(text,
                     "fmnist: stopped by SIGTERM in epoch 5 of 9, before its "
                     "first batch\n"
                     "fmnist: 4 epochs were loaded, and this run finished "
                     "none\n");
    free(text);
}
END_TEST

/* After a hangup no key works, so the advice names only --save. */
START_TEST(test_tui_summary_detached_advice)
{
    TrainerStatus st;
    TuiSummary summary = { .detached = 1 };

    finished_run(&st);
    char *text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: no checkpoint written; next "
                                       "time, --save FILE writes one\n"));
    ck_assert_ptr_null(strstr(text, "s key"));
    free(text);

    st.saved_path = "fmnist.ckpt";
    st.saved_epochs = 1;
    st.saved_behind = 1;
    text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: next time, --save FILE saves "
                                       "the final model\n"));
    ck_assert_ptr_null(strstr(text, "s before q"));
    free(text);
}
END_TEST

/* When s could not save (a read-only --load file in a read-only
 * directory), the advice names only --save, and the read-only warning
 * comes after the preset one. */
START_TEST(test_tui_summary_save_key_blocked)
{
    TrainerStatus st;
    TuiSummary summary = {
        .warning = "--load b.ckpt has model best, but this run has no flips",
        .load_warning = "b.ckpt is read-only, so s cannot save",
        .save_key_blocked = 1,
    };

    finished_run(&st);
    char *text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist: no checkpoint written; next "
                                       "time, --save FILE writes one\n"));
    ck_assert_ptr_null(strstr(text, "s key"));
    const char *both = "fmnist: warning: --load b.ckpt has model best, but "
                       "this run has no flips\n"
                       "fmnist: warning: b.ckpt is read-only, so s cannot "
                       "save\n";
    char *found = strstr(text, both);
    ck_assert_ptr_nonnull(found);
    ck_assert_str_eq(found, both);
    free(text);
}
END_TEST

/* After s saved to a fresh name, the summary names that checkpoint and
 * leaves out the read-only warning about where s would save. */
START_TEST(test_tui_summary_read_only_after_save)
{
    TrainerStatus st;
    TuiSummary summary = {
        .load_warning = "shared.ckpt is read-only, so s saves to a new file "
                        "such as fmnist.ckpt; --save FILE chooses the file",
    };

    finished_run(&st);
    char *text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "shared.ckpt is read-only"));
    free(text);

    st.saved_path = "fmnist-2.ckpt";
    st.saved_epochs = st.epochs_done;
    text = summary_with(&st, &summary);
    ck_assert_ptr_nonnull(strstr(text, "fmnist-2.ckpt"));
    ck_assert_ptr_null(strstr(text, "read-only"));
    free(text);
}
END_TEST

/* The start-up warning, which the status line showed for a few seconds,
 * comes once at the end of the summary. */
START_TEST(test_tui_summary_repeats_warning)
{
    TrainerStatus st;
    TuiSummary summary = {
        .log_path = "run.csv",
        .warning = "--load b.ckpt has model best, but this run has no flips",
    };

    finished_run(&st);
    char *text = summary_with(&st, &summary);
    const char *line = "fmnist: warning: --load b.ckpt has model best, but "
                       "this run has no flips\n";
    char *found = strstr(text, line);
    ck_assert_ptr_nonnull(found);
    ck_assert_str_eq(found, line);
    free(text);

    summary.warning = NULL;
    text = summary_with(&st, &summary);
    ck_assert_ptr_null(strstr(text, "warning"));
    free(text);
}
END_TEST

/* After q, the key bar shows what the stop waits for, in a short form
 * where the long one does not fit. */
START_TEST(test_tui_stopping_notice_states)
{
    TrainerStatus st;

    memset(&st, 0, sizeof st);
    st.train_epochs = 2;
    st.epochs_done = 1;
    st.batch = 5;
    st.state = TRAINER_EVALUATING;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping after the evaluation");
    ck_assert_str_eq(tui_stopping_notice(&st, 20), "stopping: evaluation");
    st.state = TRAINER_TRAINING;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping: dropping the batch in progress");
    ck_assert_str_eq(tui_stopping_notice(&st, 39), "stopping: batch");
    st.state = TRAINER_PAUSED;
    ck_assert_str_eq(tui_stopping_notice(&st, 79), "stopping");

    /* With --save, the checkpoint of the current position follows. */
    st.save_path = "run.ckpt";
    st.state = TRAINER_TRAINING;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping: dropping the batch in progress, then "
                     "saving");
    ck_assert_str_eq(tui_stopping_notice(&st, 30), "stopping: batch, save");
    st.state = TRAINER_EVALUATING;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping after the evaluation, then saving");
    ck_assert_str_eq(tui_stopping_notice(&st, 30),
                     "stopping: evaluation, save");
    st.state = TRAINER_PAUSED;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping: saving the checkpoint");
    ck_assert_str_eq(tui_stopping_notice(&st, 30), "stopping: save");

    /* A checkpoint of this position, here from s, is not written again. */
    st.saved_path = "other.ckpt";
    st.saved_epochs = 1;
    st.saved_batch = 5;
    ck_assert_str_eq(tui_stopping_notice(&st, 79), "stopping");
    st.state = TRAINER_TRAINING;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping: dropping the batch in progress");
    st.saved_batch = 4;
    ck_assert_str_eq(tui_stopping_notice(&st, 79),
                     "stopping: dropping the batch in progress, then "
                     "saving");
}
END_TEST

Suite *tui_suite(void)
{
    Suite *s = suite_create("tui");
    TCase *tc = tcase_create("summary");

    tcase_add_test(tc, test_tui_summary_finished_run);
    tcase_add_test(tc, test_tui_summary_save_key_blocked);
    tcase_add_test(tc, test_tui_summary_stopped_mid_epoch);
    tcase_add_test(tc, test_tui_summary_eval_behind);
    tcase_add_test(tc, test_tui_summary_resumed_run);
    tcase_add_test(tc, test_tui_summary_resumed_none_finished);
    tcase_add_test(tc, test_tui_summary_new_run_none_finished);
    tcase_add_test(tc, test_tui_summary_loaded_partial_epoch);
    tcase_add_test(tc, test_tui_summary_checkpoint_behind);
    tcase_add_test(tc, test_tui_summary_lines_under_80);
    tcase_add_test(tc, test_tui_summary_explore_only);
    tcase_add_test(tc, test_tui_summary_explore_untrained);
    tcase_add_test(tc, test_tui_summary_explore_partial_epoch);
    tcase_add_test(tc, test_tui_summary_before_evaluation);
    tcase_add_test(tc, test_tui_summary_resumed_before_evaluation);
    tcase_add_test(tc, test_tui_summary_failed_save);
    tcase_add_test(tc, test_tui_summary_failed_run);
    tcase_add_test(tc, test_tui_summary_failed_after_save);
    tcase_add_test(tc, test_tui_summary_failed_keeps_loaded);
    tcase_add_test(tc, test_tui_summary_signal_stopped_run);
    tcase_add_test(tc, test_tui_summary_signal_after_end);
    tcase_add_test(tc, test_tui_stop_resumed_none_finished);
    tcase_add_test(tc, test_tui_summary_detached_advice);
    tcase_add_test(tc, test_tui_summary_repeats_warning);
    tcase_add_test(tc, test_tui_stopping_notice_states);
    tcase_add_test(tc, test_tui_summary_read_only_after_save);
    suite_add_tcase(s, tc);
    return s;
}
