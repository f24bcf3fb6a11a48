/*
 * Fuzz target for the model-spec parser. Each input, cut at its first NUL,
 * is parsed for 1x28x28 inputs and 10 classes as --model does. When the
 * network is small enough to run quickly (at most MAX_FUZZ_PARAMS
 * parameters and MAX_FUZZ_MACS multiply-adds per sample), it also runs a
 * training step and a prediction on two random images, which checks the
 * layer shapes the parser computed against the buffers the layers use.
 * It aborts when a parsed spec fails to parse again from its canonical
 * form, when a failure has no message, or when a prediction is not a
 * probability distribution.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fuzz.h"
#include "net.h"
#include "util.h"

#define MAX_FUZZ_PARAMS 200000
#define MAX_FUZZ_MACS 2e6
#define FUZZ_BATCH 2

static void check_reparse(const Net *net)
{
    char err[NET_ERR_LEN];
    Net again;

    if (net_create(&again, net->spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, sizeof err) != 0)
        abort();
    if (strcmp(again.spec, net->spec) != 0 || again.n_params != net->n_params)
        abort();
    net_free(&again);
}

static void run_small_net(Net *net)
{
    float images[FUZZ_BATCH * DATASET_PIXELS];
    float probs[FUZZ_BATCH * DATASET_CLASSES];
    uint8_t labels[FUZZ_BATCH] = { 3, 7 };
    float *grad = xmalloc(net->n_params * sizeof *grad);
    NetScratch *scratch = net_scratch_create(net, FUZZ_BATCH);
    Rng rng;

    rng_seed(&rng, 1);
    net_init_params(net, &rng);
    for (int i = 0; i < FUZZ_BATCH * DATASET_PIXELS; i++)
        images[i] = rng_uniform(&rng);
    net_train_batch(net, scratch, images, labels, FUZZ_BATCH, grad, &rng, NULL);
    net_predict(net, scratch, images, FUZZ_BATCH, probs);
    for (int s = 0; s < FUZZ_BATCH; s++) {
        double sum = 0.0;

        for (int c = 0; c < DATASET_CLASSES; c++) {
            float p = probs[s * DATASET_CLASSES + c];
            if (!(p >= 0.0f && p <= 1.0f))
                abort();
            sum += p;
        }
        if (fabs(sum - 1.0) > 1e-3)
            abort();
    }
    net_scratch_free(scratch);
    free(grad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[NET_ERR_LEN] = "";
    char *spec = malloc(size + 1);
    Net net;

    if (spec == NULL)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    if (net_create(&net, spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, err, sizeof err) != 0) {
        free(spec);
        if (err[0] == '\0')
            abort();
        return 0;
    }
    free(spec);
    check_reparse(&net);
    if (net.n_params <= MAX_FUZZ_PARAMS
        && net_forward_macs(&net) <= MAX_FUZZ_MACS)
        run_small_net(&net);
    net_free(&net);
    return 0;
}
