/* Parameter values by name: the model's weights and the optimizer's slots.
 * Backends read and write them through the graph's param leaves. */
#ifndef NNC_WEIGHTS_H
#define NNC_WEIGHTS_H

#include <stdint.h>

#include "ir/status.h"
#include "ir/types.h"

typedef struct nnc_weight {
  char *name; /* the param leaf's name: "conv2d/kernel", or a slot "conv2d/kernel/m" */
  int rank;
  int64_t shape[NNC_MAX_RANK];
  float *data;
} nnc_weight;

typedef struct nnc_weights {
  nnc_weight *items;
  int count, cap;
} nnc_weights;

/* Keras initializers (MODEL_SCRIPTS.md): kind and its arguments. */
typedef struct nnc_init {
  const char *kind; /* "glorot_uniform", "he_normal", "zeros", ... */
  double fan_in, fan_out;
  double mean, stddev;   /* random_normal */
  double minval, maxval; /* random_uniform */
  double value;          /* constant */
} nnc_init;

void nnc_weights_free(nnc_weights *w);
nnc_weight *nnc_weights_find(const nnc_weights *w, const char *name);
/* Adds a zero-filled weight; an existing one of that name is returned as is
 * when its shape agrees (a shared layer), and is an error otherwise. */
nnc_weight *nnc_weights_add(nnc_weights *w, const char *name, int rank, const int64_t *shape, nnc_status *st);
int64_t nnc_weight_numel(const nnc_weight *w);
/* Fills w from the initializer, drawing from stream hash(name) of `seed`. */
int nnc_weight_init(nnc_weight *w, const nnc_init *init, uint64_t seed, nnc_status *st);
/* Copies every weight's values (for restore_best_weights); free with nnc_weights_free. */
int nnc_weights_copy(nnc_weights *dst, const nnc_weights *src, nnc_status *st);
/* Copies values back from a snapshot made by nnc_weights_copy. */
void nnc_weights_restore(nnc_weights *dst, const nnc_weights *snapshot);

#endif
