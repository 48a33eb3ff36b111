#include "ir/size.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysinfo.h>

#include "ir/types.h"

int nnc_size_mul(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return -1;
  *out = r;
  return 0;
}

int nnc_size_add(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return -1;
  *out = r;
  return 0;
}

const char *nnc_size_shape_str(char *buf, size_t size, int rank, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && used < size; i++) {
    if (shape[i] == NNC_DIM_ANY) used += (size_t)snprintf(buf + used, size - used, "%s?", i ? "," : "");
    else used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", shape[i]);
  }
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

const char *nnc_size_bytes_str(char *buf, size_t size, double bytes) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, u++;
  if (u == 0) snprintf(buf, size, "%.0f bytes", bytes);
  else snprintf(buf, size, "%.1f %s", bytes, units[u]);
  return buf;
}

int nnc_size_shape(const char *what, int rank, const int64_t *shape, int64_t elem_bytes, int64_t *numel,
                   nnc_status *st) {
  char dims[256], have[32], cap[32];
  int64_t n = 1, nonzero = 1, limit = NNC_MAX_TENSOR_BYTES / (elem_bytes > 0 ? elem_bytes : 1);
  /* The true size as a double, for the message only: it may exceed int64. */
  double size = (double)(elem_bytes > 0 ? elem_bytes : 1);
  int over = 0;
  for (int i = 0; i < rank; i++) {
    int64_t d = shape[i] == NNC_DIM_ANY ? 1 : shape[i];
    if (d < 0)
      return nnc_fail(st, "%s: shape %s has a negative size %" PRId64 " at axis %d", what,
                      nnc_size_shape_str(dims, sizeof dims, rank, shape), d, i);
    if (d > 0) size *= (double)d;
    if (d > 0 && (over || nnc_size_mul(nonzero, d, &nonzero) || nonzero > limit)) over = 1;
    if (!over) n *= d;
  }
  if (over)
    return nnc_fail(st, "%s: shape %s needs %s, more than nnc's limit of %s per tensor", what,
                    nnc_size_shape_str(dims, sizeof dims, rank, shape), nnc_size_bytes_str(have, sizeof have, size),
                    nnc_size_bytes_str(cap, sizeof cap, (double)NNC_MAX_TENSOR_BYTES));
  *numel = n;
  return 0;
}

/* Callers have held count * elem_size under the cap (or check it here), so
 * the product is exact. */
static int alloc_bytes(const char *what, int64_t count, int64_t elem_size, size_t *bytes, nnc_status *st) {
  int64_t b;
  if (nnc_size_mul(count, elem_size, &b) || (uint64_t)b > SIZE_MAX)
    return nnc_fail(st, "%s: %" PRId64 " elements of %" PRId64 " bytes overflow a size", what, count, elem_size);
  /* More than the machine's memory and swap would be granted lazily and
   * then end in the kernel's out-of-memory killer when touched: refuse it. */
  struct sysinfo si;
  double memory = sysinfo(&si) == 0 ? ((double)si.totalram + (double)si.totalswap) * si.mem_unit : 0;
  if (memory > 0 && (double)b > memory) {
    char have[32], mem[32];
    return nnc_fail(st, "%s needs %s, more than this machine's %s of memory and swap", what,
                    nnc_size_bytes_str(have, sizeof have, (double)b), nnc_size_bytes_str(mem, sizeof mem, memory));
  }
  *bytes = b ? (size_t)b : 1;
  return 0;
}

static void *alloc_fail(const char *what, size_t bytes, nnc_status *st) {
  char have[32];
  nnc_fail(st, "%s: out of memory allocating %s", what, nnc_size_bytes_str(have, sizeof have, (double)bytes));
  return NULL;
}

void *nnc_size_alloc(const char *what, int64_t count, int64_t elem_size, nnc_status *st) {
  size_t bytes;
  if (alloc_bytes(what, count, elem_size, &bytes, st)) return NULL;
  void *p = malloc(bytes);
  return p ? p : alloc_fail(what, bytes, st);
}

void *nnc_size_calloc(const char *what, int64_t count, int64_t elem_size, nnc_status *st) {
  size_t bytes;
  if (alloc_bytes(what, count, elem_size, &bytes, st)) return NULL;
  void *p = calloc(1, bytes);
  return p ? p : alloc_fail(what, bytes, st);
}

int nnc_size_realloc(void **p, const char *what, int64_t count, int64_t elem_size, nnc_status *st) {
  size_t bytes;
  if (alloc_bytes(what, count, elem_size, &bytes, st)) return -1;
  void *q = realloc(*p, bytes);
  if (!q) return alloc_fail(what, bytes, st), -1;
  *p = q;
  return 0;
}

int nnc_size_whole(double v, int64_t *out) {
  /* 2^63 is exact in a double; every double below it converts. */
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != floor(v)) return -1;
  *out = (int64_t)v;
  return 0;
}
