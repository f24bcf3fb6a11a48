/*
 * occlusion: a background thread that computes occlusion maps for the
 * image viewer, so the terminal UI never waits for the 170 or so forward
 * passes a map takes. Each request copies the trainer's current weights
 * (between two batches) and runs explore_occlusion on that private copy,
 * so training goes on meanwhile. A new request abandons the one before,
 * whose result is never reported.
 */
#ifndef FMNIST_OCCLUSION_H
#define FMNIST_OCCLUSION_H

#include <stddef.h>

#include "dataset.h"
#include "trainer.h"

typedef struct {
    unsigned id;                     /* the request's id */
    int target;                      /* class whose probability the map
                                        follows, -1 for no prediction */
    float probs[DATASET_CLASSES];    /* probabilities of the unmasked image */
    float map[DATASET_PIXELS];       /* fall of probs[target] per pixel */
    float max_drop;                  /* largest value in map, at least 0 */
} OcclusionResult;

typedef struct OcclusionWorker OcclusionWorker;

/* Starts the thread for TR, which must outlive it. Returns NULL with a
 * message in ERR when the thread cannot start. */
OcclusionWorker *occlusion_start(Trainer *tr, char *err, size_t errlen);

/* Asks for the map of IMAGE (DATASET_PIXELS floats, copied) under ID, a
 * nonzero number the caller chooses; earlier requests are abandoned. */
void occlusion_request(OcclusionWorker *w, unsigned id, const float *image);

/* Abandons the current request, if any. */
void occlusion_cancel(OcclusionWorker *w);

/* Copies the result of request ID into OUT and returns 1 when it is
 * ready; returns 0 while it is being computed or after it was abandoned. */
int occlusion_result(OcclusionWorker *w, unsigned id, OcclusionResult *out);

/* Abandons any request, ends the thread and frees W; NULL is ignored. */
void occlusion_stop(OcclusionWorker *w);

#endif
