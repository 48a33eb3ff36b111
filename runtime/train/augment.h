/* Image augmentation as Keras 2's ImageDataGenerator does it
 * (keras_preprocessing/image/image_data_generator.py: get_random_transform,
 * apply_transform, apply_affine_transform), and batches of images drawn from
 * an array as its NumpyArrayIterator makes them.
 *
 * Parameters come from the counter-based generator: image k of the stream
 * (epoch * rows + position in the epoch's order) draws from (seed, k) alone,
 * so a seed gives the same images whichever thread makes a batch, in
 * whatever order, on every backend. */
#ifndef NNC_AUGMENT_H
#define NNC_AUGMENT_H

#include <stdint.h>

#include "ir/types.h"

typedef enum nnc_fill_mode { NNC_FILL_NEAREST, NNC_FILL_CONSTANT, NNC_FILL_REFLECT, NNC_FILL_WRAP } nnc_fill_mode;

/* A shift range, as Keras reads width_shift_range: a float below 1 is a
 * fraction of the size, a float of 1 or more is pixels, an integer draws
 * whole pixels from -(n-1)..n-1. */
typedef struct nnc_shift_range {
  double range;
  int whole; /* an integer range */
} nnc_shift_range;

typedef struct nnc_augment_opts {
  double rotation_range; /* degrees */
  nnc_shift_range width_shift, height_shift;
  double shear_range;      /* degrees */
  double zoom_lo, zoom_hi; /* 1, 1: no zoom */
  int horizontal_flip, vertical_flip;
  nnc_fill_mode fill_mode;
  double cval;
  double rescale; /* 0: none; applied after the transform, as Keras's standardize */
} nnc_augment_opts;

/* One image's transform, named as Keras's transform_parameters: tx shifts
 * rows (height), ty columns (width); theta and shear in degrees. */
typedef struct nnc_augment_params {
  double theta, tx, ty, shear, zx, zy;
  int flip_horizontal, flip_vertical;
} nnc_augment_params;

/* Draws the parameters of image `index` of the stream for an image of
 * rows x cols, as get_random_transform. */
void nnc_augment_draw(const nnc_augment_opts *o, int64_t rows, int64_t cols, uint64_t seed, uint64_t index,
                      nnc_augment_params *p);
/* dst = the transformed src (rows x cols x channels, channels last), as
 * apply_transform followed by the rescale: one affine map about the centre,
 * order-1 interpolation with scipy.ndimage's boundary modes, then flips. */
void nnc_augment_apply(const nnc_augment_opts *o, const nnc_augment_params *p, const float *src, int64_t rows,
                       int64_t cols, int64_t channels, float *dst);

/* Images and labels to draw batches from (NumpyArrayIterator's fields). */
typedef struct nnc_image_source {
  const nnc_augment_opts *opts;
  const void *x; /* f32 or u8, [count, rows, cols, channels] */
  nnc_dtype x_dtype;
  int64_t count, rows, cols, channels;
  const void *y; /* NULL, or count rows of y_row i32 or f32 values */
  nnc_dtype y_dtype;
  int64_t y_row;
  int64_t batch_size;
  int shuffle;
  uint64_t seed;
} nnc_image_source;

/* Batches per epoch: ceil(count / batch_size), the last one partial. */
int64_t nnc_image_source_batches(const nnc_image_source *s);
/* The order of epoch `epoch`'s samples (count indices). */
void nnc_image_source_order(const nnc_image_source *s, int64_t epoch, int64_t *order);
/* Writes batch `batch` of the epoch whose order is given: its images
 * augmented into x (f32) and its labels into y (when both exist); scratch
 * holds one image (rows * cols * channels floats). Returns the number of
 * samples in it. Safe to call from several threads, each with its own
 * scratch. */
int64_t nnc_image_source_batch(const nnc_image_source *s, const int64_t *order, int64_t epoch, int64_t batch,
                               float *x, void *y, float *scratch);

#endif
