/*
 * savelock: the lock that keeps two fmnist runs from saving checkpoints
 * to the same file.
 *
 * A run that saves to FILE holds a write lock (fcntl) on FILE.lock, a
 * file of its own, because every save renames a new file over FILE. A
 * lock file contains exactly SAVELOCK_MARKER, so that a file of the same
 * name that fmnist did not create is never taken over or removed. An
 * empty FILE.lock is taken over too: a run that died between creating
 * the file and writing the marker leaves one behind. A killed run leaves
 * its lock file unlocked, and the next run takes it over.
 *
 * fcntl locks belong to the process, and closing any descriptor of the
 * lock file releases them, so a process must open a lock file it holds
 * only through its SaveLock.
 */
#ifndef FMNIST_SAVELOCK_H
#define FMNIST_SAVELOCK_H

#include <stddef.h>

#define SAVELOCK_SUFFIX ".lock"
#define SAVELOCK_MARKER "fmnist --save lock\n"

enum {
    SAVELOCK_OK = 0,
    SAVELOCK_BUSY = -1,     /* another process holds the lock */
    SAVELOCK_FOREIGN = -2,  /* FILE.lock exists and is no lock file */
    SAVELOCK_FAILED = -3    /* a system call failed */
};

/* A lock that this process holds. All zero when it holds none. */
typedef struct {
    int fd;                 /* the locked file, open until release */
    char *path;             /* FILE.lock; NULL when no lock is held */
} SaveLock;

/*
 * Takes the write lock of TARGET's lock file, creating the file if it is
 * missing, and returns SAVELOCK_OK with LOCK filled in. Otherwise returns
 * SAVELOCK_BUSY with *OWNER set to the pid that holds it, or
 * SAVELOCK_FOREIGN or SAVELOCK_FAILED with a message "what: why" in ERR.
 */
int savelock_take(SaveLock *lock, const char *target, long *owner,
                  char *err, size_t errlen);

/* Removes the lock file if it is still the file that LOCK locked, then
 * releases the lock. Does nothing when LOCK holds none. */
void savelock_release(SaveLock *lock);

/* Returns 1 when PATH is a lock file: a regular file that contains
 * SAVELOCK_MARKER, or an empty one that a process has locked. Sets *OWNER
 * to the pid that holds its lock, or 0 when none does. */
int savelock_is_lock_file(const char *path, long *owner);

#endif
