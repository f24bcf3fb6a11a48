/*
 * Tests for dataset: the IDX reader, file lookup, directory search and the
 * loader.
 *
 * Each test writes small synthetic IDX files, gzip or raw, into its own
 * directory under a mkdtemp directory. The tcase removes that directory in
 * the parent process, so files are cleaned up even when a test fails. One
 * test reads the real test set from DATASET_SYSTEM_DIR and is skipped with
 * a note when the package dataset-fashion-mnist is not installed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "tests.h"
#include "util.h"

/* Fails with the whole message when NEEDLE is not part of it. */
#define ck_assert_contains(haystack, needle)                               \
    ck_assert_msg(strstr((haystack), (needle)) != NULL,                    \
                  "message \"%s\" does not contain \"%s\"", (haystack),    \
                  (needle))

static char tcase_dir[PATH_MAX];  /* created once per tcase, in the parent */
static char dir[PATH_MAX];        /* created per test, inside tcase_dir */

/* Writes "PARENT/NAME" to OUT, a PATH_MAX buffer, and fails the test when
 * it does not fit. */
static void join_path(char *out, const char *parent, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", parent, name);

    ck_assert_msg(n > 0 && n < PATH_MAX, "path %s/%s is too long", parent,
                  name);
}

/* ---------------------------------------------------------------- fixtures */

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char child[PATH_MAX];
        int n;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (n > 0 && n < PATH_MAX)
            remove_tree(child);
    }
    closedir(d);
    rmdir(path);
}

static void tcase_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    join_path(tcase_dir, tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp",
              "check_dataset.XXXXXX");
    if (mkdtemp(tcase_dir) == NULL)
        ck_abort_msg("mkdtemp %s failed", tcase_dir);
}

static void tcase_teardown(void)
{
    remove_tree(tcase_dir);
}

