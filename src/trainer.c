#include "config.h"

#include "trainer.h"
