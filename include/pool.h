/*
 * pool: 2x2 max pooling with stride 2 over a stack of planes.
 *
 * The input is PLANES planes of H x W floats, one after another. The
 * output is PLANES planes of (H/2) x (W/2), so an odd last row or column
 * is dropped. Channel-major and sample-major activations are both such a
 * stack, so one function serves either layout.
 *
 * pool2_forward and pool2_backward use the AVX-512 versions when
 * gemm_kernel() is the AVX-512 kernel and the portable ones otherwise.
 * Both versions give the same results bit for bit, which the tests
 * check. Call an _avx512 function only when gemm_have_avx512() is 1.
 */
#ifndef FMNIST_POOL_H
#define FMNIST_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Writes each window's maximum to Y and which input won to ARGMAX
 * (2 * row + column within the window, the first one on ties). A NaN
 * input never wins against a number on its left or above it. */
void pool2_forward(size_t planes, int h, int w, const float *x, float *y,
                   int32_t *argmax);

/* Writes DX, the gradient of every input: each window's gradient from DY
 * goes to the input that won and +0 to the other three. When Y (the
 * forward output) is not NULL, a window passes its gradient only where
 * its Y is > 0. Inputs in a dropped row or column get 0. */
void pool2_backward(size_t planes, int h, int w, const float *dy,
                    const int32_t *argmax, const float *y, float *dx);

/* Bit of a window's pooling code that is set when the window passes no
 * gradient: its output is 0 after a ReLU. The low two bits of a code
 * hold the input that won, as in ARGMAX. direct_conv_pool_forward writes
 * such codes, one byte per window. */
#define POOL_BLOCKED 4

/* Writes DX as pool2_backward does, from the windows' codes instead of
 * ARGMAX and Y. */
void pool2_backward_codes(size_t planes, int h, int w, const float *dy,
                          const uint8_t *codes, float *dx);

void pool2_forward_portable(size_t planes, int h, int w, const float *x,
                            float *y, int32_t *argmax);
void pool2_backward_portable(size_t planes, int h, int w, const float *dy,
                             const int32_t *argmax, const float *y,
                             float *dx);
void pool2_forward_avx512(size_t planes, int h, int w, const float *x,
                          float *y, int32_t *argmax);
void pool2_backward_avx512(size_t planes, int h, int w, const float *dy,
                           const int32_t *argmax, const float *y,
                           float *dx);

#endif
