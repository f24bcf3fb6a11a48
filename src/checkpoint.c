/*
 * checkpoint: writes and reads the run file described in checkpoint.h.
 *
 * Writing streams the fields through a small packing buffer, so a large
 * model is never copied whole. Every fwrite, the flush, the fsync and the
 * close are checked, and the CRC-32 is updated on the bytes as they go
 * out. Reading validates the 44-byte header first (magic, version, header
 * CRC) and compares the size it describes with the file's size before
 * reading the rest, so a huge or foreign file is never loaded into memory.
 *
 * Limits: model specs up to CHECKPOINT_SPEC_MAX bytes, up to 2^40
 * parameters and up to 2^20 history points per series.
 */
#include "config.h"

#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "net.h"
#include "util.h"

#define MAX_PARAMS ((uint64_t)1 << 40)
#define MAX_HISTORY (1u << 20)
/* Bounds far above any real run that keep the trainer's counts and the
 * doubling of the history stride from overflowing. */
#define MAX_EPOCHS (1 << 24)
#define MAX_COUNT ((int64_t)1 << 48)
#define MAX_HISTORY_STRIDE (1 << 16)
/* The largest learning rate that --lr and the + key give. */
#define MAX_LR 10.0f

/* Floats packed per fwrite; the buffer lives on the stack. */
#define PACK_FLOATS 4096

/* Fixed-size parts of the body, in bytes (see the layout in checkpoint.h). */
#define OPTIM_SCALARS_SIZE (5 * 4 + 8)
#define PROGRESS_SIZE (8 + 8 + 8)
#define PARTIAL_SIZE (4 + 4 + 8 + 8 + 8 + 8)
#define STRIDE_SIZE 4
#define CRC_SIZE 4

/* Fields of the fixed header that decide the size of the rest. */
typedef struct {
    uint32_t version;
    uint32_t spec_len;
    uint64_t n_params;
    uint32_t optim_kind;
    uint32_t n_history;
    uint32_t n_test_history;
    uint32_t n_stats;
} Header;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ encoding */

static void store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void store_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t float_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof f);
    return f;
}

static uint64_t double_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof d);
    return d;
}

/* Returns the number of bytes a file with header H has, or 0 when the
 * header's counts are out of range. */
static uint64_t expected_size(const Header *h)
{
    uint64_t moments = h->optim_kind == OPTIM_ADAM ? 2 : 1;

    if (h->n_params == 0 || h->n_params > MAX_PARAMS)
        return 0;
    if (h->spec_len == 0 || h->spec_len > CHECKPOINT_SPEC_MAX)
        return 0;
    if (h->n_history > MAX_HISTORY || h->n_test_history > MAX_HISTORY)
        return 0;
    if (h->n_stats > h->n_params)
        return 0;
    return CHECKPOINT_HEADER_SIZE + (uint64_t)h->spec_len
           + 4 * h->n_params * (1 + moments) + 4 * (uint64_t)h->n_stats
           + OPTIM_SCALARS_SIZE
           + PROGRESS_SIZE + PARTIAL_SIZE + STRIDE_SIZE
           + 8 * (uint64_t)h->n_history + 4 * (uint64_t)h->n_test_history
           + CRC_SIZE;
}

/* ------------------------------------------------------------ writing */

typedef struct {
    FILE *file;
    uLong crc;
    int error;  /* errno of the first failed write, or 0 */
} Writer;

/* Writes N bytes (N fits in uInt) and adds them to the running CRC. */
static void put_bytes(Writer *w, const void *data, size_t n)
{
    if (w->error != 0 || n == 0)
        return;
    w->crc = crc32(w->crc, data, (uInt)n);
    errno = 0;
    if (fwrite(data, 1, n, w->file) != n)
        w->error = errno != 0 ? errno : EIO;
}

static void put_u32(Writer *w, uint32_t v)
{
    uint8_t b[4];

    store_u32(b, v);
    put_bytes(w, b, sizeof b);
}

static void put_u64(Writer *w, uint64_t v)
{
    uint8_t b[8];

    store_u64(b, v);
    put_bytes(w, b, sizeof b);
}

static void put_f32(Writer *w, float f)
{
    put_u32(w, float_bits(f));
}

/* Writes N floats from V, or N zeros when V is NULL. */
static void put_floats(Writer *w, const float *v, size_t n)
{
    uint8_t buf[PACK_FLOATS * 4];

    while (n > 0 && w->error == 0) {
        size_t chunk = n < PACK_FLOATS ? n : PACK_FLOATS;

        for (size_t i = 0; i < chunk; i++)
            store_u32(buf + 4 * i, v != NULL ? float_bits(v[i]) : 0);
        put_bytes(w, buf, 4 * chunk);
        if (v != NULL)
            v += chunk;
        n -= chunk;
    }
}

