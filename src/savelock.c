/*
 * savelock: the lock file of a checkpoint path (see savelock.h).
 *
 * Limits: savelock_release checks that the lock file is still the one it
 * locked and then removes it, two steps that another process could come
 * between. Only a process that deletes the lock file by hand and creates
 * a new one in that moment would lose its lock file.
 */
#include "config.h"

#include "savelock.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tries of savelock_take when the lock file keeps being removed or
 * created under it by other runs. */
#define SAVELOCK_TRIES 100

#define MARKER_LEN (sizeof SAVELOCK_MARKER - 1)

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SAVELOCK_FAILED;
}

/* Returns the pid of the process that holds a write lock on FD, or 0
 * when none does. FD may be open for reading only. */
static long lock_owner(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

    if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
        return 0;
    return (long)fl.l_pid;
}

/* Returns 1 when FD is still the file that PATH names. */
static int still_named(int fd, const char *path)
{
    struct stat fd_st, path_st;

    return fstat(fd, &fd_st) == 0 && stat(path, &path_st) == 0
           && fd_st.st_dev == path_st.st_dev
           && fd_st.st_ino == path_st.st_ino;
}

/* Writes "PATH exists and is not an fmnist lock file (WHAT)" to ERR, WHAT
 * formatted from FMT, and returns SAVELOCK_FOREIGN. */
__attribute__((format(printf, 4, 5)))
static int foreign(char *err, size_t errlen, const char *path,
                   const char *fmt, ...)
{
    char what[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s exists and is not an fmnist lock file (%s)",
             path, what);
    return SAVELOCK_FOREIGN;
}

/* Returns SAVELOCK_OK when FD, the file PATH, is a regular file that
 * contains SAVELOCK_MARKER or nothing, and sets *EMPTY. Otherwise returns
 * SAVELOCK_FOREIGN with ERR naming what the file is. */
static int check_contents(int fd, const char *path, int *empty, char *err,
                          size_t errlen)
{
    char head[MARKER_LEN];
    struct stat st;

    if (fstat(fd, &st) != 0)
        return fail(err, errlen, "cannot read the lock file %s: %s", path,
                    strerror(errno));
    if (!S_ISREG(st.st_mode))
        return foreign(err, errlen, path, "it is %s",
                       util_file_kind(st.st_mode));
    /* A file with other names is someone's file, even when empty: the
     * marker written into it would show up under those names too. */
    if (st.st_nlink != 1)
        return foreign(err, errlen, path, "it has %lu names",
                       (unsigned long)st.st_nlink);
    *empty = st.st_size == 0;
    if (*empty || (st.st_size == (off_t)MARKER_LEN
                   && pread(fd, head, MARKER_LEN, 0) == (ssize_t)MARKER_LEN
                   && memcmp(head, SAVELOCK_MARKER, MARKER_LEN) == 0))
        return SAVELOCK_OK;
    return foreign(err, errlen, path, "%lld byte%s", (long long)st.st_size,
                   st.st_size == 1 ? "" : "s");
}

/* Explains why PATH, the lock file of TARGET, could not be opened for
 * writing with ERRNUM, and returns the SAVELOCK code for it. An existing
 * file that this user cannot write may still be the lock file of
 * another user's live run, so its lock and contents are checked through
 * a read-only descriptor. */
static int explain_open_failure(const char *path, const char *target,
                                int errnum, long *owner, char *err,
                                size_t errlen)
{
    struct stat st;
    int fd, empty, rc;

    if (lstat(path, &st) != 0)
        return fail(err, errlen, "cannot create the lock file %s: %s", path,
                    strerror(errnum));
    if (!S_ISREG(st.st_mode))
        return foreign(err, errlen, path, "it is %s",
                       util_file_kind(st.st_mode));
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        rc = check_contents(fd, path, &empty, err, errlen);
        *owner = lock_owner(fd);
        close(fd);
        if (rc != SAVELOCK_OK)
            return rc;
        if (*owner != 0)
            return SAVELOCK_BUSY;
    }
    return fail(err, errlen, "cannot open the lock file %s: %s; if no "
                "fmnist is saving to %s, remove %s", path, strerror(errnum),
                target, path);
}

/* Opens PATH, the lock file of TARGET, for writing, creating it if it is
 * missing. Returns the descriptor and sets *CREATED, or returns -1 with
 * the code in *RC (0 when another run created or removed the file
 * meanwhile, so the caller should try again). */
static int open_lock_file(const char *path, const char *target,
                          int *created, int *rc, long *owner, char *err,
                          size_t errlen)
{
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    *created = 0;
    *rc = 0;
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
        if (fd < 0 && errno == EEXIST)
            return -1;
        *created = fd >= 0;
    }
    if (fd < 0)
        *rc = explain_open_failure(path, target, errno, owner, err, errlen);
    return fd;
}

int savelock_take(SaveLock *lock, const char *target, long *owner,
                  char *err, size_t errlen)
{
    char *path = xmalloc(strlen(target) + sizeof SAVELOCK_SUFFIX);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int rc = SAVELOCK_OK;

    *owner = 0;
    sprintf(path, "%s" SAVELOCK_SUFFIX, target);
    for (int i = 0; i < SAVELOCK_TRIES; i++) {
        int created, empty = 0;
        int fd = open_lock_file(path, target, &created, &rc, owner, err,
                                errlen);

        if (fd < 0) {
            if (rc != SAVELOCK_OK)
                goto fail;
            continue;
        }
        rc = created ? SAVELOCK_OK
                     : check_contents(fd, path, &empty, err, errlen);
        if (rc != SAVELOCK_OK) {
            close(fd);
            goto fail;
        }
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int errnum = errno;

            *owner = lock_owner(fd);
            close(fd);
            if (errnum != EACCES && errnum != EAGAIN) {
                rc = fail(err, errlen, "locking the lock file %s failed: %s",
                          path, strerror(errnum));
                goto fail;
            }
            if (*owner != 0) {
                rc = SAVELOCK_BUSY;
                goto fail;
            }
            continue;       /* the holder released it meanwhile */
        }
        /* A run that ended between the open and the lock removed this
         * file, and a third run may have created a new one. */
        if (!still_named(fd, path)) {
            close(fd);
            continue;
        }
        if ((created || empty)
            && pwrite(fd, SAVELOCK_MARKER, MARKER_LEN, 0)
               != (ssize_t)MARKER_LEN) {
            rc = fail(err, errlen, "writing the lock file %s failed: %s",
                      path, strerror(errno));
            lock->fd = fd;
            lock->path = path;
            savelock_release(lock);
            return rc;
        }
        lock->fd = fd;
        lock->path = path;
        return SAVELOCK_OK;
    }
    rc = fail(err, errlen, "locking the lock file %s failed: other runs "
              "created or removed it %d times; try again", path,
              SAVELOCK_TRIES);
fail:
    free(path);
    return rc;
}

void savelock_release(SaveLock *lock)
{
    if (lock->path == NULL)
        return;
    if (still_named(lock->fd, lock->path))
        unlink(lock->path);
    close(lock->fd);
    free(lock->path);
    lock->path = NULL;
    lock->fd = 0;
}

int savelock_is_lock_file(const char *path, long *owner)
{
    char head[MARKER_LEN];
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int found;

    *owner = 0;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    *owner = lock_owner(fd);
    found = (st.st_size == 0 && *owner != 0)
            || (st.st_size == (off_t)MARKER_LEN
                && pread(fd, head, MARKER_LEN, 0) == (ssize_t)MARKER_LEN
                && memcmp(head, SAVELOCK_MARKER, MARKER_LEN) == 0);
    close(fd);
    return found;
}
