#ifndef FMNIST_GEMM_H
#define FMNIST_GEMM_H

#endif