static void put_header(Writer *w, const Checkpoint *ck)
{
    uint8_t h[CHECKPOINT_HEADER_SIZE];

    memcpy(h, CHECKPOINT_MAGIC, 8);
    store_u32(h + 8, CHECKPOINT_VERSION);
    store_u32(h + 12, (uint32_t)strlen(ck->spec));
    store_u64(h + 16, ck->n_params);
    store_u32(h + 24, (uint32_t)ck->optim.kind);
    store_u32(h + 28, (uint32_t)ck->n_history);
    store_u32(h + 32, (uint32_t)ck->n_test_history);
    store_u32(h + 36, (uint32_t)ck->n_stats);
    store_u32(h + 40, (uint32_t)crc32(0L, h, 40));
    put_bytes(w, h, sizeof h);
}

static void put_optim(Writer *w, const Checkpoint *ck)
{
    const Optim *opt = &ck->optim;

    put_f32(w, opt->lr);
    put_f32(w, opt->momentum);
    put_f32(w, opt->beta1);
    put_f32(w, opt->beta2);
    put_f32(w, opt->eps);
    put_u64(w, (uint64_t)opt->t);
    put_floats(w, opt->m, ck->n_params);
    if (opt->kind == OPTIM_ADAM)
        put_floats(w, opt->v, ck->n_params);
}

static void put_progress(Writer *w, const Checkpoint *ck)
{
    const CheckpointEpoch *part = &ck->partial;

    put_u64(w, ck->seed);
    put_u64(w, (uint64_t)ck->epochs_done);
    put_u64(w, (uint64_t)ck->step);
    put_u32(w, (uint32_t)part->batch);
    put_u32(w, (uint32_t)part->train_count);
    put_u64(w, (uint64_t)part->batches);
    put_u64(w, (uint64_t)part->samples);
    put_u64(w, (uint64_t)part->correct);
    put_u64(w, double_bits(part->loss_sum));
    put_u32(w, (uint32_t)ck->history_stride);
    put_floats(w, ck->loss_history, (size_t)ck->n_history);
    put_floats(w, ck->acc_history, (size_t)ck->n_history);
    put_floats(w, ck->test_acc_history, (size_t)ck->n_test_history);
}

/* Writes the whole file to F. Returns 0 or the errno of the first failure. */
static int write_checkpoint(FILE *file, const Checkpoint *ck)
{
    Writer w = { file, crc32(0L, Z_NULL, 0), 0 };

    put_header(&w, ck);
    put_bytes(&w, ck->spec, strlen(ck->spec));
    put_floats(&w, ck->params, ck->n_params);
    put_floats(&w, ck->stats, ck->n_stats);
    put_optim(&w, ck);
    put_progress(&w, ck);
    put_u32(&w, (uint32_t)w.crc);
    return w.error;
}

/* Copies the directory part of PATH ("." when there is none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;

    if (slash == NULL)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    dir = xmalloc((size_t)(slash - path) + 1);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return dir;
}

/* Flushes the directory entry of a rename to disk. */
static int sync_dir(const char *path)
{
    char *dir = dir_of(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Gives the new file the mode of the one it replaces, or rw-r--r--, since
 * both mkstemp and save_unnamed create it with mode 0600. */
static void copy_mode(int fd, const char *path)
{
    struct stat st;
    mode_t mode = 0644;

    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    /* NOTE: the process umask is not applied, because reading it means
     * setting it, which races with other threads creating files. */
    (void)fchmod(fd, mode);
}

/* Writes CK to FILE, then flushes and fsyncs it. Returns 0, or the errno
 * of the failure with *STEP naming the step. */
static int fill_temp(FILE *file, const Checkpoint *ck, const char **step)
{
    int rc;

    *step = "writing";
    rc = write_checkpoint(file, ck);
    if (rc == 0 && fflush(file) != 0)
        rc = errno;
    if (rc == 0 && fsync(fileno(file)) != 0) {
        *step = "fsync";
        rc = errno;
    }
    return rc;
}

/* Returns a stream writing to the new temporary file FD, or NULL with
 * errno set and FD closed. */
static FILE *open_temp_stream(int fd)
{
    FILE *file = fdopen(fd, "wb");
    int saved;

    if (file == NULL) {
        saved = errno;
        close(fd);
        errno = saved;
    }
    return file;
}

/* rename replaces whatever PATH names, so a device, a FIFO or a symbolic
 * link would become a regular file. Called after the long write, because
 * PATH may change while the run goes on. Returns -1 with ERR set when
 * PATH exists and is not a regular file. */
static int check_replaceable(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: is %s, not a regular file, so it was "
                "not replaced; give --save the path of a regular file",
                path, util_file_kind(st.st_mode));
        return -1;
    }
    return 0;
}

/* Renames the complete temporary file TMP over PATH, removing TMP when
 * that fails, and fsyncs the directory. */
