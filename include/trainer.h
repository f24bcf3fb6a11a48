/*
 * trainer: runs training in background POSIX threads and publishes its
 * progress for the UI.
 *
 * One coordinator thread runs the epoch loop; a pool of workers, created
 * once, computes each batch. A batch is cut into fixed shards of
 * TRAINER_SHARD samples whose gradients are summed in shard order (those
 * of dense layers are formed over the whole batch at once), so the
 * weights after a run depend on the seed and never on the thread count.
 * The trainer never touches the terminal. Everything the UI shows is in
 * TrainerStatus, copied out under the trainer's mutex.
 */
#ifndef FMNIST_TRAINER_H
#define FMNIST_TRAINER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "checkpoint.h"
#include "dataset.h"
#include "net.h"
#include "optim.h"

#define TRAINER_SHARD 8
/* The maximum number of worker threads trainer_create accepts. */
#define TRAINER_MAX_THREADS 256
/* The largest batch the programs accept. The trainer and the network
 * keep activations and gradients for a whole batch, about 0.45 MB per
 * image with the default model. A batch of 4096 peaked at 1.9 GB
 * resident and one of 64 at 0.13 GB (headless, 2 threads,
 * --train-limit 4096). */
#define TRAINER_MAX_BATCH 4096
#define TRAINER_HISTORY 512
/* trainer_create passes on the errors of checkpoint_load. */
#define TRAINER_ERR_LEN CHECKPOINT_ERR_LEN
/* Bytes of a status message: a file name of PATH_MAX bytes and the
 * words around it. */
#define TRAINER_MESSAGE_LEN (PATH_MAX + 512)
/* Bounds of trainer_scale_lr. */
#define TRAINER_LR_MIN 1e-7f
#define TRAINER_LR_MAX 10.0f

/* The lowest and highest finite point of a history series over the run.
 * Merging points in pairs leaves it as it was, so it can lie outside the
 * merged points. Both are NaN while the series has no finite point. */
typedef struct {
    float min, max;
} TrainerRange;

typedef enum {
    TRAINER_IDLE,        /* created, not started */
    TRAINER_TRAINING,
    TRAINER_PAUSED,
    TRAINER_EVALUATING,  /* evaluating the test set after an epoch */
    TRAINER_DONE,        /* all epochs finished or stopped on request */
    TRAINER_FAILED       /* stopped by an error; see message */
} TrainerState;

/* One line of the per-epoch log. Accuracies are fractions in [0, 1];
 * seconds count from the start of the run, without the time spent paused. */
typedef struct {
    int epoch;  /* 1-based */
    double train_loss, train_acc;
    double test_loss, test_acc;
    double seconds;
    double samples_per_sec;
    int has_val;                /* val_loss and val_acc are set */
    double val_loss, val_acc;   /* on the held-out validation images */
    double lr;                  /* learning rate of the epoch's last batch */
} EpochRecord;

typedef struct {
    const char *spec;       /* model spec or preset; NULL for the default */
    OptimKind optim;
    int optim_given;        /* with load_path: optim overrides the stored one */
    float lr;               /* <= 0 selects the optimiser's default */
    int epochs;             /* epochs to run in this invocation */
    /* Samples per batch. A net with a bn layer over single values
     * (net_find_single_value_bn) needs 2 or more and skips a last batch
     * of one sample in each epoch. */
    int batch;
    uint64_t seed;
    int threads;            /* worker threads, >= 1; the trainer starts
                             * at most one per TRAINER_SHARD samples of a
                             * batch and reports the count it uses in
                             * TrainerStatus.threads */
    int train_limit;        /* use the first N training images; 0 for all */
    /* Hold out the last N images of the training set (whatever
     * train_limit says) for validation: they are never trained on and are
     * evaluated after every epoch. 0 for none. */
    int val_count;
    Augment augment;        /* applied to training images only */
    Schedule schedule;      /* scales lr over the epochs of the run */
    float weight_decay;     /* on convolution and dense weights; 0 none */
    DecayKind decay;        /* how weight_decay is applied */
    const char *save_path;  /* checkpoint written after every epoch; NULL */
    const char *load_path;  /* checkpoint to resume from; NULL */
    /* With load_path and epochs > 0: evaluate the loaded network before
     * training, so that an interface shows its predictions at once
     * rather than after the first epoch. When it gives NaN predictions
     * for some test images, the run fails before training. The
     * evaluation does not join the history, so checkpoints do not
     * change. */
    int evaluate_loaded;
    /* Called on the trainer thread after each epoch's evaluation. */
    void (*on_epoch)(const EpochRecord *rec, void *ctx);
    /* Called after each checkpoint write to PATH with ERR NULL on success,
     * or the failure with the system's reason. It runs on the thread that
     * saved: the trainer's, or the caller of trainer_request_save before
     * the start or after the end. May be NULL. */
    void (*on_save)(const char *path, const char *err, void *ctx);
    void *ctx;
} TrainerConfig;

