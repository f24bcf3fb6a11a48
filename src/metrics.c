/*
 * metrics: accuracy, per-class precision, recall and F1 from a 10x10
 * confusion matrix, plus argmax and top-k over class scores.
 *
 * confusion[t][p] counts the samples of true class t predicted as p, so a
 * row sum plus the class's samples without a prediction is the class
 * support, and a column sum is the number of predictions of that class. Callers own the matrix and its locking.
 *
 * NaN scores rank below every number in metrics_argmax and metrics_top_k,
 * so a network that diverged still yields valid class indices.
 */
#include "config.h"

#include "metrics.h"

#include <assert.h>
#include <math.h>

/* Other label-prediction pairs outside 0..9 are skipped too (and trip the
 * assert in debug builds), because a bad index would write outside the
 * matrix. */
void metrics_confusion_add(long confusion[DATASET_CLASSES][DATASET_CLASSES],
                           long unpredicted[DATASET_CLASSES],
                           const uint8_t *labels, const uint8_t *predicted,
                           int n)
{
    for (int i = 0; i < n; i++) {
        assert(labels[i] < DATASET_CLASSES);
        if (predicted[i] == METRICS_NO_PREDICTION) {
            if (unpredicted != NULL && labels[i] < DATASET_CLASSES)
                unpredicted[labels[i]]++;
            continue;
        }
        assert(predicted[i] < DATASET_CLASSES);
        if (labels[i] < DATASET_CLASSES && predicted[i] < DATASET_CLASSES)
            confusion[labels[i]][predicted[i]]++;
    }
}

double metrics_accuracy(const long confusion[DATASET_CLASSES][DATASET_CLASSES])
{
    long correct = 0;
    long total = 0;

    for (int t = 0; t < DATASET_CLASSES; t++) {
        for (int p = 0; p < DATASET_CLASSES; p++)
            total += confusion[t][p];
        correct += confusion[t][t];
    }
    return total > 0 ? (double)correct / (double)total : 0.0;
}

void metrics_per_class(const long confusion[DATASET_CLASSES][DATASET_CLASSES],
                       const long unpredicted[DATASET_CLASSES],
                       ClassMetrics out[DATASET_CLASSES])
{
    for (int c = 0; c < DATASET_CLASSES; c++) {
        long true_pos = confusion[c][c];
        long support = unpredicted != NULL ? unpredicted[c] : 0;
        long predicted = 0;
        ClassMetrics *m = &out[c];

        for (int k = 0; k < DATASET_CLASSES; k++) {
            support += confusion[c][k];
            predicted += confusion[k][c];
        }
        m->support = support;
        m->precision = predicted > 0 ? (double)true_pos / predicted : 0.0;
        m->recall = support > 0 ? (double)true_pos / support : 0.0;
        m->f1 = m->precision + m->recall > 0.0
                    ? 2.0 * m->precision * m->recall
                          / (m->precision + m->recall)
                    : 0.0;
    }
}

/* Returns 1 when A ranks above B: a larger number, or a number against
 * a NaN. */
static int ranks_above(float a, float b)
{
    return a > b || (isnan(b) && !isnan(a));
}

/* Returns -1 when N is not positive. */
int metrics_argmax(const float *values, int n)
{
    int best = 0;

    if (n <= 0)
        return -1;
    for (int i = 1; i < n; i++) {
        if (ranks_above(values[i], values[best]))
            best = i;
    }
    return best;
}

/*
 * Keeps TOP sorted while scanning VALUES once, which costs O(n * k) and
 * suits the 10 classes here. A value enters only when it ranks strictly
 * above the one it displaces, so equal values stay in index order. When
 * K exceeds N, the entries after the first N are set to -1.
 */
void metrics_top_k(const float *values, int n, int k, int *top)
{
    int filled = 0;

    if (n < 0)
        n = 0;
    for (int i = 0; i < n; i++) {
        int pos = filled < k ? filled : k;

        while (pos > 0 && ranks_above(values[i], values[top[pos - 1]]))
            pos--;
        if (pos >= k)
            continue;
        for (int j = (filled < k ? filled : k - 1); j > pos; j--)
            top[j] = top[j - 1];
        top[pos] = i;
        if (filled < k)
            filled++;
    }
    for (int j = filled; j < k; j++)
        top[j] = -1;
}