static int replace_with(const char *tmp, const char *path,
                        char *err, size_t errlen)
{
    int rc;

    if (rename(tmp, path) != 0) {
        rc = errno;
        unlink(tmp);
        set_err(err, errlen, "%s: renaming the temporary file over it: %s",
                path, strerror(rc));
        return -1;
    }
    /* The new file is in place; only its directory entry may not be on disk. */
    rc = sync_dir(path);
    if (rc != 0) {
        set_err(err, errlen, "%s: fsync of its directory: %s", path,
                strerror(rc));
        return -1;
    }
    return 0;
}

/* Returns PATH followed by CHECKPOINT_TMP_SUFFIX, for the caller to free. */
static char *temp_template(const char *path)
{
    static const char suffix[] = CHECKPOINT_TMP_SUFFIX;
    size_t len = strlen(path);
    char *tmp = xmalloc(len + sizeof suffix);

    memcpy(tmp, path, len);
    memcpy(tmp + len, suffix, sizeof suffix);
    return tmp;
}

/* Saves through a temporary file that mkstemp creates with its final name,
 * so a save killed before the rename leaves that file behind. */
static int save_named(const char *path, const Checkpoint *ck,
                      char *err, size_t errlen)
{
    char *tmp = temp_template(path);
    const char *step = "creating a temporary file";
    FILE *file;
    int fd, rc;

    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = errno;
        goto fail;
    }
    copy_mode(fd, path);
    file = open_temp_stream(fd);
    if (file == NULL) {
        rc = errno;
        step = "opening the temporary file";
        goto fail_unlink;
    }
    rc = fill_temp(file, ck, &step);
    if (fclose(file) != 0 && rc == 0)
        rc = errno;
    if (rc != 0)
        goto fail_unlink;

    if (check_replaceable(path, err, errlen) != 0) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    rc = replace_with(tmp, path, err, errlen);
    free(tmp);
    return rc;

fail_unlink:
    unlink(tmp);
fail:
    set_err(err, errlen, "%s: %s: %s", path, step, strerror(rc));
    free(tmp);
    return -1;
}

/* Returned by save_unnamed when unnamed temporary files do not work here
 * and the directory is as it was. */
#define SAVE_UNNAMED_UNAVAILABLE 1

#ifdef O_TMPFILE
/* Random names that linkat tries before it gives up. */
#define LINK_TRIES 100

/* Replaces the last 6 characters of NAME, the X's of
 * CHECKPOINT_TMP_SUFFIX, by random letters and digits as mkstemp does. */
static void randomize_suffix(char *name, Rng *rng)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(name);

    for (size_t i = len - 6; i < len; i++)
        name[i] = chars[rng_below(rng, sizeof chars - 1)];
}

/* Gives the unnamed file FD the name PATH CHECKPOINT_TMP_SUFFIX, with
 * linkat on its entry in FD_DIR, and returns that name. Returns NULL with
 * errno set when linkat fails for another reason than an existing name. */
static char *link_temp(int fd, const char *path, const char *fd_dir)
{
    char *tmp = temp_template(path);
    char *fd_path = xmalloc(strlen(fd_dir) + 16);
    struct timespec now;
    Rng rng;
    int rc = -1;

    sprintf(fd_path, "%s/%d", fd_dir, fd);
    /* The names only need to differ between processes and threads, and
     * a name that exists already is retried. */
    clock_gettime(CLOCK_REALTIME, &now);
    rng_seed(&rng, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec
                   + ((uint64_t)getpid() << 40) + (uint64_t)(uintptr_t)&rng);
    for (int i = 0; i < LINK_TRIES && rc != 0; i++) {
        randomize_suffix(tmp, &rng);
        rc = linkat(AT_FDCWD, fd_path, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW);
        if (rc != 0 && errno != EEXIST)
            break;
    }
    free(fd_path);
    if (rc != 0) {
        free(tmp);
        return NULL;
    }
    return tmp;
}

/* Names the complete unnamed file FILE, closes it and renames it over
 * PATH. Returns like save_unnamed. */
static int name_and_replace(FILE *file, const char *path, const char *fd_dir,
                            char *err, size_t errlen)
{
    char *tmp = link_temp(fileno(file), path, fd_dir);
    int rc;

    if (tmp == NULL) {
        set_err(err, errlen, "%s: naming the temporary file: %s", path,
                strerror(errno));
        fclose(file);
        return SAVE_UNNAMED_UNAVAILABLE;
    }
    if (fclose(file) != 0) {
        rc = errno;
        unlink(tmp);
        free(tmp);
        set_err(err, errlen, "%s: writing: %s", path, strerror(rc));
        return -1;
    }
    rc = replace_with(tmp, path, err, errlen);
    free(tmp);
    return rc;
}

