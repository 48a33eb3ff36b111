/* safetensors checkpoints; safetensors.h describes the format.
 *
 * Loading runs in stages so that nothing reaches the caller's buffers until
 * the whole file is known to be good:
 *   1. parse the JSON header into an index (runtime/store/safetensors_header.c),
 *   2. check the layout: sizes match shapes, tensors tile the data exactly,
 *   3. match the index against the tensors the caller expects,
 *   4. read the data section into memory, and only then copy it out.
 * Saving writes a temporary next to the target and renames it into place.
 *
 * To support another dtype on load, convert it in copy_out; the dtype table
 * below already knows the sizes of every safetensors dtype. */
#include "runtime/store/safetensors.h"
#include "runtime/store/safetensors_header.h"
#include "ir/atomic_file.h"
#include "ir/size.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation refuses headers over 100 MB; so do we, so that
 * a corrupt length cannot make us allocate gigabytes. */
#define MAX_HEADER_BYTES ((uint64_t)100 << 20)

/* ---------------------------------------------------------------- dtypes */

/* The element count, or -1 when a size is negative or the count overflows;
 * the file's own length bounds what a loaded tensor can claim. */
static int64_t shape_numel(int rank, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++)
    if (nnc_size_mul(n, shape[i], &n)) return -1;
  return n;
}

