#include "config.h"

#include "tui.h"