/* Saves through an O_TMPFILE file in PATH's directory, which has no name
 * until it is complete, so a save killed before that leaves nothing. The
 * name it then gets lasts only until the rename. Returns 0, or -1 with ERR
 * set, or SAVE_UNNAMED_UNAVAILABLE with the reason in ERR when O_TMPFILE
 * or linkat through FD_DIR failed. */
static int save_unnamed(const char *path, const Checkpoint *ck,
                        const char *fd_dir, char *err, size_t errlen)
{
    char *dir = dir_of(path);
    const char *step = "creating a temporary file";
    FILE *file;
    int fd, rc;

    fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    free(dir);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s: %s", path, step, strerror(errno));
        return SAVE_UNNAMED_UNAVAILABLE;
    }
    copy_mode(fd, path);
    file = open_temp_stream(fd);
    if (file == NULL) {
        set_err(err, errlen, "%s: opening the temporary file: %s", path,
                strerror(errno));
        return -1;
    }
    rc = fill_temp(file, ck, &step);
    if (rc != 0) {
        set_err(err, errlen, "%s: %s: %s", path, step, strerror(rc));
        fclose(file);
        return -1;
    }
    if (check_replaceable(path, err, errlen) != 0) {
        fclose(file);
        return -1;
    }
    return name_and_replace(file, path, fd_dir, err, errlen);
}
#else
static int save_unnamed(const char *path, const Checkpoint *ck,
                        const char *fd_dir, char *err, size_t errlen)
{
    (void)ck;
    (void)fd_dir;
    set_err(err, errlen, "%s: creating a temporary file: %s", path,
            strerror(EOPNOTSUPP));
    return SAVE_UNNAMED_UNAVAILABLE;
}
#endif

int checkpoint_save_using(const char *path, const Checkpoint *ck,
                          CheckpointTmp method, const char *fd_dir,
                          char *err, size_t errlen)
{
    int rc;

    if (method == CHECKPOINT_TMP_NAMED)
        return save_named(path, ck, err, errlen);
    rc = save_unnamed(path, ck, fd_dir, err, errlen);
    if (rc != SAVE_UNNAMED_UNAVAILABLE)
        return rc;
    if (method == CHECKPOINT_TMP_UNNAMED)
        return -1;
    /* open(2) lists EISDIR and ENOENT from kernels without O_TMPFILE
     * (before Linux 3.11) and EOPNOTSUPP from file systems without it,
     * and linkat through /proc fails where /proc is not mounted. Every
     * failure falls back, because an error that has nothing to do with
     * O_TMPFILE, such as EACCES, recurs in the named path, which reports
     * it with the message a save gave before O_TMPFILE was used. */
    return save_named(path, ck, err, errlen);
}

int checkpoint_save(const char *path, const Checkpoint *ck,
                    char *err, size_t errlen)
{
    /* Set once an unnamed save has failed, so that later saves go
     * straight to the named file instead of writing the whole file twice
     * where only the linkat fails. */
    static atomic_int named_only;
    int rc;

    if (atomic_load(&named_only))
        return save_named(path, ck, err, errlen);
    rc = save_unnamed(path, ck, "/proc/self/fd", err, errlen);
    if (rc != SAVE_UNNAMED_UNAVAILABLE)
        return rc;
    atomic_store(&named_only, 1);
    return save_named(path, ck, err, errlen);
}

/* ------------------------------------------------------------ reading */

typedef struct {
    const uint8_t *p;
} Cursor;

static uint32_t get_u32(Cursor *c)
{
    uint32_t v = load_u32(c->p);

    c->p += 4;
    return v;
}

static uint64_t get_u64(Cursor *c)
{
    uint64_t v = load_u64(c->p);

    c->p += 8;
    return v;
}

static float get_f32(Cursor *c)
{
    return bits_float(get_u32(c));
}

static void get_floats(Cursor *c, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = get_f32(c);
}

/* Returns the CRC-32 of N bytes; zlib's crc32 takes at most UINT_MAX. */
static uint32_t crc_of(const uint8_t *data, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);

    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;

        crc = crc32(crc, data, chunk);
        data += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* Formats up to 8 leading bytes of a file for the bad-magic message. */
static void format_magic(const uint8_t *data, size_t n, char *out, size_t outlen)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && i < 8 && used + 3 < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%02x", data[i]);
}

/* Checks magic, version and header CRC of the SIZE-byte file whose first
 * min(SIZE, 44) bytes are in H_BYTES, and fills HDR. */