/* "[784,128]"; "[]" for a scalar. */
const char *nnc_safetensors_shape_str(int rank, const int64_t *shape, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

/* Data is little-endian on disk whatever the host is; going through the
 * integer bits keeps NaN payloads and -0.0 exact. */
static void put_f32le(unsigned char *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  b[0] = (unsigned char)u, b[1] = (unsigned char)(u >> 8);
  b[2] = (unsigned char)(u >> 16), b[3] = (unsigned char)(u >> 24);
}

static float get_f32le(const unsigned char *b) {
  uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* ---------------------------------------------------------------- layout */

static int by_begin(const void *a, const void *b) {
  const nnc_safetensors_entry *x = *(nnc_safetensors_entry *const *)a, *y = *(nnc_safetensors_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(nnc_safetensors_entry *const *)a)->name, (*(nnc_safetensors_entry *const *)b)->name);
}

/* Entry pointers sorted by `cmp`; NULL when out of memory. */
static nnc_safetensors_entry **sorted_entries(const nnc_safetensors_index *idx,
                                              int (*cmp)(const void *, const void *)) {
  nnc_safetensors_entry **v = malloc((size_t)idx->count * sizeof *v + 1);
  if (!v) return NULL;
  for (int i = 0; i < idx->count; i++) v[i] = &idx->entries[i];
  qsort(v, (size_t)idx->count, sizeof *v, cmp);
  return v;
}

/* Each entry's byte range must hold exactly its shape in its dtype. */
static int check_entry_size(const char *path, const nnc_safetensors_entry *e, nnc_status *st) {
  char shape[256];
  int64_t numel = shape_numel(e->rank, e->shape), size = nnc_safetensors_dtype_size(e->dtype);
  if (numel < 0 || numel > INT64_MAX / size)
    return nnc_fail(st, "%s: tensor '%s' has shape %s, too large", path, e->name,
                    nnc_safetensors_shape_str(e->rank, e->shape, shape, sizeof shape));
  if (e->begin > e->end)
    return nnc_fail(st, "%s: tensor '%s' has data_offsets [%" PRId64 ",%" PRId64 "] that end before they begin",
                    path, e->name, e->begin, e->end);
  if (e->end - e->begin != numel * size)
    return nnc_fail(st,
                    "%s: tensor '%s' has data_offsets [%" PRId64 ",%" PRId64 "] holding %" PRId64
                    " bytes, but %s %s needs %" PRId64,
                    path, e->name, e->begin, e->end, e->end - e->begin, e->dtype,
                    nnc_safetensors_shape_str(e->rank, e->shape, shape, sizeof shape), numel * size);
  return 0;
}

/* After sorting by offset: no overlap; the first tensor (if any) that starts
 * past where the previous ended marks a gap. */
static int check_overlap(const char *path, nnc_safetensors_entry **v, int n, const nnc_safetensors_entry **gap,
                         int64_t *gap_from, int64_t *used, nnc_status *st) {
  int64_t end = 0;
  *gap = NULL;
  for (int i = 0; i < n; i++) {
    if (i > 0 && v[i]->begin < end)
      return nnc_fail(st,
                      "%s: tensors '%s' [%" PRId64 ",%" PRId64 "] and '%s' [%" PRId64 ",%" PRId64
                      "] overlap in the data",
                      path, v[i - 1]->name, v[i - 1]->begin, v[i - 1]->end, v[i]->name, v[i]->begin, v[i]->end);
    if (v[i]->begin > end && !*gap) *gap = v[i], *gap_from = end;
    end = v[i]->end;
  }
  *used = end;
  return 0;
}

/* The spec asks tensors to tile the data section: no overlap, no holes and
 * nothing after the last one. A file whose offsets are contiguous but run
 * past the end was cut short, which deserves its own message. */
static int check_tiling(const char *path, const nnc_safetensors_index *idx, nnc_safetensors_entry **v,
                        nnc_status *st) {
  const nnc_safetensors_entry *gap;
  int64_t gap_from = 0, used = 0;
  if (check_overlap(path, v, idx->count, &gap, &gap_from, &used, st)) return -1;
  if (used > idx->data_size && !gap)
    return nnc_fail(st, "%s: truncated: the tensors need %" PRId64 " bytes of data, file has %" PRId64, path, used,
                    idx->data_size);
  for (int i = 0; i < idx->count; i++)
    if (v[i]->end > idx->data_size)
      return nnc_fail(st,
                      "%s: tensor '%s' has data_offsets [%" PRId64 ",%" PRId64
                      "] past the end of the data (%" PRId64 " bytes)",
                      path, v[i]->name, v[i]->begin, v[i]->end, idx->data_size);
  if (gap)
    return nnc_fail(st, "%s: data bytes %" PRId64 " to %" PRId64 " before tensor '%s' belong to no tensor", path,
                    gap_from, gap->begin, gap->name);
  if (used < idx->data_size)
    return nnc_fail(st, "%s: %" PRId64 " bytes after the last tensor's data belong to no tensor", path,
                    idx->data_size - used);
  return 0;
}

static int check_layout(const char *path, const nnc_safetensors_index *idx, nnc_status *st) {
  for (int i = 0; i < idx->count; i++)
    if (check_entry_size(path, &idx->entries[i], st)) return -1;
  nnc_safetensors_entry **v = sorted_entries(idx, by_begin);
  if (!v) return nnc_fail(st, "%s: out of memory", path);
  int rc = check_tiling(path, idx, v, st);
  free(v);
  return rc;
}

static int check_unique_names(const char *path, const nnc_safetensors_index *idx, nnc_status *st) {
  nnc_safetensors_entry **v = sorted_entries(idx, by_name);
  if (!v) return nnc_fail(st, "%s: out of memory", path);
  int rc = 0;
  for (int i = 1; i < idx->count && !rc; i++)
    if (strcmp(v[i - 1]->name, v[i]->name) == 0)
      rc = nnc_fail(st, "%s: malformed header: tensor '%s' appears twice", path, v[i]->name);
  free(v);
  return rc;
}

/* ------------------------------------------------------------- reading */

/* Reads up to n bytes, retrying short reads; the count read, or -1. */
static int64_t read_all(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int64_t)got;
}

static int read_exact(const char *path, int fd, void *buf, size_t n, nnc_status *st) {
  int64_t got = read_all(fd, buf, n);
  if (got < 0) return nnc_fail(st, "cannot read %s: %s", path, strerror(errno));
  if ((size_t)got < n) return nnc_fail(st, "%s: truncated while reading (did the file change?)", path);
  return 0;
}

