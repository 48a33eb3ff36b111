#include "runtime/store/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/size.h"
#include "runtime/rng.h"

void nnc_weights_free(nnc_weights *w) {
  for (int i = 0; i < w->count; i++) free(w->items[i].name), free(w->items[i].data);
  free(w->items);
  memset(w, 0, sizeof *w);
}

nnc_weight *nnc_weights_find(const nnc_weights *w, const char *name) {
  for (int i = 0; i < w->count; i++)
    if (strcmp(w->items[i].name, name) == 0) return &w->items[i];
  return NULL;
}

/* Exact: nnc_weights_add held every weight under NNC_MAX_TENSOR_BYTES. */
int64_t nnc_weight_numel(const nnc_weight *w) {
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->shape[i];
  return n;
}

nnc_weight *nnc_weights_add(nnc_weights *w, const char *name, int rank, const int64_t *shape, nnc_status *st) {
  nnc_weight *old = nnc_weights_find(w, name);
  if (old) {
    if (old->rank == rank && memcmp(old->shape, shape, sizeof *shape * (size_t)rank) == 0) return old;
    nnc_fail(st, "weight '%s' exists with another shape", name);
    return NULL;
  }
  char what[300];
  snprintf(what, sizeof what, "weight '%s'", name);
  int64_t count;
  if (rank < 0 || rank > NNC_MAX_RANK) {
    nnc_fail(st, "%s: rank %d is outside 0..%d", what, rank, NNC_MAX_RANK);
    return NULL;
  }
  if (nnc_size_shape(what, rank, shape, sizeof(float), &count, st)) return NULL;
  if (w->count == w->cap) {
    int cap = w->cap ? 2 * w->cap : 16;
    if (nnc_size_realloc((void **)&w->items, "the weight table", cap, sizeof *w->items, st)) return NULL;
    w->cap = cap;
  }
  nnc_weight item = {0};
  item.rank = rank;
  memcpy(item.shape, shape, sizeof *shape * (size_t)rank);
  item.data = nnc_size_calloc(what, count, sizeof(float), st);
  if (!item.data) return NULL;
  if (!(item.name = strdup(name))) {
    free(item.data);
    nnc_fail(st, "%s: out of memory", what);
    return NULL;
  }
  w->items[w->count] = item;
  return &w->items[w->count++];
}

/* Keras's truncated normal: values beyond two standard deviations are drawn
 * again. The stddev passed in is already divided by 0.8796..., the stddev of
 * a unit normal truncated at ±2, as VarianceScaling does. */
static float truncated_normal(uint64_t seed, uint32_t stream, uint64_t i, double stddev) {
  for (uint64_t attempt = 0;; attempt++) {
    float z = nnc_rng_normal(seed, stream, (attempt << 40) | i);
    if (fabsf(z) <= 2.0f) return (float)(z * stddev);
  }
}

typedef enum { UNIFORM, TRUNCATED, NORMAL, CONSTANT } init_family;

/* Resolves an initializer to a family and two parameters (range or mean/stddev). */
static int init_params(const nnc_init *in, init_family *family, double *a, double *b) {
  const double trunc = 0.87962566103423978;
  const char *k = in->kind;
  if (!strcmp(k, "glorot_uniform")) *family = UNIFORM, *b = sqrt(6.0 / (in->fan_in + in->fan_out)), *a = -*b;
  else if (!strcmp(k, "he_uniform")) *family = UNIFORM, *b = sqrt(6.0 / in->fan_in), *a = -*b;
  else if (!strcmp(k, "random_uniform")) *family = UNIFORM, *a = in->minval, *b = in->maxval;
  else if (!strcmp(k, "glorot_normal")) *family = TRUNCATED, *a = 0, *b = sqrt(2.0 / (in->fan_in + in->fan_out)) / trunc;
  else if (!strcmp(k, "he_normal")) *family = TRUNCATED, *a = 0, *b = sqrt(2.0 / in->fan_in) / trunc;
  else if (!strcmp(k, "lecun_normal")) *family = TRUNCATED, *a = 0, *b = sqrt(1.0 / in->fan_in) / trunc;
  else if (!strcmp(k, "random_normal")) *family = NORMAL, *a = in->mean, *b = in->stddev;
  else if (!strcmp(k, "zeros")) *family = CONSTANT, *a = 0;
  else if (!strcmp(k, "ones")) *family = CONSTANT, *a = 1;
  else if (!strcmp(k, "constant")) *family = CONSTANT, *a = in->value;
  else return -1;
  return 0;
}

int nnc_weight_init(nnc_weight *w, const nnc_init *init, uint64_t seed, nnc_status *st) {
  init_family family;
  double a = 0, b = 0;
  if (init_params(init, &family, &a, &b)) return nnc_fail(st, "unknown initializer '%s'", init->kind);
  uint32_t stream = nnc_rng_stream_of(w->name);
  int64_t count = nnc_weight_numel(w);
  for (int64_t i = 0; i < count; i++) {
    uint64_t c = (uint64_t)i;
    if (family == UNIFORM) w->data[i] = (float)(a + (b - a) * nnc_rng_uniform(seed, stream, c));
    else if (family == TRUNCATED) w->data[i] = truncated_normal(seed, stream, c, b);
    else if (family == NORMAL) w->data[i] = (float)(a + b * nnc_rng_normal(seed, stream, c));
    else w->data[i] = (float)a;
  }
  return 0;
}

int nnc_weights_copy(nnc_weights *dst, const nnc_weights *src, nnc_status *st) {
  for (int i = 0; i < src->count; i++) {
    const nnc_weight *s = &src->items[i];
    nnc_weight *d = nnc_weights_add(dst, s->name, s->rank, s->shape, st);
    if (!d) return -1;
    memcpy(d->data, s->data, sizeof(float) * (size_t)nnc_weight_numel(s));
  }
  return 0;
}

void nnc_weights_restore(nnc_weights *dst, const nnc_weights *snapshot) {
  for (int i = 0; i < snapshot->count; i++) {
    nnc_weight *d = nnc_weights_find(dst, snapshot->items[i].name);
    if (d) memcpy(d->data, snapshot->items[i].data, sizeof(float) * (size_t)nnc_weight_numel(d));
  }
}