static int check_header(const char *path, const uint8_t *h_bytes, size_t size,
                        Header *hdr, char *err, size_t errlen)
{
    size_t magic_len = size < 8 ? size : 8;
    char found[20];

    if (size == 0) {
        set_err(err, errlen, "%s: empty file, not a checkpoint", path);
        return -1;
    }
    if (memcmp(h_bytes, CHECKPOINT_MAGIC, magic_len) != 0) {
        format_magic(h_bytes, magic_len, found, sizeof found);
        set_err(err, errlen, "%s: not an fmnist checkpoint (starts with "
                "bytes %s, expected \"%s\"); give a file that --save or "
                "the s key wrote", path, found, CHECKPOINT_MAGIC);
        return -1;
    }
    if (size >= 12) {
        hdr->version = load_u32(h_bytes + 8);
        if (hdr->version < CHECKPOINT_VERSION) {
            set_err(err, errlen, "%s: checkpoint format version %" PRIu32
                    ", but this program reads version %u only; load it "
                    "with the older fmnist that wrote it, or train again",
                    path, hdr->version, CHECKPOINT_VERSION);
            return -1;
        }
        /* A newer format may have another header, so its CRC cannot be
         * checked here, and a damaged version field looks the same. */
        if (hdr->version != CHECKPOINT_VERSION) {
            set_err(err, errlen, "%s: checkpoint format version %" PRIu32
                    ", but this program reads version %u; load it with "
                    "the newer fmnist that wrote it, or, if the file is "
                    "damaged, use an earlier checkpoint", path,
                    hdr->version, CHECKPOINT_VERSION);
            return -1;
        }
    }
    if (size < CHECKPOINT_HEADER_SIZE) {
        set_err(err, errlen, "%s: truncated: ends after %zu bytes, inside "
                "the %d-byte header; copy the file again or use an earlier "
                "checkpoint", path, size, CHECKPOINT_HEADER_SIZE);
        return -1;
    }
    if (load_u32(h_bytes + 40) != (uint32_t)crc32(0L, h_bytes, 40)) {
        set_err(err, errlen, "%s: corrupted: header CRC-32 mismatch; the "
                "file is damaged, so use an earlier checkpoint or train "
                "again", path);
        return -1;
    }
    hdr->spec_len = load_u32(h_bytes + 12);
    hdr->n_params = load_u64(h_bytes + 16);
    hdr->optim_kind = load_u32(h_bytes + 24);
    hdr->n_history = load_u32(h_bytes + 28);
    hdr->n_test_history = load_u32(h_bytes + 32);
    hdr->n_stats = load_u32(h_bytes + 36);
    if (hdr->optim_kind != OPTIM_SGD && hdr->optim_kind != OPTIM_ADAM) {
        set_err(err, errlen, "%s: unknown optimiser kind %" PRIu32, path,
                hdr->optim_kind);
        return -1;
    }
    return 0;
}

/* Writes the first header count that expected_size rejects, with its
 * value and its range, into OUT. */
static void describe_bad_count(const Header *h, char *out, size_t outlen)
{
    if (h->n_params == 0 || h->n_params > MAX_PARAMS)
        snprintf(out, outlen, "parameter count %" PRIu64 ", expected 1 to "
                 "%" PRIu64, h->n_params, MAX_PARAMS);
    else if (h->spec_len == 0 || h->spec_len > CHECKPOINT_SPEC_MAX)
        snprintf(out, outlen, "spec length %" PRIu32 ", expected 1 to %d",
                 h->spec_len, CHECKPOINT_SPEC_MAX);
    else if (h->n_history > MAX_HISTORY)
        snprintf(out, outlen, "training history length %" PRIu32 ", "
                 "expected at most %u", h->n_history, MAX_HISTORY);
    else if (h->n_test_history > MAX_HISTORY)
        snprintf(out, outlen, "test history length %" PRIu32 ", expected "
                 "at most %u", h->n_test_history, MAX_HISTORY);
    else
        snprintf(out, outlen, "running statistics count %" PRIu32 ", "
                 "expected at most the %" PRIu64 " parameters", h->n_stats,
                 h->n_params);
}

/* Appends TEXT to OUT, which holds *LEN bytes and has room for SIZE
 * with the NUL, as far as it fits. */
static void append_text(char *out, size_t size, size_t *len, const char *text)
{
    for (; *text != '\0' && *len + 1 < size; text++)
        out[(*len)++] = *text;
    out[*len] = '\0';
}

/* Writes PATH to OUT as one shell word in single quotes, with each
 * single quote in it written as '\'' and "./" before a name that starts
 * with "-", which a command would take for an option. OUT is cut to SIZE
 * bytes, NUL included; SIZE must be at least 1. */
static void shell_quote(const char *path, char *out, size_t size)
{
    size_t len = 0;
    char one[2] = "";

    append_text(out, size, &len, path[0] == '-' ? "'./" : "'");
    for (const char *c = path; *c != '\0'; c++) {
        one[0] = *c;
        append_text(out, size, &len, *c == '\'' ? "'\\''" : one);
    }
    append_text(out, size, &len, "'");
}

