/* Finding values that are not finite (NaN, infinity) in float data: a
 * step's values and the data fit is given. */
#ifndef NNC_FINITE_H
#define NNC_FINITE_H

#include <stdint.h>
#include <stdio.h>

#include "ir/graph.h"

/* The index of the first element of v[0..count) that is not finite, or -1. */
int64_t nnc_first_non_finite(const float *v, int64_t count);
/* The same over node n's value; -1 for a value that is not f32 or is NULL. */
int64_t nnc_value_non_finite(const nnc_node *n, const void *value);

/* "nan", "inf" or "-inf". */
const char *nnc_non_finite_name(float v);

/* When v (an f32 array of the given shape, called `what`) holds a value that
 * is not finite, one warning on out naming the first one by its index
 * (1-based, as a script counts rows) and what comes of it in training.
 * Returns 1 when it warned, else 0. */
int nnc_warn_non_finite_data(FILE *out, const char *what, const float *v, int rank, const int64_t *shape);

#endif
