#include "config.h"

#include "metrics.h"
