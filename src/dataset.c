#include "config.h"

#include "dataset.h"
