#include "config.h"

#include "checkpoint.h"