static void test_setup(void)
{
    join_path(dir, tcase_dir, "test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        ck_abort_msg("mkdtemp %s failed", dir);
}

/* ---------------------------------------------------------------- writers */

/* An IDX file being built in memory. */
typedef struct {
    uint8_t data[8192];
    size_t len;
} Bytes;

static void put_be32(Bytes *b, uint32_t v)
{
    ck_assert_uint_le(b->len + 4, sizeof b->data);
    b->data[b->len++] = (uint8_t)(v >> 24);
    b->data[b->len++] = (uint8_t)(v >> 16);
    b->data[b->len++] = (uint8_t)(v >> 8);
    b->data[b->len++] = (uint8_t)v;
}

static void put_byte(Bytes *b, uint8_t v)
{
    ck_assert_uint_lt(b->len, sizeof b->data);
    b->data[b->len++] = v;
}

/* Pixel I of image N in the synthetic images. Image 0 starts with 255 and
 * image 1 with 0, so both ends of the range appear. */
static uint8_t pixel_value(int n, int i)
{
    return (uint8_t)(255 - (n * 97 + i * 13) % 256);
}

/* Header for COUNT images of ROWS x COLS, then PAYLOAD_IMAGES images. */
static void build_images(Bytes *b, uint32_t magic, uint32_t count,
                         uint32_t rows, uint32_t cols, int payload_images)
{
    b->len = 0;
    put_be32(b, magic);
    put_be32(b, count);
    put_be32(b, rows);
    put_be32(b, cols);
    for (int n = 0; n < payload_images; n++)
        for (int i = 0; i < DATASET_PIXELS; i++)
            put_byte(b, pixel_value(n, i));
}

static void build_labels(Bytes *b, uint32_t magic, uint32_t count,
                         const uint8_t *labels, int nlabels)
{
    b->len = 0;
    put_be32(b, magic);
    put_be32(b, count);
    for (int i = 0; i < nlabels; i++)
        put_byte(b, labels[i]);
}

/* Writes LEN bytes to DIR/NAME, gzip-compressed when GZIP is set, and
 * returns the path in a static buffer. */
static const char *write_file(const char *name, const void *data, size_t len,
                              int gzip)
{
    static char path[PATH_MAX];

    join_path(path, dir, name);
    if (gzip) {
        gzFile gz = gzopen(path, "wb");

        ck_assert_ptr_nonnull(gz);
        if (len > 0)
            ck_assert_int_eq(gzwrite(gz, data, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(gz), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
    }
    return path;
}

static const uint8_t good_labels[3] = {9, 0, 5};

/* Writes 3 valid images and 3 valid labels under the given names. */
static void write_good_pair(const char *images_name, const char *labels_name,
                            int gzip)
{
    Bytes b;

    build_images(&b, IDX_MAGIC_IMAGES, 3, 28, 28, 3);
    write_file(images_name, b.data, b.len, gzip);
    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    write_file(labels_name, b.data, b.len, gzip);
}

/* Writes DIR/NAME as gzip, then applies EDIT to its compressed bytes. */
static const char *write_edited_gzip(const char *name, const Bytes *content,
                                     void (*edit)(uint8_t *, size_t *))
{
    static uint8_t raw[16384];
    const char *path = write_file(name, content->data, content->len, 1);
    FILE *f = fopen(path, "rb");
    size_t len;

    ck_assert_ptr_nonnull(f);
    len = fread(raw, 1, sizeof raw, f);
    fclose(f);
    ck_assert_uint_gt(len, 18);
    edit(raw, &len);
    return write_file(name, raw, len, 0);
}

static void cut_in_half(uint8_t *raw, size_t *len)
{
    (void)raw;
    *len /= 2;
}

/* The gzip trailer is CRC-32 then length, 4 bytes each, little-endian. */
static void flip_crc(uint8_t *raw, size_t *len)
{
    raw[*len - 8] ^= 0xff;
}

static void drop_length(uint8_t *raw, size_t *len)
{
    (void)raw;
    *len -= 4;
}

/* Keeps the 10-byte gzip header and 2 bytes of the deflate stream, too
 * few to decode a single byte. */
static void keep_12_bytes(uint8_t *raw, size_t *len)
{
    (void)raw;
    *len = 12;
}

/* Checks the bytes of the three synthetic images and their conversion to
 * floats, one image at a time and as a range. */
static void check_pixels(const Dataset *ds)
{
    float image[DATASET_PIXELS];
    float range[3 * DATASET_PIXELS];

    ck_assert_int_eq(ds->count, 3);
    dataset_copy_images(ds, 0, 3, range);
    for (int n = 0; n < 3; n++) {
        ck_assert_uint_eq(ds->labels[n], good_labels[n]);
        dataset_copy_image(ds, n, image);
        for (int i = 0; i < DATASET_PIXELS; i += 37) {
            float expected = (float)pixel_value(n, i) / 255.0f;

            ck_assert_uint_eq(ds->pixels[n * DATASET_PIXELS + i],
                              pixel_value(n, i));
            ck_assert_float_eq(image[i], expected);
            ck_assert_float_eq(range[n * DATASET_PIXELS + i], expected);
        }
    }
    dataset_copy_image(ds, 0, image);
    ck_assert_float_eq(image[0], 1.0f);
}

/* ------------------------------------------------------------ good files */

START_TEST(test_dataset_load_gzip)
{
    Dataset ds;
    char err[DATASET_ERR_LEN] = "";

    write_good_pair("train-images-idx3-ubyte.gz",
                    "train-labels-idx1-ubyte.gz", 1);
    ck_assert_msg(dataset_load(dir, 1, &ds, err, sizeof err) == 0, "%s", err);
    check_pixels(&ds);
    dataset_free(&ds);
    ck_assert_ptr_null(ds.pixels);
    ck_assert_int_eq(ds.count, 0);
}
END_TEST

START_TEST(test_dataset_load_raw)
{
    Dataset ds;
    char err[DATASET_ERR_LEN] = "";

    write_good_pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 0);
    ck_assert_msg(dataset_load(dir, 0, &ds, err, sizeof err) == 0, "%s", err);
    check_pixels(&ds);
    dataset_free(&ds);
}
END_TEST

/* Content decides the format: a gzip file without .gz still loads. */
START_TEST(test_dataset_load_gzip_without_suffix)
{
    Dataset ds;
    char err[DATASET_ERR_LEN] = "";

    write_good_pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 1);
    ck_assert_msg(dataset_load(dir, 0, &ds, err, sizeof err) == 0, "%s", err);
    check_pixels(&ds);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_dataset_load_dotted_names)
{
    Dataset ds;
    char err[DATASET_ERR_LEN] = "";
    Bytes b;

    build_images(&b, IDX_MAGIC_IMAGES, 3, 28, 28, 3);
    write_file("train-images.idx3-ubyte.gz", b.data, b.len, 1);
    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    write_file("train-labels.idx1-ubyte", b.data, b.len, 0);
    ck_assert_msg(dataset_load(dir, 1, &ds, err, sizeof err) == 0, "%s", err);
    check_pixels(&ds);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_dataset_find_file_order)
{
    char expected[PATH_MAX];
    char *path;
    Bytes b;

    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    ck_assert_ptr_null(dataset_find_file(dir, "t10k-labels-idx1-ubyte"));

    write_file("t10k-labels.idx1-ubyte", b.data, b.len, 0);
    path = dataset_find_file(dir, "t10k-labels-idx1-ubyte");
    join_path(expected, dir, "t10k-labels.idx1-ubyte");
    ck_assert_str_eq(path, expected);
    free(path);

    write_file("t10k-labels-idx1-ubyte", b.data, b.len, 0);
    write_file("t10k-labels-idx1-ubyte.gz", b.data, b.len, 1);
    path = dataset_find_file(dir, "t10k-labels-idx1-ubyte");
    join_path(expected, dir, "t10k-labels-idx1-ubyte.gz");
    ck_assert_str_eq(path, expected);
    free(path);
}
END_TEST

START_TEST(test_dataset_find_file_trailing_slash)
{
    char with_slash[PATH_MAX];
    char expected[PATH_MAX];
    char *path;
    Bytes b;

    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    write_file("t10k-labels-idx1-ubyte", b.data, b.len, 0);
    join_path(with_slash, dir, "");
    join_path(expected, dir, "t10k-labels-idx1-ubyte");
    path = dataset_find_file(with_slash, "t10k-labels-idx1-ubyte");
    ck_assert_str_eq(path, expected);
    free(path);
}
END_TEST

START_TEST(test_idx_read_images_bytes)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count = 0;
    Bytes b;
    const char *path;

    build_images(&b, IDX_MAGIC_IMAGES, 2, 28, 28, 2);
    path = write_file("images.gz", b.data, b.len, 1);
    ck_assert_msg(idx_read_images(path, &pixels, &count, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(count, 2);
    ck_assert_mem_eq(pixels, b.data + 16, 2 * DATASET_PIXELS);
    free(pixels);
}
END_TEST

START_TEST(test_dataset_class_names)
{
    ck_assert_str_eq(dataset_class_names[0], "T-shirt/top");
    ck_assert_str_eq(dataset_class_names[9], "Ankle boot");
    for (int i = 0; i < DATASET_CLASSES; i++) {
        /* Exactly as wide as a matrix column, so nothing cuts them. */
        ck_assert_uint_eq(strlen(dataset_class_short[i]), DATASET_SHORT_LEN);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(dataset_class_short[i], dataset_class_short[j]);
    }
}
END_TEST

/* ------------------------------------------------------------- bad files */

START_TEST(test_idx_labels_bad_magic)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count = -1;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_IMAGES, 3, good_labels, 3);
    path = write_file("train-labels-idx1-ubyte.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(labels);
    ck_assert_int_eq(count, 0);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "bad magic number");
    ck_assert_contains(err, "expected 0x00000801 (IDX labels)");
    ck_assert_contains(err, "found 0x00000803");
}
END_TEST

