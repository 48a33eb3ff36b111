/* numpy's .npz archives (a zip of .npy files), as Keras ships MNIST:
 * mnist.npz holds x_train, y_train, x_test and y_test. libzip reads the
 * archive (numpy writes zip64 records and either stored or deflated
 * members); the .npy header is parsed here.
 *
 * An .npy file is the magic "\x93NUMPY", a version byte pair, the header's
 * length (2 bytes little-endian in version 1, 4 in versions 2 and 3), then a
 * Python dict literal such as
 *   {'descr': '|u1', 'fortran_order': False, 'shape': (60000, 28, 28), }
 * and the raw C-order data. */
#include "frontend/npz.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#ifdef NNC_NO_NPZ
/* A portable build (NNC_PORTABLE) leaves libzip out. */
npz_file *nnc_npz_open(lua_State *L, const char *path) {
  nnc_lua_errorf(L, "%s: this nnc was built with NNC_PORTABLE, which cannot read .npz files; use the IDX files", path);
}
nnc_tensor *nnc_npz_read(lua_State *L, npz_file *f, const char *path, const char *name) {
  (void)f, (void)name;
  nnc_lua_errorf(L, "%s: .npz files are not supported in this build", path);
}
void nnc_npz_close(lua_State *L, int idx) { (void)L, (void)idx; }
#else
#include <zip.h>

#define NPZ_META "nnc.npzfile"
#define MAX_HEADER 65536

typedef struct npz_file {
  zip_t *zip;
  zip_file_t *member;
} npz_file;

static int npz_release(lua_State *L) {
  npz_file *f = luaL_checkudata(L, 1, NPZ_META);
  if (f->member) zip_fclose(f->member);
  if (f->zip) zip_discard(f->zip);
  f->member = NULL;
  f->zip = NULL;
  return 0;
}

/* Pushes the archive as a userdata, so a Lua error still closes it. */
npz_file *nnc_npz_open(lua_State *L, const char *path) {
  npz_file *f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  if (luaL_newmetatable(L, NPZ_META)) {
    lua_pushcfunction(L, npz_release);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int err = 0;
  f->zip = zip_open(path, ZIP_RDONLY, &err);
  if (!f->zip) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    lua_pushstring(L, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    nnc_lua_errorf(L, "%s: not a readable .npz (zip) file: %s", path, lua_tostring(L, -1));
  }
  return f;
}

void nnc_npz_close(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, npz_release);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 0);
}

static void read_exact(lua_State *L, npz_file *f, const char *where, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    zip_int64_t r = zip_fread(f->member, (char *)buf + got, n - got);
    if (r < 0) nnc_lua_errorf(L, "%s: corrupt data: %s", where, zip_file_strerror(f->member));
    if (r == 0) nnc_lua_errorf(L, "%s: truncated: expected %zu bytes, got %zu", where, n, got);
    got += (size_t)r;
  }
}

/* The text after `'key':` in the header dict, or NULL. */
static const char *dict_value(const char *header, const char *key) {
  char quoted[32];
  snprintf(quoted, sizeof quoted, "'%s'", key);
  const char *p = strstr(header, quoted);
  if (!p) return NULL;
  p = strchr(p + strlen(quoted), ':');
  if (!p) return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

typedef struct npy_kind {
  const char *descr;
  nnc_dtype dtype;
  int size;
} npy_kind;

/* Element types Keras's files use: bytes for images, bytes or integers for labels. */
static const npy_kind npy_kinds[] = {
    {"|u1", NNC_U8, 1}, {"<u1", NNC_U8, 1}, {"|i1", NNC_I32, 1}, {"<i4", NNC_I32, 4}, {"<i8", NNC_I32, 8}, {"<f4", NNC_F32, 4},
};

static const npy_kind *parse_descr(const char *v) {
  if (!v || (*v != '\'' && *v != '"')) return NULL;
  for (size_t i = 0; i < sizeof npy_kinds / sizeof *npy_kinds; i++)
    if (!strncmp(v + 1, npy_kinds[i].descr, 3) && v[4] == v[0]) return &npy_kinds[i];
  return NULL;
}

static int parse_shape(const char *v, int64_t *shape) {
  if (!v || *v != '(') return -1;
  int rank = 0;
  for (v++; *v && *v != ')';) {
    while (*v == ' ' || *v == ',') v++;
    if (*v == ')') break;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0 || rank == NNC_MAX_RANK) return -1;
    shape[rank++] = n;
    v = end;
  }
  return *v == ')' ? rank : -1;
}