/* Compares the file size with the one the header describes. */
static int check_size(const char *path, const Header *hdr, uint64_t size,
                      char *err, size_t errlen)
{
    uint64_t want = expected_size(hdr);

    if (want == 0) {
        char field[96];

        describe_bad_count(hdr, field, sizeof field);
        set_err(err, errlen, "%s: header out of range: %s; the file is "
                "damaged or not from fmnist, so use an earlier checkpoint "
                "or train again", path, field);
        return -1;
    }
    if (size < want) {
        set_err(err, errlen, "%s: truncated: ends after %" PRIu64 " of %"
                PRIu64 " bytes; the copy or the write stopped early, so "
                "copy the file again or use an earlier checkpoint", path,
                size, want);
        return -1;
    }
    if (size > want) {
        char quoted[CHECKPOINT_ERR_LEN];

        /* The command ends the message, so that it can be pasted into a
         * shell whatever the name contains. */
        shell_quote(path, quoted, sizeof quoted);
        set_err(err, errlen, "%s: %" PRIu64 " bytes, but its header "
                "describes %" PRIu64 "; the file has trailing data, so if "
                "something was appended to it, load it again after cutting "
                "it back with: truncate -s %" PRIu64 " %s", path, size, want,
                want, quoted);
        return -1;
    }
    return 0;
}

static void parse_optim(Cursor *c, const Header *hdr, Checkpoint *ck)
{
    float lr = get_f32(c);
    Optim *opt = &ck->optim;

    optim_init(opt, (OptimKind)hdr->optim_kind, ck->n_params, lr);
    opt->momentum = get_f32(c);
    opt->beta1 = get_f32(c);
    opt->beta2 = get_f32(c);
    opt->eps = get_f32(c);
    opt->t = (int64_t)get_u64(c);
    get_floats(c, opt->m, ck->n_params);
    if (opt->kind == OPTIM_ADAM)
        get_floats(c, opt->v, ck->n_params);
}

static void parse_progress(Cursor *c, Checkpoint *ck)
{
    CheckpointEpoch *part = &ck->partial;

    ck->seed = get_u64(c);
    ck->epochs_done = (int64_t)get_u64(c);
    ck->step = (int64_t)get_u64(c);
    part->batch = (int)get_u32(c);
    part->train_count = (int)get_u32(c);
    part->batches = (int64_t)get_u64(c);
    part->samples = (int64_t)get_u64(c);
    part->correct = (int64_t)get_u64(c);
    part->loss_sum = bits_double(get_u64(c));
    ck->history_stride = (int)get_u32(c);
    get_floats(c, ck->loss_history, (size_t)ck->n_history);
    get_floats(c, ck->acc_history, (size_t)ck->n_history);
    get_floats(c, ck->test_acc_history, (size_t)ck->n_test_history);
}

/* Fills CK from the body at DATA (already size- and CRC-checked). */
static void parse_body(const uint8_t *data, const Header *hdr, Checkpoint *ck)
{
    Cursor c = { data + CHECKPOINT_HEADER_SIZE };

    ck->spec = xmalloc(hdr->spec_len + 1);
    memcpy(ck->spec, c.p, hdr->spec_len);
    ck->spec[hdr->spec_len] = '\0';
    c.p += hdr->spec_len;

    ck->n_params = (size_t)hdr->n_params;
    ck->params = xmalloc_aligned(ck->n_params * sizeof(float));
    get_floats(&c, ck->params, ck->n_params);
    ck->n_stats = hdr->n_stats;
    ck->stats = xcalloc(ck->n_stats + 1, sizeof(float));
    get_floats(&c, ck->stats, ck->n_stats);
    parse_optim(&c, hdr, ck);

    ck->n_history = (int)hdr->n_history;
    ck->n_test_history = (int)hdr->n_test_history;
    ck->loss_history = xcalloc(hdr->n_history + 1, sizeof(float));
    ck->acc_history = xcalloc(hdr->n_history + 1, sizeof(float));
    ck->test_acc_history = xcalloc(hdr->n_test_history + 1, sizeof(float));
    parse_progress(&c, ck);
}

/* Names the first field of CK that no writer produces, or NULL. */
/* Returns 1 when the N values of V are finite and not negative, and with
 * AT_MOST_ONE set not above 1 either, as accuracies are. */
static int in_unit_range(const float *v, int n, int at_most_one)
{
    for (int i = 0; i < n; i++)
        if (!(v[i] >= 0.0f && isfinite(v[i]))
            || (at_most_one && v[i] > 1.0f))
            return 0;
    return 1;
}