static int file_size(const char *path, int fd, int64_t *size, nnc_status *st) {
  struct stat sb;
  if (fstat(fd, &sb)) return nnc_fail(st, "cannot read %s: %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return nnc_fail(st, "cannot read %s: %s", path, strerror(EISDIR));
  if (!S_ISREG(sb.st_mode)) return nnc_fail(st, "cannot read %s: not a regular file", path);
  *size = (int64_t)sb.st_size;
  return 0;
}

/* Reads the length prefix and checks it against the file before trusting it
 * with an allocation. */
static int read_header_length(const char *path, int fd, int64_t size, uint64_t *n, nnc_status *st) {
  unsigned char b[8];
  if (size < 8)
    return nnc_fail(st, "%s: truncated: %" PRId64 " bytes, too short for the 8-byte header length", path, size);
  if (read_exact(path, fd, b, 8, st)) return -1;
  *n = 0;
  for (int i = 7; i >= 0; i--) *n = *n << 8 | b[i];
  if (*n > (uint64_t)(size - 8))
    return nnc_fail(st, "%s: truncated: header says %" PRIu64 " bytes of header, file has %" PRId64, path, *n,
                    size - 8);
  if (*n > MAX_HEADER_BYTES)
    return nnc_fail(st, "%s: header of %" PRIu64 " bytes is over the %" PRIu64 "-byte limit", path, *n,
                    MAX_HEADER_BYTES);
  return 0;
}

/* Fills idx from the open file, leaving the file positioned at the data. */
static int read_index(const char *path, int fd, nnc_safetensors_index *idx, nnc_status *st) {
  int64_t size = 0;
  uint64_t n = 0;
  memset(idx, 0, sizeof *idx);
  if (file_size(path, fd, &size, st) || read_header_length(path, fd, size, &n, st)) return -1;
  unsigned char *text = malloc(n + 1);
  if (!text) return nnc_fail(st, "%s: out of memory reading a %" PRIu64 "-byte header", path, n);
  int rc = read_exact(path, fd, text, n, st);
  if (rc == 0) {
    rc = nnc_safetensors_parse_header(path, text, n, 8, idx, st);
  }
  free(text);
  idx->data_start = 8 + (int64_t)n;
  idx->data_size = size - idx->data_start;
  if (rc == 0) rc = check_unique_names(path, idx, st);
  if (rc == 0) rc = check_layout(path, idx, st);
  if (rc) nnc_safetensors_index_free(idx);
  return rc;
}

int nnc_safetensors_read_index(const char *path, nnc_safetensors_index *index, nnc_status *st) {
  memset(index, 0, sizeof *index);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nnc_fail(st, "cannot read %s: %s", path, strerror(errno));
  int rc = read_index(path, fd, index, st);
  close(fd);
  return rc;
}

void nnc_safetensors_index_free(nnc_safetensors_index *index) {
  for (int i = 0; i < index->count; i++) free(index->entries[i].name);
  free(index->entries);
  free(index->format);
  memset(index, 0, sizeof *index);
}

/* -------------------------------------------------- the caller's tensors */

static int by_tensor_name(const void *a, const void *b) {
  return strcmp((*(const nnc_named_tensor *const *)a)->name, (*(const nnc_named_tensor *const *)b)->name);
}

/* Names distinct: a duplicate would write a header no reader accepts, or
 * load one weight into two places while the model expects two. */
static int check_distinct(const char *path, const nnc_named_tensor *tensors, int count, nnc_status *st) {
  const nnc_named_tensor **v = malloc((size_t)count * sizeof *v + 1);
  if (!v) return nnc_fail(st, "%s: out of memory", path);
  for (int i = 0; i < count; i++) v[i] = &tensors[i];
  qsort(v, (size_t)count, sizeof *v, by_tensor_name);
  int rc = 0;
  for (int i = 1; i < count && !rc; i++)
    if (strcmp(v[i - 1]->name, v[i]->name) == 0)
      rc = nnc_fail(st, "%s: tensor '%s' is listed twice", path, v[i]->name);
  free(v);
  return rc;
}

/* The caller's list is checked like the file: a bad entry is a status, not a
 * crash in the middle of a write. */
static int check_tensors(const char *path, const nnc_named_tensor *tensors, int count, nnc_status *st) {
  if (count < 0 || (count > 0 && !tensors)) return nnc_fail(st, "%s: invalid tensor list (%d tensors)", path, count);
  for (int i = 0; i < count; i++) {
    const nnc_named_tensor *t = &tensors[i];
    char shape[256];
    if (!t->name || !t->name[0]) return nnc_fail(st, "%s: tensor %d has no name", path, i);
    if (strcmp(t->name, "__metadata__") == 0)
      return nnc_fail(st, "%s: '__metadata__' is reserved and cannot name a tensor", path);
    if (t->rank < 0 || t->rank > NNC_MAX_RANK)
      return nnc_fail(st, "%s: tensor '%s' has rank %d; nnc supports 0 to %d", path, t->name, t->rank, NNC_MAX_RANK);
    int64_t numel = shape_numel(t->rank, t->shape);
    if (numel < 0 || numel > INT64_MAX / 4)
      return nnc_fail(st, "%s: tensor '%s' has invalid shape %s", path, t->name,
                      nnc_safetensors_shape_str(t->rank, t->shape, shape, sizeof shape));
    if (numel > 0 && !t->data) return nnc_fail(st, "%s: tensor '%s' has no data", path, t->name);
  }
  return check_distinct(path, tensors, count, st);
}

static nnc_safetensors_entry *find_entry(nnc_safetensors_entry **by_name_v, int n, const char *name) {
  nnc_safetensors_entry key = {.name = (char *)name}, *kp = &key;
  nnc_safetensors_entry **hit = bsearch(&kp, by_name_v, (size_t)n, sizeof *by_name_v, by_name);
  return hit ? *hit : NULL;
}

/* "missing tensor 'x'", with the closest unclaimed name in the file as a
 * hint, since a renamed layer is the usual cause. */
static int fail_missing(const char *path, const nnc_safetensors_index *idx, const char *used, const char *name,
                        nnc_status *st) {
  const char **names = malloc(((size_t)idx->count + 1) * sizeof *names);
  const char *close = NULL;
  if (names) {
    int n = 0;
    for (int i = 0; i < idx->count; i++)
      if (!used[i]) names[n++] = idx->entries[i].name;
    names[n] = NULL;
    close = nnc_closest_name(name, names);
  }
  if (close) nnc_fail(st, "%s: missing tensor '%s' (the file has '%s')", path, name, close);
  else nnc_fail(st, "%s: missing tensor '%s'", path, name);
  free(names);
  return -1;
}

static int check_match(const char *path, const nnc_named_tensor *t, const nnc_safetensors_entry *e,
                       nnc_status *st) {
  char have[256], need[256];
  if (strcmp(e->dtype, "F32") != 0)
    return nnc_fail(st, "%s: tensor '%s' has dtype %s in the file, the model needs F32", path, t->name, e->dtype);
  if (e->rank != t->rank || memcmp(e->shape, t->shape, (size_t)t->rank * sizeof *t->shape) != 0)
    return nnc_fail(st, "%s: tensor '%s' has shape %s in the file, the model needs %s", path, t->name,
                    nnc_safetensors_shape_str(e->rank, e->shape, have, sizeof have), nnc_safetensors_shape_str(t->rank, t->shape, need, sizeof need));
  return 0;
}

/* Lists the file's tensors that nobody asked for (the first few). */
static int fail_extras(const char *path, const nnc_safetensors_index *idx, const char *used, int extras,
                       nnc_status *st) {
  char list[1024];
  size_t n = 0;
  int shown = 0;
  list[0] = 0;
  for (int i = 0; i < idx->count && shown < 5; i++) {
    if (used[i]) continue;
    int w = snprintf(list + n, sizeof list - n, "%s'%s'", shown ? ", " : "", idx->entries[i].name);
    if (w < 0 || (size_t)w >= sizeof list - n) break;
    n += (size_t)w, shown++;
  }
  if (extras == 1)
    return nnc_fail(st, "%s: unexpected tensor %s in the file (the model has no such weight)", path, list);
  if (shown == extras) return nnc_fail(st, "%s: unexpected tensors in the file: %s", path, list);
  return nnc_fail(st, "%s: unexpected tensors in the file: %s and %d more", path, list, extras - shown);
}

/* Finds every tensor first and reports second, so a missing name's hint
 * comes from the names nothing else claimed. matched[i] gets tensors[i]'s. */
static int match_tensors(const char *path, const nnc_safetensors_index *idx, const nnc_named_tensor *tensors,
                         int count, const nnc_safetensors_entry **matched, nnc_status *st) {
  nnc_safetensors_entry **v = sorted_entries(idx, by_name);
  char *used = calloc((size_t)idx->count + 1, 1);
  int rc = v && used ? 0 : nnc_fail(st, "%s: out of memory", path), extras = 0;
  for (int i = 0; i < count && !rc; i++)
    if ((matched[i] = find_entry(v, idx->count, tensors[i].name))) used[matched[i] - idx->entries] = 1;
  for (int i = 0; i < count && !rc; i++)
    rc = matched[i] ? check_match(path, &tensors[i], matched[i], st)
                    : fail_missing(path, idx, used, tensors[i].name, st);
  for (int i = 0; i < idx->count && !rc; i++) extras += !used[i];
  if (!rc && extras) rc = fail_extras(path, idx, used, extras, st);
  free(v), free(used);
  return rc;
}

/* ------------------------------------------------------------- loading */

static void copy_out(const unsigned char *data, const nnc_named_tensor *tensors, int count,
                     const nnc_safetensors_entry **matched) {
  for (int i = 0; i < count; i++) {
    const unsigned char *src = data + matched[i]->begin;
    int64_t numel = shape_numel(tensors[i].rank, tensors[i].shape);
    for (int64_t j = 0; j < numel; j++) tensors[i].data[j] = get_f32le(src + 4 * j);
  }
}

/* Everything is validated and the whole data section is in memory before the
 * first byte reaches a caller's buffer. */
static int load_from(const char *path, int fd, nnc_named_tensor *tensors, int count, nnc_status *st) {
  nnc_safetensors_index idx;
  if (check_tensors(path, tensors, count, st) || read_index(path, fd, &idx, st)) return -1;
  const nnc_safetensors_entry **matched = malloc((size_t)count * sizeof *matched + 1);
  unsigned char *data = NULL;
  int rc = matched ? match_tensors(path, &idx, tensors, count, matched, st) : nnc_fail(st, "%s: out of memory", path);
  if (rc == 0 && (uint64_t)idx.data_size > SIZE_MAX - 1) rc = nnc_fail(st, "%s: too large to load", path);
  if (rc == 0 && !(data = malloc((size_t)idx.data_size + 1)))
    rc = nnc_fail(st, "%s: out of memory for %" PRId64 " bytes of weights", path, idx.data_size);
  if (rc == 0) rc = read_exact(path, fd, data, (size_t)idx.data_size, st);
  if (rc == 0) copy_out(data, tensors, count, matched);
  free(data), free(matched);
  nnc_safetensors_index_free(&idx);
  return rc;
}

int nnc_safetensors_load(const char *path, nnc_named_tensor *tensors, int count, nnc_status *st) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nnc_fail(st, "cannot read %s: %s", path, strerror(errno));
  int rc = load_from(path, fd, tensors, count, st);
  close(fd);
  return rc;
}

