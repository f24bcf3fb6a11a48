/*
 * Helpers shared by the fuzz targets in this directory. Each target
 * defines LLVMFuzzerTestOneInput, the entry point libFuzzer calls with one
 * input; replay.c calls the same function on files for make check.
 */
#ifndef FMNIST_FUZZ_H
#define FMNIST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Replaces the contents of a private temporary file with SIZE bytes of
 * DATA and returns its path, so that loaders which take a path can be fed
 * from memory. The file is created on the first call and removed at exit.
 * Aborts when the file cannot be written, because every later input would
 * then test nothing.
 */
const char *fuzz_write_file(const uint8_t *data, size_t size);

#endif
