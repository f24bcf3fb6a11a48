/*
 * direct: convolutions over a single input channel, computed from the
 * input plane itself instead of through im2col and a GEMM.
 *
 * A network's first convolution reads one channel, so its im2col patches
 * have only K*K rows and the GEMM's inner dimension is 9 or 25: each tile
 * of the product costs about as much to load and store as to compute.
 * These functions keep whole output row segments in vector registers
 * instead (see src/direct.c).
 *
 * Layouts are those of im2col: sample s of the input is one H x W plane
 * at X + s*X_SAMPLE_STRIDE, and plane (f, s) of an output or output
 * gradient starts at f*PLANE_STRIDE + s*SAMPLE_STRIDE, rows OW floats
 * apart. Weights are F x K x K, as a convolution layer stores them.
 * The sums run in an order fixed by the shapes, so results do not depend
 * on which thread computes them.
 */
#ifndef FMNIST_DIRECT_H
#define FMNIST_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "gemm.h"
#include "pool.h"

/* The largest kernel side and output row the direct functions accept. */
#define DIRECT_MAX_K 7
#define DIRECT_MAX_OW 32

/* Returns 1 when direct_conv_forward and direct_conv_weight_grad handle a
 * convolution of geometry G with KERNEL: one input channel, kernels of at
 * most DIRECT_MAX_K, output rows of at most DIRECT_MAX_OW, and the AVX2
 * or AVX-512 kernel on a CPU that runs it. Otherwise im2col and the GEMM
 * are the way. */
int direct_supported(const ConvGeom *g, GemmKernel kernel);

/*
 * Writes the F output planes of each of N samples: Y = X convolved with W,
 * plus BIAS (one value per filter, or NULL), followed by ReLU when RELU is
 * set, with the vectors of KERNEL. G and KERNEL must pass
 * direct_supported.
 */
void direct_conv_forward(GemmKernel kernel, const ConvGeom *g, int f, int n,
                         const float *x, size_t x_sample_stride,
                         const float *w, const float *bias, int relu,
                         float *y, size_t y_sample_stride,
                         size_t y_plane_stride);

/*
 * Writes the 2x2 max pooling (stride 2) of the output that
 * direct_conv_forward would write, and the pooling code of each window
 * (see pool.h). That output is never stored: the four outputs of each
 * window are pooled in registers. Plane (f, s) of Y and of CODES starts
 * at f*Y_PLANE_STRIDE + s*Y_SAMPLE_STRIDE and has (OH/2) x (OW/2) values.
 * For finite outputs, Y equals direct_conv_forward followed by
 * pool2_forward bit for bit, and so do the winners in the codes, except
 * in blocked windows. POOL_BLOCKED is set when RELU is and the window's
 * output is not above 0.
 */
void direct_conv_pool_forward(GemmKernel kernel, const ConvGeom *g, int f,
                              int n, const float *x, size_t x_sample_stride,
                              const float *w, const float *bias, int relu,
                              float *y, uint8_t *codes,
                              size_t y_sample_stride, size_t y_plane_stride);

/*
 * Writes DW (F x K x K), the gradient of the weights: the sum over the N
 * samples of each output gradient plane DY correlated with the input
 * plane X, with the vectors of KERNEL. G and KERNEL must pass
 * direct_supported. DW is overwritten, not accumulated into.
 */
void direct_conv_weight_grad(GemmKernel kernel, const ConvGeom *g, int f,
                             int n, const float *x, size_t x_sample_stride,
                             const float *dy, size_t dy_sample_stride,
                             size_t dy_plane_stride, float *dw);

/*
 * Writes DW as direct_conv_weight_grad does, and DB (F values), the
 * gradient of the biases, for a convolution followed by 2x2 pooling. They
 * come from the pooling layer's output gradient DP and the CODES that
 * direct_conv_pool_forward wrote. Each window's gradient goes to the
 * input that won unless POOL_BLOCKED is set, as pool2_backward does with
 * and without a ReLU in between. Plane (f, s) of DP and CODES
 * starts at f*P_PLANE_STRIDE + s*P_SAMPLE_STRIDE. The expanded gradient
 * is never stored. DW and DB equal those of pool2_backward followed by
 * direct_conv_weight_grad and a sum of the output gradient up to
 * rounding, since the sums run over pooling windows instead of output
 * rows. The AVX2 and AVX-512 kernels add the same products in the same
 * order and agree bit for bit.
 */
void direct_conv_pool_weight_grad(GemmKernel kernel, const ConvGeom *g,
                                  int f, int n, const float *x,
                                  size_t x_sample_stride, const float *dp,
                                  const uint8_t *codes,
                                  size_t p_sample_stride,
                                  size_t p_plane_stride, float *dw,
                                  float *db);

/* Chooses how the AVX2 kernel of direct_conv_pool_weight_grad takes each
 * window's winning input: MODE 1 picks it with blends, 0 multiplies the
 * inputs of all four outputs by masked gradients, and -1 (the default)
 * picks where gemm_fast_blendv() returns 1. Both ways give the same
 * sums bit for bit. For tests and benchmarks; call it before any
 * thread computes a gradient. */
void direct_set_avx2_picks(int mode);

#endif