/* ------------------------------------------------------------- writing */

typedef struct sbuf {
  char *s;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *grown = realloc(b->s, cap);
    if (!grown) {
      b->oom = 1;
      return;
    }
    b->s = grown, b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  sb_put(b, tmp, (size_t)n); /* callers print numbers only, far below 128 bytes */
}

/* Names are the caller's: escape what JSON requires, pass UTF-8 through. */
static void sb_put_json_string(sbuf *b, const char *s) {
  sb_puts(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
    else if (c < 0x20) sb_printf(b, "\\u%04x", c);
    else sb_put(b, (const char *)&c, 1);
  }
  sb_puts(b, "\"");
}

/* The header, padded with spaces to a multiple of 8 so that the data that
 * follows the 8-byte length starts 8-byte aligned. */
static int build_header(const nnc_named_tensor *tensors, int count, sbuf *b) {
  int64_t offset = 0;
  sb_puts(b, "{\"__metadata__\":{\"format\":\"nnc\"}");
  for (int i = 0; i < count; i++) {
    const nnc_named_tensor *t = &tensors[i];
    int64_t bytes = 4 * shape_numel(t->rank, t->shape);
    sb_puts(b, ",");
    sb_put_json_string(b, t->name);
    sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->rank; d++) sb_printf(b, "%s%" PRId64, d ? "," : "", t->shape[d]);
    sb_printf(b, "],\"data_offsets\":[%" PRId64 ",%" PRId64 "]}", offset, offset + bytes);
    offset += bytes;
  }
  sb_puts(b, "}");
  while (!b->oom && b->len % 8) sb_puts(b, " ");
  return b->oom ? -1 : 0;
}

