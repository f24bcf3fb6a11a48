#include "config.h"

#include "optim.h"