START_TEST(test_idx_images_bad_magic)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_images(&b, 0x12345678u, 1, 28, 28, 1);
    path = write_file("images", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(pixels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "expected 0x00000803 (IDX images)");
    ck_assert_contains(err, "found 0x12345678");
}
END_TEST

START_TEST(test_idx_images_wrong_size)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_images(&b, IDX_MAGIC_IMAGES, 1, 28, 27, 1);
    path = write_file("images.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "expected 28x28");
    ck_assert_contains(err, "found 28x27");

    build_images(&b, IDX_MAGIC_IMAGES, 1, 32, 28, 1);
    path = write_file("images", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "found 32x28");
}
END_TEST

START_TEST(test_idx_images_truncated_payload)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    /* The header declares 5 images; 2.5 follow. */
    build_images(&b, IDX_MAGIC_IMAGES, 5, 28, 28, 3);
    b.len -= DATASET_PIXELS / 2;
    path = write_file("images.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(pixels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "file ends after 2 of 5 images");
}
END_TEST

START_TEST(test_idx_labels_truncated_payload)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 60000, good_labels, 3);
    path = write_file("labels", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "file ends after 3 of 60000 labels");
}
END_TEST

START_TEST(test_idx_truncated_header)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_images(&b, IDX_MAGIC_IMAGES, 1, 28, 28, 0);
    path = write_file("images", b.data, 10, 0);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "file ends after 10 of the 16");
}
END_TEST

/* A header may claim up to the limit, yet the reader must fail on the
 * short file instead of allocating 7 GB up front. */
START_TEST(test_idx_huge_count_short_file)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_images(&b, IDX_MAGIC_IMAGES, 9000000, 28, 28, 1);
    path = write_file("images.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "file ends after 1 of 9000000 images");
}
END_TEST

START_TEST(test_idx_count_over_limit)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 0xffffffffu, good_labels, 3);
    path = write_file("labels", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "4294967295 labels");
    ck_assert_contains(err, "limit of 10000000");
}
END_TEST

START_TEST(test_idx_zero_count)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 0, good_labels, 0);
    path = write_file("labels", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "header declares 0 labels");
}
END_TEST