/* Writes all n bytes; 0 or an errno value. */
static int write_all(int fd, const void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, (const char *)buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return ENOSPC;
    done += (size_t)w;
  }
  return 0;
}

/* Converts through a fixed buffer, so writing costs no copy of the weights. */
static int write_tensor_data(int fd, const nnc_named_tensor *t) {
  enum { CHUNK = 4096 };
  unsigned char buf[4 * CHUNK];
  int64_t numel = shape_numel(t->rank, t->shape);
  for (int64_t i = 0; i < numel; i += CHUNK) {
    int64_t n = numel - i < CHUNK ? numel - i : CHUNK;
    for (int64_t j = 0; j < n; j++) put_f32le(buf + 4 * j, t->data[i + j]);
    int err = write_all(fd, buf, (size_t)(4 * n));
    if (err) return err;
  }
  return 0;
}

static int write_contents(int fd, const sbuf *header, const nnc_named_tensor *tensors, int count) {
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
  int err = write_all(fd, len8, 8);
  if (!err) err = write_all(fd, header->s, header->len);
  for (int i = 0; i < count && !err; i++) err = write_tensor_data(fd, &tensors[i]);
  return err;
}

typedef struct save_ctx {
  const sbuf *header;
  const nnc_named_tensor *tensors;
  int count;
} save_ctx;

static int write_file(void *ctx, int fd, const char *tmp, nnc_status *st) {
  (void)tmp;
  const save_ctx *c = ctx;
  int err = write_contents(fd, c->header, c->tensors, c->count);
  return err ? nnc_fail(st, "%s", strerror(err)) : 0;
}

int nnc_safetensors_save(const char *path, const nnc_named_tensor *tensors, int count, nnc_status *st) {
  if (check_tensors(path, tensors, count, st)) return -1;
  sbuf header = {0};
  int rc = build_header(tensors, count, &header) ? nnc_fail(st, "cannot write %s: %s", path, strerror(ENOMEM))
                                                 : nnc_write_file(path, write_file, &(save_ctx){&header, tensors, count}, st);
  free(header.s);
  return rc;
}
