#include "config.h"

#include "draw.h"
