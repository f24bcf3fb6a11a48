/*
 * dataset: the IDX reader and the Fashion-MNIST loader.
 *
 * An IDX file is a big-endian header followed by unsigned bytes: the
 * magic number, then one 32-bit size per dimension (N for labels, N, rows
 * and cols for images). Files go through zlib's gzread, which decompresses
 * gzip data and passes any other content through unchanged, so a .gz file
 * and its unpacked copy load the same way whatever their names.
 *
 * Nothing in a header is trusted. The reader checks the magic number, the
 * dimensions and a bound on N before it allocates, and it grows its buffer
 * as bytes arrive, so a header that declares more data than the file contains
 * fails on the short read without a large allocation. The data must end
 * exactly where the header says. For gzip files, reading to the end also
 * makes zlib verify the CRC-32 and length in the gzip trailer. Bytes after
 * the last gzip member that do not start another one are ignored, as gzip
 * -d ignores them with a warning.
 *
 * Limits: only unsigned-byte IDX files of 28x28 images are accepted, and at
 * most IDX_MAX_COUNT images or labels per file.
 */
#include "config.h"

#include "dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"

/* Upper bound on the image or label count in a header, about 170 times
 * the 60000 training images. It caps an image payload at 7.84 GB. */
#define IDX_MAX_COUNT 10000000u

/* Size of zlib's input buffer for each file. zlib's default is 8 KiB, and
 * a larger one means fewer read(2) calls on the 26 MB training images. */
#define GZ_BUFFER_SIZE (1u << 20)

/* Initial size of a payload buffer, which doubles up to the declared size. */
#define PAYLOAD_FIRST_SIZE ((size_t)4 << 20)

/* Maximum number of bytes for one gzread call, which takes an unsigned
 * length and returns an int. */
#define GZ_READ_MAX ((size_t)1 << 30)

const char *const dataset_class_names[DATASET_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

/* The first three letters of each name, the hyphen left out. */
const char *const dataset_class_short[DATASET_CLASSES] = {
    "Tsh", "Tro", "Pul", "Dre", "Coa",
    "San", "Shi", "Sne", "Bag", "Ank",
};

/* Base names of the four files, in the order the loader needs them. */
const char *const dataset_file_bases[DATASET_FILES] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",  "t10k-labels-idx1-ubyte",
};

/* The fix for a data file whose content is wrong. */
#define DATA_FIX "reinstall dataset-fashion-mnist or copy the original file"

#define NAME_VARIANTS_NOTE \
    "each file may be named BASE.gz or BASE, or use a dot before idx " \
    "as in train-images.idx3-ubyte.gz"

/* Describes one kind of IDX file for the reader and its messages. */
typedef struct {
    uint32_t magic;
    int ndims;           /* 32-bit sizes after the magic number */
    size_t record_size;  /* bytes per image or label */
    const char *unit;    /* plural noun for one record */
    const char *kind;    /* name used after the magic number in messages */
} IdxFormat;

static const IdxFormat idx_images = {
    IDX_MAGIC_IMAGES, 3, DATASET_PIXELS, "images", "IDX images",
};

static const IdxFormat idx_labels = {
    IDX_MAGIC_LABELS, 1, 1, "labels", "IDX labels",
};

/* ---------------------------------------------------------------- errors */

