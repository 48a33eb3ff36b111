/* Weights as safetensors files (the Hugging Face format), so a checkpoint
 * written by nnc can be read by any safetensors tool and vice versa.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of JSON header, then
 * the raw little-endian tensor data:
 *
 *   {"__metadata__": {"format": "nnc"},
 *    "dense/kernel:0": {"dtype": "F32", "shape": [784,128], "data_offsets": [0,401408]}, ...}
 *
 * Offsets are [begin, end) in bytes from the start of the data section; the
 * tensors tile the data section exactly, with no gaps and no overlap. nnc
 * pads the header with spaces to a multiple of 8 so that the data is aligned.
 *
 * The module is name-agnostic: callers choose names (Keras style,
 * "conv2d/kernel:0"). Error messages start with the file's path and name the
 * tensor involved; byte positions in them count from the start of the file. */
#ifndef NNC_SAFETENSORS_H
#define NNC_SAFETENSORS_H

#include <stdint.h>

#include "ir/status.h"
#include "ir/types.h"

/* One float32 tensor the caller owns: row-major, `data` holds the product of
 * `shape` elements (a rank-0 tensor holds one). */
typedef struct nnc_named_tensor {
  const char *name;
  int rank;
  int64_t shape[NNC_MAX_RANK];
  float *data;
} nnc_named_tensor;

/* Writes the tensors, in the given order, through ir/atomic_file.h, so a
 * failure never leaves a half-written file (and a failed write removes the
 * temporary). Names must be distinct, non-empty and not
 * "__metadata__". */
int nnc_safetensors_save(const char *path, const nnc_named_tensor *tensors, int count, nnc_status *st);

/* Loads into the caller's buffers: every tensor in `tensors` must be present
 * in the file with exactly that shape and dtype F32, and the file may hold no
 * others (an extra tensor is an error naming it). The whole file is validated
 * first (header JSON, names, shapes, dtypes, offsets, file size) and only then
 * copied, so on error the buffers are untouched. */
int nnc_safetensors_load(const char *path, nnc_named_tensor *tensors, int count, nnc_status *st);

/* One header entry as the file describes it. */
typedef struct nnc_safetensors_entry {
  char *name;
  char dtype[16]; /* "F32", "F16", "I64", ... */
  int rank;
  int64_t shape[NNC_MAX_RANK];
  int64_t begin, end; /* byte range within the data section */
} nnc_safetensors_entry;

/* A shape as the messages about these files write it: [2,4]. */
const char *nnc_safetensors_shape_str(int rank, const int64_t *shape, char *buf, size_t size);

/* What a file holds, without its data: for inspecting checkpoints and tests. */
typedef struct nnc_safetensors_index {
  nnc_safetensors_entry *entries; /* in header order */
  int count;
  char *format;       /* __metadata__.format, or NULL when absent */
  int64_t data_start; /* file offset of the data section: 8 + header length */
  int64_t data_size;  /* bytes in the data section */
} nnc_safetensors_index;

/* Reads and validates the header and layout of PATH (everything load checks
 * except the caller's names and shapes). Fills `index`, which the caller
 * releases with nnc_safetensors_index_free; on error it is left empty. */
int nnc_safetensors_read_index(const char *path, nnc_safetensors_index *index, nnc_status *st);
void nnc_safetensors_index_free(nnc_safetensors_index *index);

#endif
