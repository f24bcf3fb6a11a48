/*
 * occlusion: the worker thread behind the occlusion overlay (see
 * occlusion.h).
 *
 * The thread sleeps on a condition variable until a request arrives,
 * copies the trainer's network, and runs explore_occlusion on the copy in
 * groups of MASK_BATCH masked images. A newer request or a cancel sets an
 * atomic flag that explore_occlusion reads between groups, so an
 * abandoned map stops within one group. Copying the weights waits for the
 * trainer's current batch or evaluation to end. During a test evaluation
 * that can take a second, and the UI shows "computing" meanwhile.
 *
 * lock guards the fields declared after it. cancel is atomic instead,
 * because the computation reads it without the lock.
 */
#include "config.h"

#include "occlusion.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explore.h"
#include "net.h"
#include "util.h"

/* Masked images per net_predict call. */
#define MASK_BATCH 16

struct OcclusionWorker {
    Trainer *tr;
    pthread_t thread;
    atomic_int cancel;        /* the running computation was abandoned */
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* signalled on a request and on quit */
    int quit;
    unsigned pending_id;      /* request not yet taken, 0 when none */
    float pending_image[DATASET_PIXELS];
    unsigned latest_id;       /* latest request, 0 after a cancel */
    int has_result;
    OcclusionResult result;
};

/* Computes the map of IMAGE on a copy of the current network. Returns 0,
 * or 1 when the request was abandoned meanwhile. */
static int compute(OcclusionWorker *w, const float *image,
                   OcclusionResult *out)
{
    Net net;
    NetScratch *scratch;
    int rc;

    trainer_copy_net(w->tr, &net);
    scratch = net_scratch_create(&net, MASK_BATCH);
    out->target = -1;
    rc = explore_occlusion(&net, scratch, MASK_BATCH, image, EXPLORE_PATCH,
                           EXPLORE_STRIDE, &out->target, out->probs, out->map,
                           &w->cancel);
    net_scratch_free(scratch);
    net_free(&net);

    out->max_drop = 0.0f;
    for (int i = 0; i < DATASET_PIXELS; i++) {
        if (out->map[i] > out->max_drop)
            out->max_drop = out->map[i];
    }
    return rc;
}

static void *worker_main(void *arg)
{
    OcclusionWorker *w = arg;
    float *image = xmalloc(DATASET_PIXELS * sizeof *image);
    OcclusionResult *res = xmalloc(sizeof *res);

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->quit && w->pending_id == 0)
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->quit)
            break;
        res->id = w->pending_id;
        memcpy(image, w->pending_image, DATASET_PIXELS * sizeof *image);
        w->pending_id = 0;
        atomic_store(&w->cancel, 0);
        pthread_mutex_unlock(&w->lock);

        int rc = compute(w, image, res);

        pthread_mutex_lock(&w->lock);
        if (rc == 0 && res->id == w->latest_id) {
            w->result = *res;
            w->has_result = 1;
        }
    }
    pthread_mutex_unlock(&w->lock);
    free(image);
    free(res);
    return NULL;
}

OcclusionWorker *occlusion_start(Trainer *tr, char *err, size_t errlen)
{
    OcclusionWorker *w = xcalloc(1, sizeof *w);
    int rc;

    w->tr = tr;
    atomic_init(&w->cancel, 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        snprintf(err, errlen, "starting the occlusion thread: %s",
                 strerror(rc));
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
        return NULL;
    }
    return w;
}

void occlusion_request(OcclusionWorker *w, unsigned id, const float *image)
{
    pthread_mutex_lock(&w->lock);
    memcpy(w->pending_image, image, DATASET_PIXELS * sizeof *image);
    w->pending_id = id;
    w->latest_id = id;
    w->has_result = 0;
    atomic_store(&w->cancel, 1);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void occlusion_cancel(OcclusionWorker *w)
{
    pthread_mutex_lock(&w->lock);
    w->pending_id = 0;
    w->latest_id = 0;
    w->has_result = 0;
    atomic_store(&w->cancel, 1);
    pthread_mutex_unlock(&w->lock);
}

int occlusion_result(OcclusionWorker *w, unsigned id, OcclusionResult *out)
{
    int ready;

    pthread_mutex_lock(&w->lock);
    ready = w->has_result && w->result.id == id;
    if (ready)
        *out = w->result;
    pthread_mutex_unlock(&w->lock);
    return ready;
}

void occlusion_stop(OcclusionWorker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = 1;
    atomic_store(&w->cancel, 1);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