typedef struct {
    TrainerState state;
    int epoch;              /* epoch in progress (1-based), or last one */
    int epochs;             /* final epoch number of this run */
    int train_epochs;       /* epochs this invocation trains; 0 when it
                               only evaluates a loaded or new network */
    int epochs_done;        /* finished epochs, loaded ones included */
    int loaded;             /* the network came from a checkpoint */
    long loaded_batch;      /* batches of a partial epoch it held */
    long batch;             /* batches done in the current epoch */
    long batches_per_epoch;
    double images_per_sec;  /* training throughput over the last few
                               seconds of training, and over the whole
                               run once it has ended */
    double elapsed;         /* seconds since trainer_start, not counting
                               the time spent paused */
    double eta;             /* estimated seconds to the end, counting
                               down between batches; < 0 unknown */
    double epoch_eta;       /* estimated seconds to the end of the current
                               epoch's evaluation; < 0 unknown */
    int threads;
    double train_loss;      /* running mean over the current epoch */
    double train_acc;
    /* Running training loss and accuracy sampled every few batches; older
     * points are merged in pairs when the buffer fills, so the whole run
     * stays visible. */
    int n_history;
    float loss_history[TRAINER_HISTORY];
    float acc_history[TRAINER_HISTORY];
    /* Test accuracy after each evaluated epoch (merged the same way). */
    int n_test_history;
    float test_acc_history[TRAINER_HISTORY];
    TrainerRange loss_range, acc_range, test_acc_range;
    int has_eval;           /* the fields below hold an evaluation */
    int eval_epoch_end;     /* ... made at the end of an epoch, not of the
                               network as loaded or created */
    int eval_behind;        /* set when the run has ended and trained past
                               that evaluation */
    double test_loss, test_acc;
    long test_nonfinite;    /* test images with a non-finite probability,
                               which the model does not predict */
    int has_val;            /* val_loss and val_acc are set */
    double val_loss, val_acc;
    long confusion[DATASET_CLASSES][DATASET_CLASSES];
    /* Test images of each class without a prediction, which no
     * confusion-matrix column counts. */
    long test_unpredicted[DATASET_CLASSES];
    unsigned eval_generation;  /* bumped after each evaluation */
    double lr;              /* learning rate of the next update */
    int stop_after_epoch;   /* the run ends after the current epoch */
    int batch_abandoned;    /* a stop request discarded the batch in
                               flight, so the run ended at the one before */
    /* Latest notice or error, "" when none, with room for a file name
     * of PATH_MAX bytes. */
    char message[TRAINER_MESSAGE_LEN];
    unsigned message_seq;   /* bumped each time message is set */
    int message_is_error;   /* message reports a failure */
    /* With state TRAINER_FAILED: the message that reported the failure,
     * which later messages, such as a refused save, do not replace. */
    char failure[TRAINER_MESSAGE_LEN];
    /* Path of the latest checkpoint written, NULL when none was; it
     * points into the trainer and is valid until trainer_free. */
    const char *saved_path;
    /* The position in the run that checkpoint holds: epochs done and
     * batches of the next one. */
    int saved_epochs;
    long saved_batch;
    /* Set when the run has ended and trained past that checkpoint. */
    int saved_behind;
    /* CFG->save_path, or NULL; valid until trainer_free. */
    const char *save_path;
    /* save_path is the file that CFG->load_path named at trainer_create. */
    int save_is_load;
    /* Set when the latest save failed, so the file on disk, if any, is
     * older than the model it was meant to hold. */
    int save_failed;
} TrainerStatus;