START_TEST(test_idx_trailing_bytes)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    put_byte(&b, 1);
    put_byte(&b, 2);
    put_byte(&b, 3);
    path = write_file("labels", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(labels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "3 unexpected bytes after the 3 labels");

    build_images(&b, IDX_MAGIC_IMAGES, 2, 28, 28, 3);
    path = write_file("images.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(pixels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "784 unexpected bytes after the 2 images");
}
END_TEST

START_TEST(test_idx_label_out_of_range)
{
    char err[DATASET_ERR_LEN] = "";
    const uint8_t values[] = {0, 1, 2, 3, 4, 12, 6};
    const uint8_t ten = 10;
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 7, values, 7);
    path = write_file("train-labels-idx1-ubyte.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(labels);
    ck_assert_int_eq(count, 0);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "label 12 at index 5 is outside 0-9");

    /* 10 is the first value out of range. */
    build_labels(&b, IDX_MAGIC_LABELS, 1, &ten, 1);
    path = write_file("labels", b.data, b.len, 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "label 10 at index 0 is outside 0-9");
    ck_assert_contains(err, "; reinstall dataset-fashion-mnist or copy the "
                       "original file");
}
END_TEST

/* The message for a .gz file that is neither gzip nor IDX names both and
 * the fix, and only such a file gets it. */
START_TEST(test_idx_gz_not_gzip)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL, one = 1;
    int count;
    Bytes b;
    const char *path = write_file("labels.gz", "<html>not data</html>", 21,
                                  0);

    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, ": not a gzip file and not a raw IDX file: bad "
                       "magic number");
    ck_assert_contains(err, "; reinstall dataset-fashion-mnist or copy the "
                       "original file");

    /* A real gzip file with the wrong magic inside is not called
     * "not a gzip file". */
    build_labels(&b, IDX_MAGIC_IMAGES, 1, &one, 1);
    path = write_file("other.gz", b.data, b.len, 1);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, ": bad magic number");
    ck_assert_msg(strstr(err, "not a gzip file") == NULL, "message: %s", err);
}
END_TEST

/* A FIFO named like a data file is named as one, and never waited on. */
START_TEST(test_idx_fifo)
{
    char err[DATASET_ERR_LEN] = "";
    char path[PATH_MAX];
    uint8_t *labels = NULL;
    int count;

    join_path(path, dir, "labels.gz");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "cannot open: is a FIFO, not a regular file");
}
END_TEST

START_TEST(test_dataset_count_mismatch)
{
    char err[DATASET_ERR_LEN] = "";
    const uint8_t four[] = {1, 2, 3, 4};
    char images_path[PATH_MAX];
    Dataset ds;
    Bytes b;
    const char *labels_path;

    build_images(&b, IDX_MAGIC_IMAGES, 3, 28, 28, 3);
    snprintf(images_path, sizeof images_path, "%s",
             write_file("train-images-idx3-ubyte.gz", b.data, b.len, 1));
    build_labels(&b, IDX_MAGIC_LABELS, 4, four, 4);
    labels_path = write_file("train-labels-idx1-ubyte.gz", b.data, b.len, 1);

    ck_assert_int_eq(dataset_load(dir, 1, &ds, err, sizeof err), -1);
    ck_assert_ptr_null(ds.pixels);
    ck_assert_ptr_null(ds.labels);
    ck_assert_int_eq(ds.count, 0);
    ck_assert_contains(err, labels_path);
    ck_assert_contains(err, images_path);
    ck_assert_contains(err, "expected 3 labels");
    ck_assert_contains(err, "found 4");
}
END_TEST

START_TEST(test_idx_empty_file)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    uint8_t *pixels = NULL;
    int count;
    const char *path;

    path = write_file("labels", "", 0, 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "file is empty");
    ck_assert_contains(err, "expected an 8-byte IDX labels header");

    /* A valid gzip stream of no bytes is empty too. */
    path = write_file("images.gz", "", 0, 1);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "file is empty");
    ck_assert_contains(err, "expected a 16-byte IDX images header");
}
END_TEST

/* A gzip header followed by a deflate block of the reserved type 3: zlib
 * rejects it with "invalid block type". */
START_TEST(test_idx_corrupt_gzip)
{
    static const uint8_t bad[] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    const char *path;

    path = write_file("train-images-idx3-ubyte.gz", bad, sizeof bad, 0);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(pixels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "corrupt gzip data: invalid block type");
    /* zlib's own copy of the path is dropped, so it appears once. */
    ck_assert_ptr_null(strstr(strstr(err, path) + 1, path));
}
END_TEST

START_TEST(test_idx_truncated_gzip)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *pixels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_images(&b, IDX_MAGIC_IMAGES, 3, 28, 28, 3);
    path = write_edited_gzip("images.gz", &b, cut_in_half);
    ck_assert_int_eq(idx_read_images(path, &pixels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "unexpected end of file");
    /* The same advice as for any other damaged data file. */
    ck_assert_contains(err, "reinstall dataset-fashion-mnist");
}
END_TEST

