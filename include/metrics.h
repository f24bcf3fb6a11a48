/*
 * metrics: confusion-matrix arithmetic. Rows are true classes, columns
 * predicted classes.
 */
#ifndef FMNIST_METRICS_H
#define FMNIST_METRICS_H

#include <stdint.h>

#include "dataset.h"

typedef struct {
    double precision;  /* 0 when nothing was predicted as this class */
    double recall;     /* 0 when the class has no samples */
    double f1;         /* 0 when precision + recall is 0 */
    long support;      /* number of samples whose true class this is,
                          with or without a prediction */
} ClassMetrics;

/* Prediction of an image whose class probabilities are not all finite.
 * Such an image has no predicted class, so it enters no confusion-matrix
 * column. */
#define METRICS_NO_PREDICTION 255

/* Adds N (label, prediction) pairs to CONFUSION. A pair whose prediction
 * is METRICS_NO_PREDICTION enters no column: it adds 1 to
 * UNPREDICTED[label] instead, unless UNPREDICTED is NULL. */
void metrics_confusion_add(long confusion[DATASET_CLASSES][DATASET_CLASSES],
                           long unpredicted[DATASET_CLASSES],
                           const uint8_t *labels, const uint8_t *predicted,
                           int n);

/* Returns the trace over the total, or 0 for an empty matrix. */
double metrics_accuracy(const long confusion[DATASET_CLASSES][DATASET_CLASSES]);

/* Fills OUT from CONFUSION. UNPREDICTED, when not NULL, counts the
 * samples of each class without a prediction: they add to the class's
 * support and count as misses in its recall. */
void metrics_per_class(const long confusion[DATASET_CLASSES][DATASET_CLASSES],
                       const long unpredicted[DATASET_CLASSES],
                       ClassMetrics out[DATASET_CLASSES]);

/* Returns the index of the largest of N values (the first on ties). */
int metrics_argmax(const float *values, int n);

/* Writes the indices of the K largest of N values to TOP, largest first. */
void metrics_top_k(const float *values, int n, int k, int *top);

#endif
