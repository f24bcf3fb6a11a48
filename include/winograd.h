/*
 * winograd: convolutions with 3x3 and 5x5 kernels at stride 1 by the
 * Winograd minimal filtering algorithm, F(4x4, 3x3) and F(2x2, 5x5).
 *
 * Each block of 4 x 4 or 2 x 2 outputs (a tile) needs a 6 x 6 patch of
 * the input. The patch and the kernel are transformed into 36
 * coefficients, the coefficients are multiplied pointwise and summed
 * over the input channels, and an inverse transform gives the tile's
 * outputs. The sums over channels are 36 GEMMs, one per coefficient,
 * over all tiles of a chunk of samples. That does 36 instead of 144
 * multiply-adds per tile, channel and filter for 3x3 kernels and 36
 * instead of 100 for 5x5 ones. The transforms round differently from a
 * direct sum, so results differ from im2col's in the last bits. On
 * 13 x 13 maps of 32 channels the difference was up to about 4e-6 of
 * the largest output for 3x3 kernels, and on 14 x 14 maps 3e-6 for 5x5.
 *
 * Activations are planes: plane (c, s) of an activation starts at
 * c * plane_stride + s * sample_stride, rows W floats apart, as for
 * im2col. The transforms of every implementation run the same operations
 * in the same order, so the results depend only on the GEMM kernel.
 */
#ifndef FMNIST_WINOGRAD_H
#define FMNIST_WINOGRAD_H

#include <stddef.h>

#include "gemm.h"

/* Returns 1 when a convolution of geometry G, stride 1, can run through
 * winograd_conv: kernels of 3 or 5, and padding below the kernel size. */
int winograd_supported(const ConvGeom *g);

/* Outputs per side of a tile for K x K kernels: 4 for 3x3, 2 for 5x5.
 * A tile reads a patch of winograd_tile(K) + K - 1 pixels per side and
 * costs the square of that in multiply-adds per channel and filter. */
int winograd_tile(int k);

/* Floats of the transformed weights of F filters over C channels with
 * K x K kernels, for winograd_weights. */
size_t winograd_weight_floats(int k, int f, int c);

/*
 * Transforms the weights W (F x C x K x K, as a convolution layer stores
 * them) into U, for a convolution of C channels into F. With FLIP, each
 * kernel is rotated by 180 degrees and U is for a convolution of F
 * channels into C: over the output gradients it gives the input
 * gradients (see winograd_conv). TEMP has room for K * K * F * C floats.
 */
void winograd_weights(int k, int f, int c, const float *w, int flip,
                      float *u, float *temp);

/* Floats of scratch that winograd_conv needs for geometry G, OUT_C
 * output channels and chunks of CHUNK samples. With 3x3 kernels a chunk
 * is rounded up to a multiple of 8 samples, one per vector lane. */
size_t winograd_scratch_floats(const ConvGeom *g, int out_c, int chunk);

/*
 * Writes the OUT_C output planes of each of N samples: Y = X convolved
 * with the weights in U, plus BIAS (when not NULL), followed by
 * ReLU when RELU is set. X has G->c planes of G->h x G->w per sample, Y
 * has OUT_C planes of conv_out_h(G) x conv_out_w(G). Samples run in
 * chunks of CHUNK, with SCRATCH of winograd_scratch_floats(G, OUT_C,
 * CHUNK) floats.
 *
 * U comes from winograd_weights over F filters and C channels. For a
 * forward pass, OUT_C = F and G->c = C. For the input gradients of a
 * convolution with padding P, X is its output gradient (G->c = F),
 * G->pad is K - 1 - P, OUT_C = C and the weights were transformed with
 * FLIP set.
 */
void winograd_conv(const ConvGeom *g, int out_c, int n, const float *x,
                   size_t x_sample_stride, size_t x_plane_stride,
                   const float *u, const float *bias, int relu,
                   float *y, size_t y_sample_stride, size_t y_plane_stride,
                   float *scratch, int chunk);

/* Floats of scratch that winograd_weight_grad needs for geometry G,
 * OUT_C filters and chunks of CHUNK samples. */
size_t winograd_weight_grad_scratch_floats(const ConvGeom *g, int out_c,
                                           int chunk);

/*
 * Writes DW (OUT_C x G->c x K x K), the gradient of the weights of a
 * convolution of geometry G over N samples: the sum over samples and
 * output positions of DY times the input X under each tap. X is as for
 * winograd_conv, DY has OUT_C planes of conv_out_h(G) x conv_out_w(G) per
 * sample. Samples run in chunks of CHUNK, and the chunks' sums are added
 * in order.
 */
void winograd_weight_grad(const ConvGeom *g, int out_c, int n,
                          const float *x, size_t x_sample_stride,
                          size_t x_plane_stride, const float *dy,
                          size_t dy_sample_stride, size_t dy_plane_stride,
                          float *dw, float *scratch, int chunk);

#endif
