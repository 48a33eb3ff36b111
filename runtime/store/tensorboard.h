/* TensorBoard event files as TensorFlow writes them: a TFRecord stream
 * (u64 length, masked CRC32C of the length, the record, masked CRC32C of
 * the record) of Event messages from runtime/store/tensorboard.proto: first the
 * file version, then scalars, histograms and the graph. TensorBoard reads a
 * folder's events.out.tfevents.* files; Keras puts training's under
 * log_dir/train and validation's under log_dir/validation.
 *
 * A writer keeps its records in memory and each flush rewrites the whole
 * file atomically (ir/atomic_file.h), so a killed run leaves a file that
 * ends on a complete record. */
#ifndef NNC_TENSORBOARD_H
#define NNC_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "ir/graph.h"
#include "ir/status.h"

typedef struct nnc_tb_writer nnc_tb_writer;

/* Creates `dir` (and its parents) and a writer for a new event file in it,
 * named as TensorFlow names them; its first record is the file version.
 * Nothing is on disk until the first flush, which checks `dir` is writable. */
nnc_tb_writer *nnc_tb_open(const char *dir, nnc_status *st);
void nnc_tb_close(nnc_tb_writer *w);
const char *nnc_tb_path(const nnc_tb_writer *w);

void nnc_tb_scalar(nnc_tb_writer *w, const char *tag, int64_t step, double value);
/* A histogram of v[0..n-1] in 30 equal buckets from min to max. */
void nnc_tb_histogram(nnc_tb_writer *w, const char *tag, int64_t step, const float *v, int64_t n);
/* A weight as Keras 2's write_images logs it (TensorBoard's
 * _log_weight_as_image): squeezed of its size-1 axes, a vector is one image
 * of n x 1, a matrix one image (transposed when it has more rows than
 * columns), a 3-axis conv kernel [h, w, k] k images of h x w, of which
 * tf.summary.image keeps the first 3. Pixels are
 * tf.image.convert_image_dtype's, saturated: v * 255.5 cut to 0..255. Tags
 * are TF's image summary's for max_outputs 3: "<tag>/image/<i>". A kernel
 * of 4 axes after squeezing is not logged (Keras logs one whose last axis
 * is 3 or 4 as colour images; nnc does not). */
int nnc_tb_weight_images(nnc_tb_writer *w, const char *tag, int64_t step, int rank, const int64_t *shape,
                         const float *v, nnc_status *st);
/* The graph as a GraphDef: each node named layer/op_id (inside fused_<k>/
 * for a fused group's members), its sources as inputs, and attrs with its
 * type, fusion rule and script line. */
void nnc_tb_graph(nnc_tb_writer *w, const nnc_graph *g);
int nnc_tb_flush(nnc_tb_writer *w, nnc_status *st);

/* TFRecord's checksum: CRC32C (Castagnoli), rotated and offset so that a
 * CRC of data that holds CRCs stays well distributed. */
uint32_t nnc_tb_masked_crc32c(const void *data, size_t len);

#endif
