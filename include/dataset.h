/*
 * dataset: the Fashion-MNIST images and labels, read from IDX files through
 * zlib, so the .gz files and the uncompressed ones both load without being
 * unpacked to disk.
 *
 * Images are stored as the file's bytes, one row-major 28x28 image after
 * another, and converted to floats in [0, 1] (pixel / 255) only when a
 * batch is gathered: the 60000 training images take 47 MB as bytes and
 * would take 188 MB as floats. Every loader function returns 0 on success
 * or -1 with a message "FILE: what was expected, what was found" in ERR.
 */
#ifndef FMNIST_DATASET_H
#define FMNIST_DATASET_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define DATASET_ROWS 28
#define DATASET_COLS 28
#define DATASET_PIXELS (DATASET_ROWS * DATASET_COLS)
#define DATASET_CLASSES 10

/* Length of the error buffers of dataset_load and the IDX readers. Their
 * messages name at most two files of up to PATH_MAX bytes, unescaped. */
#define DATASET_ERR_LEN (6 * PATH_MAX + 2048)

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u

/* The directory the Debian package dataset-fashion-mnist installs. */
#define DATASET_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    int count;
    uint8_t *pixels;  /* count x DATASET_PIXELS, 0 (black) to 255 */
    uint8_t *labels;  /* count values in 0..9 */
} Dataset;

/* Class names in label order, in full and abbreviated to 3 characters,
 * the width of a confusion-matrix column on an 80-column screen. Every
 * pane uses the same abbreviations, and the help window lists them. */
#define DATASET_SHORT_LEN 3

extern const char *const dataset_class_names[DATASET_CLASSES];
extern const char *const dataset_class_short[DATASET_CLASSES];

#define DATASET_FILES 4
/* Base names of the four IDX files: training images and labels, then
 * test images and labels. */
extern const char *const dataset_file_bases[DATASET_FILES];

/*
 * Reads an IDX image file (gzip or raw, detected from the content). Checks
 * the magic, the big-endian dimensions (N x 28 x 28) and that the payload is
 * exactly N*784 bytes. On success *PIXELS is a malloc'd N*784 byte array.
 */
int idx_read_images(const char *path, uint8_t **pixels, int *count,
                    char *err, size_t errlen);

/* Reads an IDX label file; checks the magic, the length and that every
 * label is 0..9. On success *LABELS is a malloc'd array of *COUNT bytes. */
int idx_read_labels(const char *path, uint8_t **labels, int *count,
                    char *err, size_t errlen);

/*
 * Returns a malloc'd path to the file for BASE (for example
 * "train-images-idx3-ubyte") in DIR, trying BASE.gz, BASE, and the dotted
 * names archive tools write ("train-images.idx3-ubyte", with and without
 * .gz). Returns NULL when none exists.
 */
char *dataset_find_file(const char *dir, const char *base);

/*
 * Returns a malloc'd message such as "DIR/BASE.gz is a directory, expected
 * a regular file" for the first of those names that exists in DIR as a
 * directory or as a symbolic link that cannot be followed (a loop, a
 * missing target), or NULL when none does.
 */
char *dataset_describe_unusable(const char *dir, const char *base);

/*
 * Chooses the data directory: EXPLICIT when not NULL, else $FMNIST_DATA,
 * else ./data, else DATASET_SYSTEM_DIR; the first that holds all four files
 * wins, and *DIR_OUT gets a malloc'd copy of it. On failure *ERR_OUT gets
 * a malloc'd message, which the caller frees: every directory tried, what
 * was missing and the apt-get command that installs the data, one item a
 * line, with unprintable characters in the names escaped by
 * util_escape_unprintable. On success *ERR_OUT is NULL.
 */
int dataset_locate(const char *explicit_dir, char **dir_out, char **err_out);

/* Searches the NDIRS directories in DIRS in order, as dataset_locate does
 * for its defaults: sets *DIR_OUT to a malloc'd copy of the first that
 * contains all four files, or fails with the same "not found" message in
 * *ERR_OUT. */
int dataset_search(const char *const *dirs, int ndirs, char **dir_out,
                   char **err_out);

/* Loads the training set (TRAIN != 0) or the test set from DIR, checking
 * that the image and label counts agree. */
int dataset_load(const char *dir, int train, Dataset *ds,
                 char *err, size_t errlen);

void dataset_free(Dataset *ds);

/* Writes image INDEX of DS to OUT as DATASET_PIXELS floats, pixel / 255,
 * the values the network is trained on. */
void dataset_copy_image(const Dataset *ds, int index, float *out);

/* Writes the N images FIRST..FIRST+N-1 of DS to OUT (N x DATASET_PIXELS
 * floats), converted as by dataset_copy_image. */
void dataset_copy_images(const Dataset *ds, int first, int n, float *out);

#endif