/* A gzip file cut off before any data decodes is truncated, not empty. */
START_TEST(test_idx_gzip_cut_before_header)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    path = write_edited_gzip("labels.gz", &b, keep_12_bytes);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(labels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "truncated: not a complete gzip stream");
    ck_assert_contains(err, "reinstall dataset-fashion-mnist");
    ck_assert_contains(err, "unexpected end of file");
    ck_assert_ptr_null(strstr(err, "empty"));
}
END_TEST

/* All the data arrives, but the gzip trailer is incomplete. */
START_TEST(test_idx_gzip_short_trailer)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    path = write_edited_gzip("labels.gz", &b, drop_length);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(labels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "corrupt gzip data: unexpected end of file");
}
END_TEST

START_TEST(test_idx_gzip_bad_crc)
{
    char err[DATASET_ERR_LEN] = "";
    uint8_t *labels = NULL;
    int count;
    Bytes b;
    const char *path;

    build_labels(&b, IDX_MAGIC_LABELS, 3, good_labels, 3);
    path = write_edited_gzip("labels.gz", &b, flip_crc);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_ptr_null(labels);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "incorrect data check");
}
END_TEST

START_TEST(test_idx_missing_file)
{
    char err[DATASET_ERR_LEN] = "";
    char path[PATH_MAX];
    uint8_t *labels = NULL;
    int count;

    join_path(path, dir, "absent-labels");
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "cannot open: No such file or directory");
}
END_TEST

START_TEST(test_idx_directory)
{
    char err[DATASET_ERR_LEN] = "";
    char path[PATH_MAX];
    uint8_t *labels = NULL;
    int count;

    join_path(path, dir, "labels.gz");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(idx_read_labels(path, &labels, &count, err, sizeof err),
                     -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "is a directory, expected a regular file");
}
END_TEST

/* A directory named like a data file is reported as what it is. */
START_TEST(test_dataset_load_directory_as_file)
{
    char err[DATASET_ERR_LEN] = "";
    char path[PATH_MAX];
    Dataset ds;

    write_good_pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                    1);
    join_path(path, dir, "t10k-labels-idx1-ubyte.gz");
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(dataset_load(dir, 0, &ds, err, sizeof err), -1);
    ck_assert_contains(err, path);
    ck_assert_contains(err, "is a directory, expected a regular file");
    ck_assert_ptr_null(strstr(err, "not found"));
}
END_TEST

START_TEST(test_dataset_load_missing_labels)
{
    char err[DATASET_ERR_LEN] = "";
    Dataset ds;
    Bytes b;

    build_images(&b, IDX_MAGIC_IMAGES, 3, 28, 28, 3);
    write_file("t10k-images-idx3-ubyte.gz", b.data, b.len, 1);
    ck_assert_int_eq(dataset_load(dir, 0, &ds, err, sizeof err), -1);
    ck_assert_contains(err, dir);
    ck_assert_contains(err, "t10k-labels-idx1-ubyte not found");
}
END_TEST

/* ---------------------------------------------------------------- locate */

/* Creates the four files, empty: the search checks names only. */
static void touch_all_four(void)
{
    write_file("train-images-idx3-ubyte.gz", "", 0, 0);
    write_file("train-labels-idx1-ubyte.gz", "", 0, 0);
    write_file("t10k-images-idx3-ubyte.gz", "", 0, 0);
    write_file("t10k-labels-idx1-ubyte", "", 0, 0);
}

START_TEST(test_dataset_locate_env)
{
    char *err = NULL;
    char *found = NULL;

    touch_all_four();
    setenv("FMNIST_DATA", dir, 1);
    ck_assert_msg(dataset_locate(NULL, &found, &err) == 0, "%s", err);
    ck_assert_str_eq(found, dir);
    free(found);
}
END_TEST

START_TEST(test_dataset_locate_explicit_beats_env)
{
    char *err = NULL;
    char *found = NULL;

    touch_all_four();
    setenv("FMNIST_DATA", "/nonexistent/fmnist-data", 1);
    ck_assert_msg(dataset_locate(dir, &found, &err) == 0, "%s", err);
    ck_assert_str_eq(found, dir);
    free(found);
}
END_TEST

/* A wrong FMNIST_DATA is reported even when a default directory would
 * work, so put a complete ./data in the current directory. */