static const char *invalid_field(const Checkpoint *ck)
{
    const CheckpointEpoch *part = &ck->partial;

    if (!isfinite(ck->optim.lr) || ck->optim.lr <= 0
        || ck->optim.lr > MAX_LR || ck->optim.t < 0
        || ck->optim.t > MAX_COUNT)
        return "optimiser state";
    /* The ranges optim_init and --lr give; outside them a step divides
     * by zero or leaves the weights unchanged. */
    if (!(ck->optim.momentum >= 0 && ck->optim.momentum < 1)
        || !(ck->optim.beta1 >= 0 && ck->optim.beta1 < 1)
        || !(ck->optim.beta2 >= 0 && ck->optim.beta2 < 1)
        || !(ck->optim.eps > 0 && isfinite(ck->optim.eps)))
        return "optimiser state: momentum, beta or epsilon out of range";
    /* Training stops before it saves a non-finite weight, so one in the
     * file means damage that the CRC did not catch. */
    for (size_t i = 0; i < ck->n_params; i++)
        if (!isfinite(ck->params[i]))
            return "parameters: a weight is NaN or infinite";
    for (size_t i = 0; i < ck->n_params; i++)
        if (!isfinite(ck->optim.m[i])
            || (ck->optim.v != NULL && !isfinite(ck->optim.v[i])))
            return "optimiser state: a moment is NaN or infinite";
    if (ck->epochs_done < 0 || ck->epochs_done > MAX_EPOCHS || ck->step < 0
        || ck->step > MAX_COUNT)
        return "epoch or step count";
    if (ck->history_stride < 1 || ck->history_stride > MAX_HISTORY_STRIDE)
        return "history stride";
    /* Every batch contains at least one sample, and a loss sum is a sum
     * of cross-entropies. */
    if (part->batch < 0 || part->train_count < 0 || part->batches < 0
        || part->samples < 0 || part->correct < 0
        || part->samples > part->train_count
        || part->correct > part->samples
        || part->batches > part->samples
        || !(part->loss_sum >= 0 && isfinite(part->loss_sum)))
        return "unfinished-epoch position";
    if (!in_unit_range(ck->acc_history, ck->n_history, 1)
        || !in_unit_range(ck->loss_history, ck->n_history, 0)
        || !in_unit_range(ck->test_acc_history, ck->n_test_history, 1))
        return "history: a loss or accuracy is out of range";
    return NULL;
}

/* Checks the running statistics of each bn layer of NET against CK's
 * values: every mean finite, every variance finite and not negative.
 * net_predict divides by sqrt(variance + NET_BN_EPS), so a negative
 * variance would turn that layer's outputs into NaN or huge values. */
static int check_running_stats(const char *path, const Checkpoint *ck,
                               const Net *net, char *err, size_t errlen)
{
    for (int i = 0; i < net->n_layers; i++) {
        const Layer *l = &net->layers[i];
        const float *mean = ck->stats + l->stats_offset;
        const float *var = mean + l->out_c;

        if (l->kind != LAYER_BN)
            continue;
        for (int c = 0; c < l->out_c; c++) {
            const char *field = NULL;
            float value = 0.0f;

            if (!isfinite(mean[c])) {
                field = "mean";
                value = mean[c];
            } else if (!(var[c] >= 0.0f && isfinite(var[c]))) {
                field = "variance";
                value = var[c];
            }
            if (field == NULL)
                continue;
            set_err(err, errlen, "%s: invalid running %s %g in layer %d "
                    "(bn), channel %d of %d: expected a finite value%s; "
                    "the file is damaged, so use an earlier checkpoint or "
                    "train again", path, field, value, i + 1, c + 1,
                    l->out_c, field[0] == 'v' ? " of 0 or more" : "");
            return -1;
        }
    }
    return 0;
}

/* Checks that CK's model, built in NET, gives finite outputs in every
 * layer on net_find_nonfinite_layer's probe images. */
static int check_outputs_finite(const char *path, const Checkpoint *ck,
                                Net *net, char *err, size_t errlen)
{
    int layer;

    memcpy(net->params, ck->params, ck->n_params * sizeof(float));
    memcpy(net->stats, ck->stats, ck->n_stats * sizeof(float));
    layer = net_find_nonfinite_layer(net);
    if (layer < 0)
        return 0;
    set_err(err, errlen, "%s: layer %d (%s) outputs infinity or NaN on "
            "synthetic black, white and noise images, so every prediction "
            "would be NaN; use an earlier checkpoint, or train again with "
            "a lower learning rate", path, layer + 1,
            net_layer_name(net->layers[layer].kind));
    return -1;
}

/* Checks that the stored parameter and statistics counts are the ones
 * the spec needs, and that the running statistics and the weights give
 * finite predictions. */
