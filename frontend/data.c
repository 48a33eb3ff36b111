/* The `data` module: IDX files (the format of the MNIST family), one-hot
 * labels, and the tensor constructors; the data sets themselves (where they
 * are found, fetching them) are in datasets.c.
 *
 * File errors name the path and what is wrong with it, since a user facing a
 * bad download needs to know which of four files to fetch again. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "frontend/bind_augment.h"
#include "frontend/datasets.h"
#include "frontend/tensor.h"
#include "ir/size.h"

#define IDX_META "nnc.idxfile"
/* Data is read and converted this many bytes at a time straight into the
 * tensor, whose pages the system provides only as they are written: memory
 * grows with the data that arrives, not with what the header claims. */
#define CHUNK ((size_t)1 << 20)
/* gzread counts in unsigned ints. */
#define MAX_READ ((size_t)1 << 30)
/* Deflate's best case: 258 bytes from a 2-bit code gives 1032:1. A gzip
 * file of n bytes holds at most this times n bytes of data. */
#define DEFLATE_MAX_RATIO 1032

/* ---- IDX files ---- */

typedef struct idx_type {
  int code;
  const char *name;
  int size;
} idx_type;

static const idx_type idx_types[] = {
    {0x08, "ubyte", 1}, {0x09, "sbyte", 1}, {0x0B, "short", 2},
    {0x0C, "int", 4},   {0x0D, "float", 4}, {0x0E, "double", 8},
};

/* A userdata, so a Lua error anywhere while reading still closes the file
 * and frees the buffer (through __gc). */
typedef struct idx_file {
  gzFile gz;
  unsigned char *buf;
} idx_file;

typedef struct idx_header {
  const idx_type *type;
  int rank;
  int64_t shape[NNC_MAX_RANK];
  size_t bytes;       /* of data after the header */
  int64_t header_size; /* magic and dimensions */
} idx_header;

static int idx_release(lua_State *L) {
  idx_file *f = luaL_checkudata(L, 1, IDX_META);
  if (f->gz) gzclose(f->gz);
  free(f->buf);
  f->gz = NULL;
  f->buf = NULL;
  return 0;
}

static idx_file *idx_open(lua_State *L, const char *path) {
  idx_file *f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  luaL_setmetatable(L, IDX_META);
  errno = 0;
  /* gzopen reads plain files as they are, so one path serves both. */
  f->gz = gzopen(path, "rb");
  if (!f->gz) nnc_lua_errorf(L, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
  gzbuffer(f->gz, 1 << 20);
  return f;
}

/* zlib's messages start with the path; drop it, since ours do too. */
static const char *gz_message(gzFile gz, const char *path, int *err) {
  const char *msg = gzerror(gz, err);
  size_t n = strlen(path);
  if (!strncmp(msg, path, n) && msg[n] == ':') msg += n + 1 + (msg[n + 1] == ' ');
  return msg;
}

/* Reads up to n bytes and returns how many came; fewer only at the end of
 * the data (a gzip stream cut short counts as an end). */
static size_t idx_read(lua_State *L, idx_file *f, const char *path, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got < MAX_READ ? n - got : MAX_READ;
    int r = gzread(f->gz, (char *)buf + got, (unsigned)want);
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    int err = Z_OK;
    const char *msg = r < 0 ? gz_message(f->gz, path, &err) : "";
    if (r == 0 || err == Z_BUF_ERROR) break;
    nnc_lua_errorf(L, "%s: %s: %s", path, err == Z_ERRNO ? "read error" : "corrupt gzip data", msg);
  }
  return got;
}

static void dims_str(char *buf, size_t size, const idx_header *h) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < h->rank && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)h->shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static const idx_type *idx_find_type(int code) {
  for (size_t i = 0; i < sizeof idx_types / sizeof *idx_types; i++)
    if (idx_types[i].code == code) return &idx_types[i];
  return NULL;
}

/* Magic: two zero bytes, the type code, the number of dimensions; then each
 * dimension as a big-endian uint32. */