START_TEST(test_dataset_locate_env_wrong_no_fallback)
{
    char *err = NULL;
    char *found = NULL;
    char work_dir[PATH_MAX];

    snprintf(work_dir, sizeof work_dir, "%s", dir);
    ck_assert_int_eq(chdir(work_dir), 0);
    ck_assert_int_eq(mkdir("data", 0700), 0);
    join_path(dir, work_dir, "data");
    touch_all_four();

    setenv("FMNIST_DATA", tcase_dir, 1);
    ck_assert_int_eq(dataset_locate(NULL, &found, &err), -1);
    ck_assert_ptr_null(found);
    ck_assert_contains(err, "not found in FMNIST_DATA");
    ck_assert_contains(err, tcase_dir);
    ck_assert_contains(err, "missing train-images-idx3-ubyte");
    ck_assert_contains(err, "point FMNIST_DATA at a directory that holds "
                            "the four files, or unset it");
    ck_assert_contains(err, "sudo apt-get install dataset-fashion-mnist");
    free(err);
}
END_TEST

START_TEST(test_dataset_locate_explicit_missing)
{
    char *err = NULL;
    char *found = NULL;
    char absent[PATH_MAX];

    join_path(absent, dir, "absent");
    unsetenv("FMNIST_DATA");
    ck_assert_int_eq(dataset_locate(absent, &found, &err), -1);
    ck_assert_ptr_null(found);
    ck_assert_contains(err, absent);
    ck_assert_contains(err, "No such file or directory");
    ck_assert_contains(err, "check the --data path, or leave --data out");
    ck_assert_contains(err, "sudo apt-get install dataset-fashion-mnist");
    free(err);
}
END_TEST

/* The search lists the missing names first, then each entry that exists
 * under a data file's name but cannot be one. */
START_TEST(test_dataset_locate_unusable_entries)
{
    char *err = NULL;
    char *found = NULL;
    char images[PATH_MAX], labels[PATH_MAX];

    touch_all_four();
    join_path(images, dir, "train-images-idx3-ubyte.gz");
    ck_assert_int_eq(unlink(images), 0);
    ck_assert_int_eq(mkdir(images, 0700), 0);
    join_path(labels, dir, "train-labels-idx1-ubyte.gz");
    ck_assert_int_eq(unlink(labels), 0);
    ck_assert_int_eq(symlink("train-labels-idx1-ubyte.gz", labels), 0);
    join_path(images, dir, "t10k-images-idx3-ubyte.gz");
    ck_assert_int_eq(unlink(images), 0);
    join_path(images, dir, "train-images-idx3-ubyte.gz");

    unsetenv("FMNIST_DATA");
    ck_assert_int_eq(dataset_locate(dir, &found, &err), -1);
    ck_assert_ptr_null(found);
    ck_assert_contains(err, "missing t10k-images-idx3-ubyte; ");
    ck_assert_contains(err, images);
    ck_assert_contains(err, " is a directory, expected a regular file");
    ck_assert_contains(err, labels);
    ck_assert_contains(err, " is a symbolic link loop, expected a regular "
                            "file");
    ck_assert_ptr_null(strstr(err, "missing train-"));
    free(err);
}
END_TEST

/* A --data directory close to PATH_MAX, holding an entry that is no
 * file, keeps the whole reason and the line on how to fix it. */