static int check_spec(const char *path, const Checkpoint *ck,
                      char *err, size_t errlen)
{
    char net_err[NET_ERR_LEN];
    Net net;
    int rc;

    if (net_create(&net, ck->spec, 1, DATASET_ROWS, DATASET_COLS,
                   DATASET_CLASSES, net_err, sizeof net_err) != 0) {
        set_err(err, errlen, "%s: invalid model spec \"%s\": %s", path,
                ck->spec, net_err);
        return -1;
    }
    if (net.n_params != ck->n_params) {
        set_err(err, errlen, "%s: contains %zu parameters, but its model %s "
                "has %zu", path, ck->n_params, net.spec, net.n_params);
        net_free(&net);
        return -1;
    }
    if (net.n_stats != ck->n_stats) {
        set_err(err, errlen, "%s: contains %zu running statistics, but its "
                "model %s has %zu", path, ck->n_stats, net.spec, net.n_stats);
        net_free(&net);
        return -1;
    }
    rc = check_running_stats(path, ck, &net, err, errlen);
    if (rc == 0)
        rc = check_outputs_finite(path, ck, &net, err, errlen);
    net_free(&net);
    return rc;
}

/* Opens PATH for reading and stores its size in *SIZE. Returns NULL with
 * ERR set when it cannot be opened or is not a regular file. */
static FILE *open_regular(const char *path, uint64_t *size,
                          char *err, size_t errlen)
{
    int fd = util_open_regular(path);
    FILE *file;
    struct stat st;

    if (fd < 0 && errno == EINVAL && stat(path, &st) == 0) {
        set_err(err, errlen, "%s: is %s, not a regular file; give the "
                "checkpoint file that --save or the s key wrote", path,
                util_file_kind(st.st_mode));
        return NULL;
    }
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        set_err(err, errlen, "%s: %s; check the file's permissions", path,
                strerror(errno));
        return NULL;
    }
    if (fd < 0) {
        set_err(err, errlen, "%s: %s", path,
                errno == EISDIR ? "is a directory, expected a checkpoint file"
                : strerror(errno));
        return NULL;
    }
    file = fdopen(fd, "rb");
    if (file == NULL) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        fclose(file);
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return file;
}

/* Reads the header, validates it against the file size and returns the
 * whole file in *DATA. */
static int read_checked(const char *path, Header *hdr, uint8_t **data,
                        char *err, size_t errlen)
{
    uint8_t head[CHECKPOINT_HEADER_SIZE];
    uint64_t size;
    FILE *file = open_regular(path, &size, err, errlen);
    size_t got;
    int rc = -1;

    if (file == NULL)
        return -1;
    got = fread(head, 1, sizeof head, file);
    if (got < sizeof head && ferror(file)) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (check_header(path, head, got, hdr, err, errlen) != 0
        || check_size(path, hdr, size, err, errlen) != 0)
        goto out;

    *data = xmalloc((size_t)size);
    memcpy(*data, head, sizeof head);
    got = fread(*data + sizeof head, 1, (size_t)size - sizeof head, file);
    if (got != (size_t)size - sizeof head) {
        set_err(err, errlen, "%s: truncated while reading: ends after %zu "
                "of %" PRIu64 " bytes; copy the file again or use an earlier "
                "checkpoint", path, got + sizeof head, size);
        free(*data);
        *data = NULL;
        goto out;
    }
    rc = 0;
out:
    fclose(file);
    return rc;
}

int checkpoint_load(const char *path, Checkpoint *ck, char *err, size_t errlen)
{
    Header hdr;
    uint8_t *data = NULL;
    size_t size;
    uint32_t stored, computed;
    const char *bad;

    memset(ck, 0, sizeof *ck);
    if (read_checked(path, &hdr, &data, err, errlen) != 0)
        return -1;
    size = (size_t)expected_size(&hdr);

    stored = load_u32(data + size - CRC_SIZE);
    computed = crc_of(data, size - CRC_SIZE);
    if (stored != computed) {
        set_err(err, errlen, "%s: corrupted: CRC-32 mismatch (stored "
                "%08" PRIx32 ", computed %08" PRIx32 "); the file is "
                "damaged, so use an earlier checkpoint or train again",
                path, stored, computed);
        free(data);
        return -1;
    }
    if (memchr(data + CHECKPOINT_HEADER_SIZE, '\0', hdr.spec_len) != NULL) {
        set_err(err, errlen, "%s: model spec contains a NUL byte", path);
        free(data);
        return -1;
    }

    parse_body(data, &hdr, ck);
    free(data);
    bad = invalid_field(ck);
    if (bad != NULL) {
        set_err(err, errlen, "%s: invalid %s; the file is damaged, so "
                "use an earlier checkpoint or train again", path, bad);
        checkpoint_free(ck);
        return -1;
    }
    if (check_spec(path, ck, err, errlen) != 0) {
        checkpoint_free(ck);
        return -1;
    }
    return 0;
}

void checkpoint_free(Checkpoint *ck)
{
    free(ck->spec);
    free(ck->params);
    free(ck->stats);
    optim_free(&ck->optim);
    free(ck->loss_history);
    free(ck->acc_history);
    free(ck->test_acc_history);
    memset(ck, 0, sizeof *ck);
}
