#include "config.h"

#include "gemm.h"
