/* Checked size arithmetic. Every element and byte count that comes from a
 * script, a file header or a shape goes through here before anything is
 * allocated or indexed, so an overflow or an absurd size is an error that
 * names the tensor, never a wrapped number, a SIGFPE or an abort().
 *
 * The cap: no tensor may hold more than NNC_MAX_TENSOR_BYTES (1 TiB). That is
 * several times the memory of any machine nnc runs on (an H200 holds 141 GB),
 * so no real model meets it, and it leaves 23 bits of headroom in int64: sums
 * of tensor sizes over a whole graph, im2col rows times kernel taps, and byte
 * offsets into a file cannot overflow once each factor is under the cap. */
#ifndef NNC_SIZE_H
#define NNC_SIZE_H

#include <stddef.h>
#include <stdint.h>

#include "ir/status.h"

#define NNC_MAX_TENSOR_BYTES ((int64_t)1 << 40)

/* *out = a * b or a + b for non-negative counts; -1 (and *out untouched)
 * when the result does not fit int64. */
int nnc_size_mul(int64_t a, int64_t b, int64_t *out);
int nnc_size_add(int64_t a, int64_t b, int64_t *out);

/* The element count of a shape into *numel. Fails, naming `what` and the
 * shape, when a dimension is negative (NNC_DIM_ANY, the unknown batch,
 * counts as 1) or when the shape needs more than NNC_MAX_TENSOR_BYTES at
 * elem_bytes per element. The product of the nonzero dimensions is held to
 * the cap too, so an empty tensor of shape [2^62,0] cannot overflow the row
 * arithmetic done on it. */
int nnc_size_shape(const char *what, int rank, const int64_t *shape, int64_t elem_bytes, int64_t *numel,
                   nnc_status *st);

/* "[1000000,1000000]" into buf (truncated to size). */
const char *nnc_size_shape_str(char *buf, size_t size, int rank, const int64_t *shape);

/* "3.6 TiB", "512 MiB", "12 bytes": for messages. */
const char *nnc_size_bytes_str(char *buf, size_t size, double bytes);

/* malloc/calloc of count * elem_size bytes (at least one), or NULL with a
 * message naming `what` and the size. */
void *nnc_size_alloc(const char *what, int64_t count, int64_t elem_size, nnc_status *st);
void *nnc_size_calloc(const char *what, int64_t count, int64_t elem_size, nnc_status *st);
/* realloc with the same contract; *p is unchanged on failure. */
int nnc_size_realloc(void **p, const char *what, int64_t count, int64_t elem_size, nnc_status *st);

/* Converts v to an integer only when it is finite, whole and representable:
 * a cast of 1e30 or NaN to an integer type is undefined behaviour in C, so
 * every float that becomes an index, a count or a label passes here first.
 * Returns 0, or -1 when v is not such a number. */
int nnc_size_whole(double v, int64_t *out);

#endif