/* Writes "PATH: message" into ERR, which may be NULL. */
static void set_error(char *err, size_t errlen, const char *path,
                      const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || errlen == 0)
        return;
    n = snprintf(err, errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Appends to the message being built in BUF. Output past LEN is dropped,
 * and *POS keeps counting, so callers need no checks between calls. */
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (buf == NULL || *pos >= len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos += (size_t)n;
}

/*
 * Returns zlib's text for the last error on GZ, or NULL when there is
 * none. zlib 1.2.13 prefixes most texts with the file's name, "<fd:N>: "
 * for a file opened with gzdopen, which is dropped here because every
 * message of this module already starts with the path.
 */
static const char *gz_error_text(gzFile gz, const char *path, int *errnum)
{
    const char *text = gzerror(gz, errnum);
    const char *rest;

    (void)path;
    if (*errnum == Z_OK)
        return NULL;
    if (strncmp(text, "<fd:", 4) == 0 && (rest = strstr(text, ">: ")) != NULL)
        text = rest + 3;
    return text;
}

/* Reports the error that made gzread return -1 or stop early. */
static void set_read_error(char *err, size_t errlen, const char *path,
                           gzFile gz)
{
    int errnum;
    const char *text = gz_error_text(gz, path, &errnum);

    if (text == NULL)
        set_error(err, errlen, path, "read failed");
    else if (errnum != Z_ERRNO && errnum != Z_MEM_ERROR && !gzdirect(gz))
        set_error(err, errlen, path, "corrupt gzip data: %s; " DATA_FIX,
                  text);
    else
        set_error(err, errlen, path, "read failed: %s", text);
}

/* ---------------------------------------------------------------- reading */

static gzFile open_file(const char *path, char *err, size_t errlen)
{
    gzFile gz;
    struct stat st;

    int fd = util_open_regular(path);

    if (fd < 0 && errno == EISDIR) {
        set_error(err, errlen, path, "is a directory, expected a regular "
                  "file");
        return NULL;
    }
    if (fd < 0 && errno == EINVAL && stat(path, &st) == 0) {
        set_error(err, errlen, path, "cannot open: is %s, not a regular "
                  "file; replace it with the data file",
                  util_file_kind(st.st_mode));
        return NULL;
    }
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        set_error(err, errlen, path, "cannot open: %s; check the file's "
                  "permissions", strerror(errno));
        return NULL;
    }
    if (fd < 0) {
        set_error(err, errlen, path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    errno = 0;
    gz = gzdopen(fd, "rb");
    if (gz == NULL) {
        close(fd);
        set_error(err, errlen, path, "cannot open: out of memory");
        return NULL;
    }
    gzbuffer(gz, GZ_BUFFER_SIZE);
    return gz;
}

/* Reads up to LEN bytes. Returns the number read, which is short only at
 * the end of the data, or -1 when zlib reports an error. */
static long long read_bytes(gzFile gz, uint8_t *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t want = len - done < GZ_READ_MAX ? len - done : GZ_READ_MAX;
        int n = gzread(gz, buf + done, (unsigned)want);

        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (long long)done;
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16
           | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Names a magic number found in place of the expected one, so that a
 * labels file passed as images is recognised as such. */
static const char *magic_note(uint32_t magic)
{
    if (magic == IDX_MAGIC_IMAGES)
        return " (IDX images)";
    if (magic == IDX_MAGIC_LABELS)
        return " (IDX labels)";
    return "";
}

/* Returns 1 when PATH ends in ".gz". */
static int gz_named(const char *path)
{
    size_t len = strlen(path);

    return len >= 3 && strcmp(path + len - 3, ".gz") == 0;
}

/* Reads the header into DIMS (FMT->ndims sizes) and checks the magic. */
static int read_header(gzFile gz, const char *path, const IdxFormat *fmt,
                       uint32_t *dims, char *err, size_t errlen)
{
    uint8_t raw[16];
    size_t need = 4 * (size_t)(1 + fmt->ndims);
    long long got = read_bytes(gz, raw, need);
    uint32_t magic;
    int errnum;

    if (got < 0) {
        set_read_error(err, errlen, path, gz);
        return -1;
    }
    if ((size_t)got < need && gz_error_text(gz, path, &errnum) != NULL) {
        /* Short gzip data with a zlib error, usually "unexpected end of
         * file", is a stream cut off, not an empty or short IDX file. */
        set_error(err, errlen, path, "truncated: not a complete gzip stream "
                  "(zlib: %s after %lld of the %zu %s header bytes); "
                  DATA_FIX,
                  gz_error_text(gz, path, &errnum), got, need, fmt->kind);
        return -1;
    }
    if (got == 0) {
        /* NEED is 8 or 16, which takes "an" or "a". */
        set_error(err, errlen, path,
                  "file is empty, expected %s %zu-byte %s header; "
                  DATA_FIX, need == 8 ? "an" : "a", need, fmt->kind);
        return -1;
    }
    if ((size_t)got < need) {
        set_error(err, errlen, path,
                  "file ends after %lld of the %zu %s header bytes; "
                  DATA_FIX, got, need, fmt->kind);
        return -1;
    }

    magic = load_be32(raw);
    if (magic != fmt->magic) {
        /* zlib reads a file without the gzip magic as raw bytes, and
         * gzdirect returns whether it read this one that way. */
        set_error(err, errlen, path,
                  "%sbad magic number: expected 0x%08x (%s), found "
                  "0x%08x%s; " DATA_FIX,
                  gz_named(path) && gzdirect(gz) ? "not a gzip file and "
                  "not a raw IDX file: " : "", (unsigned)fmt->magic,
                  fmt->kind, (unsigned)magic, magic_note(magic));
        return -1;
    }
    for (int i = 0; i < fmt->ndims; i++)
        dims[i] = load_be32(raw + 4 * (i + 1));
    return 0;
}

static int check_count(const char *path, const IdxFormat *fmt, uint32_t count,
                       char *err, size_t errlen)
{
    /* The second bound matters only where size_t has 32 bits. */
    size_t limit = IDX_MAX_COUNT < SIZE_MAX / fmt->record_size
                       ? IDX_MAX_COUNT : SIZE_MAX / fmt->record_size;

    if (count == 0) {
        set_error(err, errlen, path,
                  "header declares 0 %s, expected at least 1; " DATA_FIX,
                  fmt->unit);
        return -1;
    }
    if (count > limit) {
        set_error(err, errlen, path,
                  "header declares %lu %s, more than the limit of %zu; "
                  DATA_FIX,
                  (unsigned long)count, fmt->unit, limit);
        return -1;
    }
    return 0;
}

/* Doubles the payload buffer, up to TOTAL bytes. */
static int grow_buffer(uint8_t **buf, size_t *cap, size_t total,
                       const char *path, char *err, size_t errlen)
{
    size_t next = *cap < total / 2 ? *cap * 2 : total;
    uint8_t *p = realloc(*buf, next);

    if (p == NULL) {
        set_error(err, errlen, path,
                  "out of memory growing the payload buffer to %zu bytes",
                  next);
        return -1;
    }
    *buf = p;
    *cap = next;
    return 0;
}

/*
 * Reads COUNT records of FMT->record_size bytes into a malloc'd *OUT. A
 * file that ends early is an error that gives how many whole records it
 * held.
 */
static int read_payload(gzFile gz, const char *path, const IdxFormat *fmt,
                        uint32_t count, uint8_t **out,
                        char *err, size_t errlen)
{
    size_t total = (size_t)count * fmt->record_size;
    size_t cap = total < PAYLOAD_FIRST_SIZE ? total : PAYLOAD_FIRST_SIZE;
    size_t done = 0;
    uint8_t *buf = malloc(cap);

    if (buf == NULL) {
        set_error(err, errlen, path, "out of memory allocating %zu bytes",
                  cap);
        return -1;
    }
    while (done < total) {
        long long got;

        if (done == cap && grow_buffer(&buf, &cap, total, path,
                                       err, errlen) != 0)
            goto fail;
        got = read_bytes(gz, buf + done, cap - done);
        if (got < 0) {
            set_read_error(err, errlen, path, gz);
            goto fail;
        }
        done += (size_t)got;
        if (done < cap)
            break;
    }

    if (done < total) {
        int errnum;
        /* A gzip stream cut short ends with a zlib error, such as
         * "unexpected end of file". The end of a raw file leaves none. */
        const char *zlib_text = gz_error_text(gz, path, &errnum);

        if (zlib_text != NULL)
            set_error(err, errlen, path, "truncated: not a complete gzip "
                      "stream (zlib: %s after %zu of %lu %s); " DATA_FIX,
                      zlib_text,
                      done / fmt->record_size, (unsigned long)count,
                      fmt->unit);
        else
            set_error(err, errlen, path, "file ends after %zu of %lu %s; "
                      "the copy stopped early, so " DATA_FIX,
                      done / fmt->record_size, (unsigned long)count,
                      fmt->unit);
        goto fail;
    }
    *out = buf;
    return 0;

fail:
    free(buf);
    return -1;
}

/* Checks that nothing follows the payload. For gzip files this read also
 * lets zlib check the trailer's CRC-32 and length. */
static int check_end(gzFile gz, const char *path, const IdxFormat *fmt,
                     uint32_t count, char *err, size_t errlen)
{
    uint8_t scratch[4096];
    unsigned long long extra = 0;
    int n;
    int errnum;

    while ((n = gzread(gz, scratch, sizeof scratch)) > 0)
        extra += (unsigned)n;
    if (n < 0 || gz_error_text(gz, path, &errnum) != NULL) {
        set_read_error(err, errlen, path, gz);
        return -1;
    }
    if (extra > 0) {
        set_error(err, errlen, path,
                  "%llu unexpected bytes after the %lu %s that the header "
                  "declares; " DATA_FIX, extra, (unsigned long)count,
                  fmt->unit);
        return -1;
    }
    return 0;
}

/* Reads a whole IDX file of format FMT: header, payload and end check.
 * DIMS receives the sizes after the magic number. */
static int read_idx(const char *path, const IdxFormat *fmt, uint32_t *dims,
                    uint8_t **data, char *err, size_t errlen)
{
    gzFile gz = open_file(path, err, errlen);
    uint8_t *buf = NULL;

    *data = NULL;
    if (gz == NULL)
        return -1;
    if (read_header(gz, path, fmt, dims, err, errlen) != 0)
        goto fail;

    if (fmt->ndims == 3
        && (dims[1] != DATASET_ROWS || dims[2] != DATASET_COLS)) {
        set_error(err, errlen, path,
                  "bad image size: expected %dx%d, found %lux%lu; "
                  DATA_FIX,
                  DATASET_ROWS, DATASET_COLS, (unsigned long)dims[1],
                  (unsigned long)dims[2]);
        goto fail;
    }
    if (check_count(path, fmt, dims[0], err, errlen) != 0
        || read_payload(gz, path, fmt, dims[0], &buf, err, errlen) != 0
        || check_end(gz, path, fmt, dims[0], err, errlen) != 0)
        goto fail;

    gzclose(gz);
    *data = buf;
    return 0;

fail:
    free(buf);
    gzclose(gz);
    return -1;
}

int idx_read_images(const char *path, uint8_t **pixels, int *count,
                    char *err, size_t errlen)
{
    uint32_t dims[3];

    *count = 0;
    if (read_idx(path, &idx_images, dims, pixels, err, errlen) != 0)
        return -1;
    *count = (int)dims[0];
    return 0;
}

int idx_read_labels(const char *path, uint8_t **labels, int *count,
                    char *err, size_t errlen)
{
    uint32_t dims[1];

    *count = 0;
    if (read_idx(path, &idx_labels, dims, labels, err, errlen) != 0)
        return -1;

    for (uint32_t i = 0; i < dims[0]; i++) {
        if ((*labels)[i] >= DATASET_CLASSES) {
            set_error(err, errlen, path,
                      "label %u at index %lu is outside 0-%d; " DATA_FIX,
                      (unsigned)(*labels)[i], (unsigned long)i,
                      DATASET_CLASSES - 1);
            free(*labels);
            *labels = NULL;
            return -1;
        }
    }
    *count = (int)dims[0];
    return 0;
}

/* ---------------------------------------------------------------- files */

/* Returns a malloc'd string formatted as by printf. FMT is declared
 * nonnull, so UBSan checks it at the callers. Checked in here, GCC 12 at
 * -O1 with -fsanitize=undefined copies the first vsnprintf into the path
 * where UBSan reports a null FMT and carries on, then warns of a null
 * format string on that path. */
__attribute__((format(printf, 1, 2), nonnull(1)))
static char *format_alloc(const char *fmt, ...)
{
    va_list ap;
    int len;
    char *s;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        util_fatal("format_alloc: invalid format");
    s = xmalloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Returns 1 when PATH exists and is not a directory. An unreadable file
 * still counts, so that opening it reports the permission problem. */
static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Fills PATHS with the malloc'd names BASE may have in DIR, in the order
 * they are tried, and returns how many there are (at most 4). */
static int candidate_paths(const char *dir, const char *base, char **paths)
{
    size_t dlen = strlen(dir);
    const char *sep = dlen > 0 && dir[dlen - 1] != '/' ? "/" : "";
    const char *idx = strstr(base, "-idx");
    int npaths = 0;

    paths[npaths++] = format_alloc("%s%s%s.gz", dir, sep, base);
    paths[npaths++] = format_alloc("%s%s%s", dir, sep, base);

    /* Some copies of the data circulate as train-images.idx3-ubyte in
     * place of train-images-idx3-ubyte. */
    if (idx != NULL) {
        int head = (int)(idx - base);

        paths[npaths++] = format_alloc("%s%s%.*s.%s.gz", dir, sep,
                                       head, base, idx + 1);
        paths[npaths++] = format_alloc("%s%s%.*s.%s", dir, sep,
                                       head, base, idx + 1);
    }
    return npaths;
}

char *dataset_find_file(const char *dir, const char *base)
{
    char *paths[4];
    char *found = NULL;
    int npaths = candidate_paths(dir, base, paths);

    for (int i = 0; i < npaths; i++) {
        if (found == NULL && file_exists(paths[i]))
            found = paths[i];
        else
            free(paths[i]);
    }
    return found;
}

/* Returns a malloc'd "PATH is ..." saying why the directory entry PATH
 * cannot be opened as a data file, or NULL when there is no entry. */
static char *describe_entry(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0) {
        /* A directory without search permission hides its entries. */
        if (errno != ENOENT && errno != ENOTDIR)
            return format_alloc("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (stat(path, &st) != 0) {
        if (errno == ELOOP)
            return format_alloc("%s is a symbolic link loop, expected a "
                                "regular file", path);
        if (errno == ENOENT)
            return format_alloc("%s is a symbolic link to a missing file",
                                path);
        return format_alloc("%s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return format_alloc("%s is a directory, expected a regular file",
                            path);
    return NULL;
}

char *dataset_describe_unusable(const char *dir, const char *base)
{
    char *paths[4];
    char *text = NULL;
    int npaths = candidate_paths(dir, base, paths);

    for (int i = 0; i < npaths; i++) {
        if (text == NULL)
            text = describe_entry(paths[i]);
        free(paths[i]);
    }
    return text;
}

/*
 * Returns 1 when DIR contains all four data files. Otherwise writes the
 * reason into WHY and returns 0. *MISSING is set when the directory
 * exists but some files have no entry at all. An entry that is no file
 * (a directory, a symbolic link loop) is described instead.
 */
static int check_dir(const char *dir, char *why, size_t whylen, int *missing)
{
    struct stat st;
    char *problems[4];
    size_t pos = 0;
    int unusable = 0;

    *missing = 0;
    why[0] = '\0';
    if (stat(dir, &st) != 0) {
        append(why, whylen, &pos, "%s", strerror(errno));
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        append(why, whylen, &pos, "not a directory");
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        char *path = dataset_find_file(dir, dataset_file_bases[i]);

        problems[i] = NULL;
        if (path == NULL)
            problems[i] = dataset_describe_unusable(dir, dataset_file_bases[i]);
        if (path == NULL && problems[i] == NULL) {
            append(why, whylen, &pos, "%s%s", *missing ? ", " : "missing ",
                   dataset_file_bases[i]);
            *missing = 1;
        }
        free(path);
    }

    /* Entries that are there under a data file's name but are no file
     * follow the missing names, so that list keeps its "missing A, B"
     * form. */
    for (int i = 0; i < 4; i++) {
        if (problems[i] != NULL) {
            append(why, whylen, &pos, "%s%s", pos > 0 ? "; " : "",
                   problems[i]);
            unusable = 1;
        }
        free(problems[i]);
    }
    return !*missing && !unusable;
}

/* The ways out of a failed search, by where the directories came from. */
#define FIX_DEFAULT                                                     \
    "To fix this, install the data with: sudo apt-get install "         \
    "dataset-fashion-mnist, or pass --data with a directory that holds " \
    "the four files"
#define FIX_OPTION                                                      \
    "To fix this, check the --data path, or leave --data out to use "   \
    "the installed data (sudo apt-get install dataset-fashion-mnist)"
#define FIX_ENV                                                         \
    "To fix this, point FMNIST_DATA at a directory that holds the four " \
    "files, or unset it to use the installed data (sudo apt-get "       \
    "install dataset-fashion-mnist)"

/* Appends what FMT formats to the malloc'd string *MSG, which may be
 * NULL, growing it to fit. FMT is declared nonnull for the reason that
 * format_alloc gives. */
__attribute__((format(printf, 2, 3), nonnull(1, 2)))
static void append_alloc(char **msg, const char *fmt, ...)
{
    va_list ap;
    size_t old = *msg != NULL ? strlen(*msg) : 0;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        util_fatal("append_alloc: invalid format");
    *msg = xrealloc(*msg, old + (size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(*msg + old, (size_t)len + 1, fmt, ap);
    va_end(ap);
}

/*
 * Searches DIRS in order and sets *DIR_OUT to a copy of the first that
 * contains all four files. On failure *ERR_OUT gets a malloc'd message:
 * HEADING, one line per directory with the reason it was rejected, and
 * FIX. The message is allocated because an escaped name can take four
 * times its length, and a fixed buffer would cut the names it lists.
 */
static int search_dirs(const char *heading, const char *fix,
                       const char *const *dirs, int ndirs, char **dir_out,
                       char **err_out)
{
    /* Room for four "PATH is a directory, expected a regular file". */
    char why[4 * (PATH_MAX + 64) + 256];
    int missing;
    int any_missing = 0;
    char *msg = NULL;

    *dir_out = NULL;
    *err_out = NULL;
    append_alloc(&msg, "%s\n", heading);
    for (int i = 0; i < ndirs; i++) {
        if (check_dir(dirs[i], why, sizeof why, &missing)) {
            *dir_out = xstrdup(dirs[i]);
            free(msg);
            return 0;
        }
        /* The lines of the message end in newlines, so a newline in the
         * name or the reason is escaped to keep the lines apart. */
        size_t dir_len = util_escape_unprintable(dirs[i], NULL, 0);
        size_t why_len = util_escape_unprintable(why, NULL, 0);
        char *shown_dir = xmalloc(dir_len + 1);
        char *shown_why = xmalloc(why_len + 1);

        util_escape_unprintable(dirs[i], shown_dir, dir_len + 1);
        util_escape_unprintable(why, shown_why, why_len + 1);
        append_alloc(&msg, "  %s: %s\n", shown_dir, shown_why);
        free(shown_dir);
        free(shown_why);
        any_missing |= missing;
    }
    if (any_missing)
        append_alloc(&msg, "(%s)\n", NAME_VARIANTS_NOTE);
    append_alloc(&msg, "%s", fix);
    *err_out = msg;
    return -1;
}

int dataset_search(const char *const *dirs, int ndirs, char **dir_out,
                   char **err_out)
{
    return search_dirs("Fashion-MNIST data not found. Directories tried:",
                       FIX_DEFAULT, dirs, ndirs, dir_out, err_out);
}

int dataset_locate(const char *explicit_dir, char **dir_out, char **err_out)
{
    const char *env = getenv("FMNIST_DATA");
    const char *defaults[2] = {"./data", DATASET_SYSTEM_DIR};

    /* A directory the user named is never replaced by a default one,
     * because training on data other than requested would be silent. */
    if (explicit_dir != NULL)
        return search_dirs("Fashion-MNIST data not found in the requested "
                           "data directory:", FIX_OPTION, &explicit_dir, 1,
                           dir_out, err_out);
    if (env != NULL && env[0] != '\0')
        return search_dirs("Fashion-MNIST data not found in FMNIST_DATA "
                           "(unset it to search ./data and "
                           DATASET_SYSTEM_DIR "):", FIX_ENV, &env, 1,
                           dir_out, err_out);
    return dataset_search(defaults, 2, dir_out, err_out);
}

/* ---------------------------------------------------------------- loading */

static char *find_data_file(const char *dir, const char *base,
                            char *err, size_t errlen)
{
    char *path = dataset_find_file(dir, base);
    char *problem;

    if (path != NULL)
        return path;
    problem = dataset_describe_unusable(dir, base);
    if (problem != NULL && err != NULL)
        snprintf(err, errlen, "%s", problem);
    else
        set_error(err, errlen, dir, "%s not found (%s)", base,
                  NAME_VARIANTS_NOTE);
    free(problem);
    return NULL;
}

int dataset_load(const char *dir, int train, Dataset *ds,
                 char *err, size_t errlen)
{
    const char *images_base = dataset_file_bases[train ? 0 : 2];
    const char *labels_base = dataset_file_bases[train ? 1 : 3];
    char *images_path = NULL;
    char *labels_path = NULL;
    uint8_t *pixels = NULL;
    uint8_t *labels = NULL;
    int nimages = 0;
    int nlabels = 0;

    memset(ds, 0, sizeof *ds);
    images_path = find_data_file(dir, images_base, err, errlen);
    if (images_path == NULL)
        goto fail;
    labels_path = find_data_file(dir, labels_base, err, errlen);
    if (labels_path == NULL)
        goto fail;

    if (idx_read_images(images_path, &pixels, &nimages, err, errlen) != 0
        || idx_read_labels(labels_path, &labels, &nlabels, err, errlen) != 0)
        goto fail;
    if (nimages != nlabels) {
        set_error(err, errlen, labels_path,
                  "label count does not match the images: expected %d "
                  "labels (as in %s), found %d", nimages, images_path,
                  nlabels);
        goto fail;
    }

    ds->pixels = pixels;
    ds->labels = labels;
    ds->count = nimages;
    free(images_path);
    free(labels_path);
    return 0;

fail:
    free(pixels);
    free(labels);
    free(images_path);
    free(labels_path);
    memset(ds, 0, sizeof *ds);
    return -1;
}

void dataset_free(Dataset *ds)
{
    if (ds == NULL)
        return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* Divides rather than multiplying by 1 / 255.0f: IEEE division is
 * correctly rounded, so each value is the float nearest to v / 255,
 * which the multiplication misses for some v. GCC vectorises the loop
 * with the division too. */
static void bytes_to_floats(const uint8_t *restrict src, size_t n,
                            float *restrict out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)src[i] / 255.0f;
}

void dataset_copy_image(const Dataset *ds, int index, float *out)
{
    bytes_to_floats(ds->pixels + (size_t)index * DATASET_PIXELS,
                    DATASET_PIXELS, out);
}

void dataset_copy_images(const Dataset *ds, int first, int n, float *out)
{
    bytes_to_floats(ds->pixels + (size_t)first * DATASET_PIXELS,
                    (size_t)n * DATASET_PIXELS, out);
}