START_TEST(test_dataset_locate_long_path)
{
    char *err = NULL;
    char *found = NULL;
    char deep[PATH_MAX], entry[PATH_MAX];
    char name[201];

    memset(name, 'd', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(deep, sizeof deep, "%s", dir);
    while (strlen(deep) + sizeof name < PATH_MAX - 300) {
        join_path(entry, deep, name);
        ck_assert_msg(mkdir(entry, 0700) == 0, "mkdir %s failed", entry);
        memcpy(deep, entry, sizeof deep);
    }
    join_path(entry, deep, "train-images-idx3-ubyte.gz");
    ck_assert_int_eq(mkdir(entry, 0700), 0);

    unsetenv("FMNIST_DATA");
    ck_assert_int_eq(dataset_locate(deep, &found, &err), -1);
    ck_assert_ptr_null(found);
    ck_assert_contains(err, "missing train-labels-idx1-ubyte, "
                            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte");
    ck_assert_contains(err, entry);
    ck_assert_contains(err, " is a directory, expected a regular file\n");
    ck_assert_contains(err, "check the --data path, or leave --data out");
    free(err);
}
END_TEST

/* A --data path near PATH_MAX whose bytes are mostly escaped as \xHH
 * takes four times its length in the message, which still names every
 * entry whole and ends with the line on how to fix it. */
START_TEST(test_dataset_locate_escaped_long_path)
{
    char *err = NULL;
    char *found = NULL;
    char deep[PATH_MAX], entry[PATH_MAX], shown[4 * PATH_MAX];
    char name[201];

    /* Control bytes and bytes that start no UTF-8 character. */
    for (size_t i = 0; i < sizeof name - 1; i++)
        name[i] = i % 2 == 0 ? '\001' : '\377';
    name[sizeof name - 1] = '\0';
    snprintf(deep, sizeof deep, "%s", dir);
    while (strlen(deep) + sizeof name < PATH_MAX - 300) {
        join_path(entry, deep, name);
        ck_assert_msg(mkdir(entry, 0700) == 0, "mkdir failed: %s",
                      strerror(errno));
        memcpy(deep, entry, sizeof deep);
    }
    for (int i = 0; i < 4; i++) {
        join_path(entry, deep, dataset_file_bases[i]);
        strcat(entry, ".gz");
        ck_assert_int_eq(mkdir(entry, 0700), 0);
    }

    unsetenv("FMNIST_DATA");
    ck_assert_int_eq(dataset_locate(deep, &found, &err), -1);
    ck_assert_ptr_null(found);
    util_escape_unprintable(entry, shown, sizeof shown);
    /* The message is too long for Check to print, so only its length
     * is. */
    ck_assert_msg(strstr(err, shown) != NULL, "the %zu-byte message does "
                  "not name the last entry whole", strlen(err));
    ck_assert_msg(strstr(err, " is a directory, expected a regular file\n")
                  != NULL, "the reason for the last entry is missing");
    ck_assert_msg(strstr(err, "check the --data path, or leave --data out")
                  != NULL, "the line on how to fix it is missing");
    free(err);
}
END_TEST

START_TEST(test_dataset_search_not_found)
{
    char *err = NULL;
    char *found = NULL;
    char absent[PATH_MAX];
    const char *dirs[2];

    join_path(absent, dir, "absent");
    dirs[0] = absent;
    dirs[1] = dir;
    write_file("t10k-labels-idx1-ubyte.gz", "", 0, 0);
    ck_assert_int_eq(dataset_search(dirs, 2, &found, &err), -1);
    ck_assert_ptr_null(found);
    ck_assert_contains(err, "Fashion-MNIST data not found");
    ck_assert_contains(err, absent);
    ck_assert_contains(err, "No such file or directory");
    ck_assert_contains(err, dir);
    ck_assert_contains(err, "missing train-images-idx3-ubyte, "
                            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte");
    ck_assert_ptr_null(strstr(err, "t10k-labels-idx1-ubyte\n"));
    ck_assert_contains(err, "install the data with: sudo apt-get install "
                            "dataset-fashion-mnist, or pass --data");
    free(err);
}
END_TEST

/* With no FMNIST_DATA and no ./data, the outcome depends on whether the
 * package is installed; both outcomes are checked. */
START_TEST(test_dataset_locate_defaults)
{
    char *err = NULL;
    char *found = NULL;
    char *probe = dataset_find_file(DATASET_SYSTEM_DIR,
                                    "t10k-images-idx3-ubyte");
    int installed = probe != NULL;
    int rc;

    free(probe);
    unsetenv("FMNIST_DATA");
    ck_assert_int_eq(chdir(dir), 0);
    rc = dataset_locate(NULL, &found, &err);
    if (installed && rc == 0) {
        ck_assert_str_eq(found, DATASET_SYSTEM_DIR);
        free(found);
        return;
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_contains(err, "./data");
    ck_assert_contains(err, DATASET_SYSTEM_DIR);
    ck_assert_contains(err, "install the data with: sudo apt-get install "
                            "dataset-fashion-mnist, or pass --data");
    free(err);
}
END_TEST

/* Every byte value converts to the float nearest to value / 255, which
 * the exact quotient in double, rounded once to float, gives. */
START_TEST(test_dataset_copy_rounds_to_nearest)
{
    uint8_t pixels[2 * DATASET_PIXELS];
    float out[2 * DATASET_PIXELS];
    Dataset ds = { 2, pixels, NULL };

    for (int i = 0; i < 2 * DATASET_PIXELS; i++)
        pixels[i] = (uint8_t)(i * 7 % 256);
    dataset_copy_images(&ds, 0, 2, out);
    for (int i = 0; i < 2 * DATASET_PIXELS; i++)
        if (out[i] != (float)(pixels[i] / 255.0))
            ck_abort_msg("byte %u became %.9g, expected %.9g", pixels[i],
                         out[i], (float)(pixels[i] / 255.0));
    dataset_copy_image(&ds, 1, out);
    ck_assert_float_eq(out[0], (float)(pixels[DATASET_PIXELS] / 255.0));
}
END_TEST

/* ------------------------------------------------------------- real data */

START_TEST(test_dataset_real_test_set)
{
    char err[DATASET_ERR_LEN] = "";
    char *probe = dataset_find_file(DATASET_SYSTEM_DIR,
                                    "t10k-images-idx3-ubyte");
    float min = 1.0f;
    float max = 0.0f;
    long per_class[DATASET_CLASSES] = {0};
    Dataset ds;

    if (probe == NULL) {
        fprintf(stderr, "check_dataset: %s not installed, real-data test "
                "skipped\n", DATASET_SYSTEM_DIR);
        return;
    }
    free(probe);

    ck_assert_msg(dataset_load(DATASET_SYSTEM_DIR, 0, &ds, err,
                               sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.count, 10000);
    ck_assert_uint_eq(ds.labels[0], 9);
    ck_assert_str_eq(dataset_class_names[ds.labels[0]], "Ankle boot");
    for (int i = 0; i < ds.count; i++) {
        ck_assert_uint_lt(ds.labels[i], DATASET_CLASSES);
        per_class[ds.labels[i]]++;
    }
    /* The test set is balanced: 1000 images per class. */
    for (int c = 0; c < DATASET_CLASSES; c++)
        ck_assert_int_eq(per_class[c], 1000);
    for (int n = 0; n < ds.count; n++) {
        float image[DATASET_PIXELS];

        dataset_copy_image(&ds, n, image);
        for (int i = 0; i < DATASET_PIXELS; i++) {
            if (image[i] < min)
                min = image[i];
            if (image[i] > max)
                max = image[i];
        }
    }
    ck_assert_float_eq(min, 0.0f);
    ck_assert_float_eq(max, 1.0f);
    dataset_free(&ds);
}
END_TEST

Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *good = tcase_create("good files");
    TCase *bad = tcase_create("bad files");
    TCase *locate = tcase_create("locate");
    TCase *real = tcase_create("real data");
    TCase *all[] = {good, bad, locate};

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tcase_add_unchecked_fixture(all[i], tcase_setup, tcase_teardown);
        tcase_add_checked_fixture(all[i], test_setup, NULL);
        suite_add_tcase(s, all[i]);
    }

    tcase_add_test(good, test_dataset_load_gzip);
    tcase_add_test(good, test_dataset_load_raw);
    tcase_add_test(good, test_dataset_load_gzip_without_suffix);
    tcase_add_test(good, test_dataset_load_dotted_names);
    tcase_add_test(good, test_dataset_find_file_order);
    tcase_add_test(good, test_dataset_find_file_trailing_slash);
    tcase_add_test(good, test_idx_read_images_bytes);
    tcase_add_test(good, test_dataset_class_names);
    tcase_add_test(good, test_dataset_copy_rounds_to_nearest);

    tcase_add_test(bad, test_idx_labels_bad_magic);
    tcase_add_test(bad, test_idx_images_bad_magic);
    tcase_add_test(bad, test_idx_images_wrong_size);
    tcase_add_test(bad, test_idx_images_truncated_payload);
    tcase_add_test(bad, test_idx_labels_truncated_payload);
    tcase_add_test(bad, test_idx_truncated_header);
    tcase_add_test(bad, test_idx_huge_count_short_file);
    tcase_add_test(bad, test_idx_count_over_limit);
    tcase_add_test(bad, test_idx_zero_count);
    tcase_add_test(bad, test_idx_trailing_bytes);
    tcase_add_test(bad, test_idx_label_out_of_range);
    tcase_add_test(bad, test_dataset_count_mismatch);
    tcase_add_test(bad, test_idx_empty_file);
    tcase_add_test(bad, test_idx_corrupt_gzip);
    tcase_add_test(bad, test_idx_truncated_gzip);
    tcase_add_test(bad, test_idx_gzip_cut_before_header);
    tcase_add_test(bad, test_idx_gzip_short_trailer);
    tcase_add_test(bad, test_idx_gzip_bad_crc);
    tcase_add_test(bad, test_idx_missing_file);
    tcase_add_test(bad, test_idx_directory);
    tcase_add_test(bad, test_idx_gz_not_gzip);
    tcase_add_test(bad, test_idx_fifo);
    tcase_add_test(bad, test_dataset_load_directory_as_file);
    tcase_add_test(bad, test_dataset_load_missing_labels);

    tcase_add_test(locate, test_dataset_locate_env);
    tcase_add_test(locate, test_dataset_locate_explicit_beats_env);
    tcase_add_test(locate, test_dataset_locate_env_wrong_no_fallback);
    tcase_add_test(locate, test_dataset_locate_explicit_missing);
    tcase_add_test(locate, test_dataset_locate_unusable_entries);
    tcase_add_test(locate, test_dataset_locate_long_path);
    tcase_add_test(locate, test_dataset_locate_escaped_long_path);
    tcase_add_test(locate, test_dataset_search_not_found);
    tcase_add_test(locate, test_dataset_locate_defaults);

    /* Decompressing 10000 images takes well under a second, but leave
     * room for sanitizer and valgrind builds. */
    tcase_set_timeout(real, 60);
    tcase_add_test(real, test_dataset_real_test_set);
    suite_add_tcase(s, real);
    return s;
}
