#include "runtime/train/finite.h"

#include <math.h>
#include <string.h>

/* Exponent bits all set: infinity or NaN. Whole data sets are scanned and
 * almost all of it is finite, so each chunk is first tested without a
 * branch, in a loop of fixed length the compiler vectorises at -O2. */
#define EXPONENT 0x7f800000u
#define CHUNK 1024

static int chunk_has_non_finite(const float *v) {
  unsigned bad = 0;
  for (int i = 0; i < CHUNK; i++) {
    uint32_t bits;
    memcpy(&bits, v + i, sizeof bits);
    bad |= (bits & EXPONENT) == EXPONENT;
  }
  return bad != 0;
}

int64_t nnc_first_non_finite(const float *v, int64_t count) {
  int64_t at = 0;
  while (at + CHUNK <= count && !chunk_has_non_finite(v + at)) at += CHUNK;
  for (; at < count; at++)
    if (!isfinite(v[at])) return at;
  return -1;
}

int64_t nnc_value_non_finite(const nnc_node *n, const void *value) {
  if (!value || n->dtype != NNC_F32) return -1;
  return nnc_first_non_finite(value, nnc_node_numel(n));
}

const char *nnc_non_finite_name(float v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

int nnc_warn_non_finite_data(FILE *out, const char *what, const float *v, int rank, const int64_t *shape) {
  int64_t count = 1;
  for (int i = 0; i < rank; i++) count *= shape[i];
  int64_t at = nnc_first_non_finite(v, count);
  if (at < 0) return 0;
  char index[32 * NNC_MAX_RANK] = "";
  size_t len = 0;
  for (int i = 0; i < rank && len < sizeof index; i++) {
    int64_t stride = 1;
    for (int k = i + 1; k < rank; k++) stride *= shape[k];
    len += (size_t)snprintf(index + len, sizeof index - len, "%s%lld", i ? ", " : "",
                            (long long)((at / stride) % shape[i]) + 1);
  }
  fprintf(out,
          "warning: %s holds %s at [%s] (1-based); training goes on as Keras does, but the loss or the weights "
          "will likely become nan\n",
          what, nnc_non_finite_name(v[at]), index);
  return 1;
}