/* Converts n little-endian elements of `kind` from src into t. */
static void convert(const npy_kind *kind, const unsigned char *src, nnc_tensor *t, int64_t n) {
  if (t->dtype == NNC_U8 || (t->dtype == NNC_F32 && kind->size == 4)) {
    memcpy(nnc_tensor_bytes(t), src, (size_t)n * (size_t)kind->size);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *p = src + i * kind->size;
    int64_t v = 0;
    if (kind->size == 1) v = kind->descr[1] == 'i' ? (int8_t)p[0] : p[0];
    for (int b = kind->size - 1; kind->size > 1 && b >= 0; b--) v = (v << 8) | p[b];
    if (kind->size == 4) v = (int32_t)v;
    nnc_tensor_i32(t)[i] = (int32_t)v;
  }
}

nnc_tensor *nnc_npz_read(lua_State *L, npz_file *f, const char *path, const char *name) {
  char where[4200];
  snprintf(where, sizeof where, "%s: %s.npy", path, name);
  lua_pushfstring(L, "%s.npy", name);
  zip_int64_t index = zip_name_locate(f->zip, lua_tostring(L, -1), 0);
  lua_pop(L, 1);
  if (index < 0) nnc_lua_errorf(L, "%s: the archive has no array named %s", path, name);
  f->member = zip_fopen_index(f->zip, (zip_uint64_t)index, 0);
  if (!f->member) nnc_lua_errorf(L, "%s: cannot read it: %s", where, zip_strerror(f->zip));
  unsigned char magic[10];
  read_exact(L, f, where, magic, 8);
  if (memcmp(magic, "\x93NUMPY", 6)) nnc_lua_errorf(L, "%s: not an .npy array (bad magic)", where);
  int v1 = magic[6] == 1;
  size_t len = 0;
  read_exact(L, f, where, magic + 8, v1 ? 2 : 4);
  for (int b = v1 ? 1 : 3; b >= 0; b--) len = (len << 8) | magic[8 + b];
  if (len > MAX_HEADER) nnc_lua_errorf(L, "%s: header of %zu bytes is too long: corrupt file?", where, len);
  luaL_Buffer hb;
  char *header = luaL_buffinitsize(L, &hb, len + 1);
  read_exact(L, f, where, header, len);
  header[len] = 0;
  const npy_kind *kind = parse_descr(dict_value(header, "descr"));
  const char *order = dict_value(header, "fortran_order");
  int64_t shape[NNC_MAX_RANK];
  int rank = parse_shape(dict_value(header, "shape"), shape);
  if (!kind || !order || strncmp(order, "False", 5) || rank < 1)
    nnc_lua_errorf(L, "%s: unsupported array %s (nnc reads C-order arrays of rank 1 to %d of u1, i1, i4, i8 or f4)",
                   where, header, NNC_MAX_RANK);
  luaL_pushresultsize(&hb, len);
  lua_pop(L, 1);
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= shape[i];
  nnc_tensor *t = nnc_lua_newtensor(L, kind->dtype, rank, shape);
  unsigned char *raw = kind->dtype == NNC_U8 ? nnc_tensor_u8(t) : malloc((size_t)n * (size_t)kind->size + 1);
  if (!raw) nnc_lua_errorf(L, "%s: out of memory", where);
  if (raw != nnc_tensor_u8(t)) {
    /* The buffer is freed before any error can skip it. */
    size_t want = (size_t)n * (size_t)kind->size, got = 0;
    while (got < want) {
      zip_int64_t r = zip_fread(f->member, raw + got, want - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    if (got == want) convert(kind, raw, t, n);
    free(raw);
    if (got != want) nnc_lua_errorf(L, "%s: truncated or corrupt: expected %zu bytes of data, got %zu", where, want, got);
  } else {
    read_exact(L, f, where, raw, (size_t)n);
  }
  zip_fclose(f->member);
  f->member = NULL;
  return t;
}
#endif
