/*
 * fuzz_write_file: one temporary file per process, rewritten in place for
 * every input. The file lives in $TMPDIR (default /tmp); libFuzzer runs
 * each job in its own process, so jobs never share a file.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char path[4096];
static int fd = -1;

static void remove_file(void)
{
    if (fd >= 0)
        unlink(path);
}

static void create_file(void)
{
    const char *dir = getenv("TMPDIR");

    snprintf(path, sizeof path, "%s/fmnist-fuzz-XXXXXX",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        perror(path);
        abort();
    }
    atexit(remove_file);
}

const char *fuzz_write_file(const uint8_t *data, size_t size)
{
    size_t done = 0;

    if (fd < 0)
        create_file();
    if (ftruncate(fd, 0) != 0) {
        perror(path);
        abort();
    }
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)n;
    }
    return path;
}