static void idx_read_header(lua_State *L, idx_file *f, const char *path, idx_header *h) {
  unsigned char magic[4], dims[4 * NNC_MAX_RANK];
  size_t got = idx_read(L, f, path, magic, 4);
  if (got < 4) nnc_lua_errorf(L, "%s: truncated: expected a 4-byte IDX header, got %zu bytes", path, got);
  if (magic[0] || magic[1])
    nnc_lua_errorf(L, "%s: not an IDX file: bad magic, it starts with bytes %02x %02x instead of 00 00", path,
                   magic[0], magic[1]);
  h->type = idx_find_type(magic[2]);
  if (!h->type)
    nnc_lua_errorf(L,
                   "%s: unknown IDX type code 0x%02X (known: 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, "
                   "0x0D float, 0x0E double)",
                   path, magic[2]);
  h->rank = magic[3];
  if (h->rank < 1 || h->rank > NNC_MAX_RANK)
    nnc_lua_errorf(L, "%s: %d dimensions; nnc tensors have 1 to %d", path, h->rank, NNC_MAX_RANK);
  size_t want = 4 * (size_t)h->rank;
  got = idx_read(L, f, path, dims, want);
  if (got < want)
    nnc_lua_errorf(L, "%s: truncated: expected %zu bytes of dimensions, got %zu", path, want, got);
  for (int i = 0; i < h->rank; i++) {
    const unsigned char *p = dims + 4 * i;
    h->shape[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
  }
  char d[160];
  dims_str(d, sizeof d, h);
  int64_t n;
  nnc_status st = {0};
  /* Held to the cap as f32, the widest tensor nnc makes from it. */
  if (nnc_size_shape("the tensor", h->rank, h->shape, 4, &n, &st))
    nnc_lua_errorf(L, "%s: dimensions %s are too large: %s; corrupt header?", path, d, st.msg);
  h->bytes = (size_t)n * (size_t)h->type->size;
  h->header_size = 4 + (int64_t)want;
}

/* Fails before anything is allocated when the file cannot hold what its
 * header claims: a plain file must have the bytes, a gzip file can expand
 * at most DEFLATE_MAX_RATIO times. */
static void idx_check_capacity(lua_State *L, idx_file *f, const char *path, const idx_header *h) {
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return;
  int plain = gzdirect(f->gz);
  double holds = plain ? (double)sb.st_size - (double)h->header_size : (double)sb.st_size * DEFLATE_MAX_RATIO;
  if ((double)h->bytes <= holds) return;
  char d[160];
  dims_str(d, sizeof d, h);
  if (plain)
    nnc_lua_errorf(L, "%s: truncated: dimensions %s of %s need %zu bytes of data, got %.0f", path, d,
                   h->type->name, h->bytes, holds);
  nnc_lua_errorf(L,
                 "%s: dimensions %s of %s need %zu bytes of data, more than a gzip file of %lld bytes can hold "
                 "(at most %.0f): corrupt header?",
                 path, d, h->type->name, h->bytes, (long long)sb.st_size, holds);
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static double idx_value(int code, const unsigned char *p) {
  switch (code) {
  case 0x08: return p[0];
  case 0x09: return (int8_t)p[0];
  case 0x0B: return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
  case 0x0C: return (int32_t)be32(p);
  case 0x0D: {
    uint32_t bits = be32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
  }
  default: {
    uint64_t bits = (uint64_t)be32(p) << 32 | be32(p + 4);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
  }
  }
}

/* Converts n elements from src into t from element `at` on; u8 tensors
 * were read in place. */
static void idx_convert(const idx_header *h, const unsigned char *src, nnc_tensor *t, int64_t at, int64_t n) {
  int code = h->type->code, size = h->type->size;
  if (t->dtype == NNC_I32) {
    for (int64_t i = 0; i < n; i++) nnc_tensor_i32(t)[at + i] = (int32_t)idx_value(code, src + i * size);
  } else if (t->dtype == NNC_F32 && code == 0x08) {
    float *dst = nnc_tensor_f32(t) + at; /* the common case (images) gets a plain loop */
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
  } else if (t->dtype == NNC_F32) {
    for (int64_t i = 0; i < n; i++) nnc_tensor_f32(t)[at + i] = (float)idx_value(code, src + i * size);
  }
}

/* Reads the data into t a chunk at a time. */
static void idx_read_data(lua_State *L, idx_file *f, const char *path, const idx_header *h, nnc_tensor *t) {
  size_t size = (size_t)h->type->size, per_chunk = CHUNK / size, got = 0;
  f->buf = malloc(CHUNK);
  if (!f->buf) nnc_lua_errorf(L, "%s: out of memory reading it", path);
  int64_t n = nnc_tensor_numel(t);
  for (int64_t at = 0; at < n;) {
    size_t want = (size_t)(n - at) < per_chunk ? (size_t)(n - at) : per_chunk;
    unsigned char *dst = t->dtype == NNC_U8 ? nnc_tensor_u8(t) + at : f->buf;
    size_t bytes = idx_read(L, f, path, dst, want * size);
    got += bytes;
    idx_convert(h, dst, t, at, (int64_t)(bytes / size));
    at += (int64_t)(bytes / size);
    if (bytes < want * size) break;
  }
  char d[160];
  dims_str(d, sizeof d, h);
  if (got < h->bytes)
    nnc_lua_errorf(L, "%s: truncated: dimensions %s of %s need %zu bytes of data, got %zu", path, d,
                   h->type->name, h->bytes, got);
  unsigned char extra;
  if (idx_read(L, f, path, &extra, 1))
    nnc_lua_errorf(L,
                   "%s: more data than the header says: dimensions %s of %s need %zu bytes, and more follow",
                   path, d, h->type->name, h->bytes);
}

/* Pushes the IDX file at path as a tensor: f32, except that rank-1 ubyte or
 * int files (labels) stay integers as i32, and with `raw` other ubyte files
 * (images) stay bytes as u8. */
static nnc_tensor *idx_load(lua_State *L, const char *path, idx_header *h, int raw) {
  idx_file *f = idx_open(L, path);
  idx_read_header(L, f, path, h);
  idx_check_capacity(L, f, path, h);
  int label = h->rank == 1 && (h->type->code == 0x08 || h->type->code == 0x0C);
  nnc_dtype dtype = label ? NNC_I32 : raw && h->type->code == 0x08 ? NNC_U8 : NNC_F32;
  nnc_tensor *t = nnc_lua_newtensor(L, dtype, h->rank, h->shape);
  idx_read_data(L, f, path, h, t);
  /* Close now rather than whenever the collector runs. */
  lua_pushcfunction(L, idx_release);
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_remove(L, -2);
  return t;
}

static int data_idx(lua_State *L) {
  idx_header h;
  idx_load(L, luaL_checkstring(L, 1), &h, 0);
  return 1;
}

/* ---- the MNIST layout ---- */

static _Noreturn void bad_contents(lua_State *L, const char *path, const char *want, const idx_header *h) {
  char d[160];
  dims_str(d, sizeof d, h);
  nnc_lua_errorf(L, "%s: expected %s, got %s %s", path, want, h->type->name, d);
}

void nnc_data_load_split(lua_State *L, const char *images, const char *labels) {
  idx_header hx, hy;
  nnc_tensor *x = idx_load(L, images, &hx, 1);
  if (hx.type->code != 0x08 || hx.rank != 3) bad_contents(L, images, "ubyte images [N,rows,cols]", &hx);
  nnc_tensor *y = idx_load(L, labels, &hy, 1);
  if (y->dtype != NNC_I32) bad_contents(L, labels, "labels as ubyte or int [N]", &hy);
  if (y->shape[0] != x->shape[0])
    nnc_lua_errorf(L, "%s has %lld images but %s has %lld labels", images, (long long)x->shape[0], labels,
                   (long long)y->shape[0]);
}

/* ---- labels ---- */

/* Label i of y as a whole number, or an error naming it. */
static int64_t label_at(lua_State *L, const nnc_tensor *y, int64_t i) {
  if (y->dtype == NNC_I32) return nnc_tensor_i32(y)[i];
  float v = nnc_tensor_f32(y)[i];
  int64_t label;
  if (nnc_size_whole(v, &label))
    nnc_lua_errorf(L, "data.to_categorical: label at index %lld is %g, not a whole number", (long long)i + 1,
                   (double)v);
  return label;
}

/* One-hot labels, as keras.utils.to_categorical: y's shape (less a trailing
 * size-1 axis) plus one axis of `classes`, which defaults to max(y) + 1. */
static int data_to_categorical(lua_State *L) {
  nnc_tensor *y = nnc_lua_checktensorlike(L, 1, NNC_I32);
  int64_t n = nnc_tensor_numel(y), max = -1;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = label_at(L, y, i);
    if (v < 0)
      nnc_lua_errorf(L, "data.to_categorical: label at index %lld is %lld; labels count from 0",
                     (long long)i + 1, (long long)v);
    if (v > max) max = v;
  }
  lua_Integer classes = luaL_optinteger(L, 2, max + 1);
  if (classes < 1)
    nnc_lua_errorf(L, "data.to_categorical: classes is %lld, expected at least 1", (long long)classes);
  int rank = y->rank > 1 && y->shape[y->rank - 1] == 1 ? y->rank - 1 : y->rank;
  if (rank == NNC_MAX_RANK)
    nnc_lua_errorf(L, "data.to_categorical: labels of rank %d leave no room for classes", rank);
  int64_t shape[NNC_MAX_RANK];
  memcpy(shape, y->shape, sizeof shape);
  shape[rank] = classes;
  nnc_tensor *out = nnc_lua_newtensor(L, NNC_F32, rank + 1, shape);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = label_at(L, y, i);
    if (v >= classes)
      nnc_lua_errorf(L, "data.to_categorical: label at index %lld is %lld, outside 0..%lld for %lld classes",
                     (long long)i + 1, (long long)v, (long long)classes - 1, (long long)classes);
    nnc_tensor_f32(out)[i * classes + v] = 1.0f;
  }
  return 1;
}

int nnc_lua_open_data(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"idx", data_idx},
      {"to_categorical", data_to_categorical},
      {"tensor", nnc_lua_tensor_from_table},
      {"zeros", nnc_lua_tensor_zeros},
      {"concat", nnc_lua_tensor_concat},
      {"confusion_matrix", nnc_lua_confusion_matrix},
      {NULL, NULL},
  };
  nnc_lua_open_tensor(L);
  if (luaL_newmetatable(L, IDX_META)) {
    lua_pushcfunction(L, idx_release);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  nnc_data_add_datasets(L, lua_gettop(L));
  nnc_lua_open_augment(L, lua_gettop(L));
  return 1;
}