typedef struct Trainer Trainer;

/*
 * Builds the network (from CFG->spec, or from CFG->load_path when set) and
 * the worker pool. TRAIN may be NULL when CFG->epochs is 0. The datasets
 * must outlive the trainer. Returns NULL with a message in ERR on failure,
 * such as a bad spec or a rejected checkpoint.
 */
Trainer *trainer_create(const TrainerConfig *cfg, const Dataset *train,
                        const Dataset *test, char *err, size_t errlen);

/* Starts the coordinator thread: CFG->epochs epochs, each followed by a
 * test evaluation and, with save_path, a checkpoint. With epochs == 0 it
 * only evaluates. Returns 0, or -1 when the thread cannot start. */
int trainer_start(Trainer *tr);

/* Pauses or resumes at the next batch boundary. Returns 1 if the run was
 * set to pause before the call, else 0. */
int trainer_set_paused(Trainer *tr, int paused);

/* Asks the run to end. A batch in flight is abandoned when its workers
 * finish the shards they are computing, before anything of it is applied,
 * so the run keeps the state after the last completed batch. With
 * save_path set, a checkpoint of that state is written first. */
void trainer_request_stop(Trainer *tr);

/* Asks for a checkpoint at the next batch boundary and returns the file
 * it goes to, valid until trainer_free: save_path, else load_path (the run
 * continues it), else the first of "fmnist.ckpt", "fmnist-2.ckpt", ...
 * that did not exist at the first request, so that a checkpoint of
 * another run is never replaced. */
const char *trainer_request_save(Trainer *tr);

/* Sets the status message to TEXT, a failure when IS_ERROR is set, as the
 * trainer sets it for saves. Any thread may call it, including the
 * on_epoch and on_save callbacks. */
void trainer_post_message(Trainer *tr, int is_error, const char *text);

/* Multiplies the learning rate by FACTOR from the next batch on. The rate
 * before any schedule does not leave [TRAINER_LR_MIN, TRAINER_LR_MAX], and
 * one that starts below TRAINER_LR_MIN is never raised by a FACTOR below
 * 1, nor lowered further. A schedule keeps applying on top of it, but a
 * positive rate below FLT_MIN is raised to FLT_MIN. Once the run is
 * TRAINER_DONE or TRAINER_FAILED, the rate stays as it is.
 * Returns the rate the next update will use, which the status also
 * shows. */
float trainer_scale_lr(Trainer *tr, float factor);

/* With STOP nonzero, ends the run after the current epoch's evaluation
 * and checkpoint; with 0, withdraws that request. */
void trainer_stop_after_epoch(Trainer *tr, int stop);

/* Waits for the coordinator thread to end. */
void trainer_join(Trainer *tr);

void trainer_free(Trainer *tr);

/* Copies the current status under the mutex. */
void trainer_get_status(Trainer *tr, TrainerStatus *out);

/*
 * Copies the latest per-image test predictions when their generation
 * differs from *GENERATION: PREDICTED gets test->count classes and PROBS
 * test->count x DATASET_CLASSES probabilities. Returns 1 and updates
 * *GENERATION when it copied, 0 otherwise.
 */
int trainer_copy_predictions(Trainer *tr, unsigned *generation,
                             uint8_t *predicted, float *probs);

/* Evaluates the test set on the calling thread's behalf (using the worker
 * pool) and fills the evaluation fields of the status. For --eval. When
 * some test images get NaN predictions, the status message is the error
 * that reports them. */
void trainer_evaluate(Trainer *tr);

/* Returns the optimiser and stores in *BASE_LR its learning rate before
 * the schedule, as set up from CFG or the loaded checkpoint. Call it
 * before trainer_start. */
OptimKind trainer_optim(const Trainer *tr, float *base_lr);

/* Returns the network. Only its shape (spec, layers, sizes) may be read
 * while training runs; use trainer_copy_net for the weights. */
const Net *trainer_net(const Trainer *tr);

/* Fills OUT with a private copy of the network and its current weights,
 * taken between two batches. Free it with net_free. */
void trainer_copy_net(Trainer *tr, Net *out);

const char *trainer_state_name(TrainerState state);

#endif
