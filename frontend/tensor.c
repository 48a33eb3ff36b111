/* Tensor userdata: reference-counted storage shared by views, the Lua
 * metamethods (fields, indexing, printing) and the constructors the `data`
 * module exposes; arithmetic, reductions and conversions are in
 * tensor_math.c.
 *
 * Every tensor is contiguous and row-major: views only ever take whole rows
 * or reinterpret the shape, so (storage, offset, shape) describes one. To add
 * a method, write it below and list it in tensor_methods and field_names. */
#include "frontend/tensor.h"

#include "frontend/bind.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/size.h"
#include "ir/status.h"

/* Storage header and data live in one block, so one free() releases both and
 * a failed allocation leaves nothing half made; 64 bytes keep the data at
 * malloc's own alignment. */
#define STORAGE_HEADER 64
_Static_assert(sizeof(nnc_storage) <= STORAGE_HEADER, "storage header too small");
/* tostring prints every value of tensors up to this many elements. */
#define PRINT_MAX 100

static const char *const field_names[] = {"shape", "dtype", "reshape", "slice", "rows", "astype", "argmax", "abs",
                                          "sum", "mean", "min", "max", NULL};

const char *nnc_lua_show(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_pushfstring(L, "string \"%s\"", lua_tostring(L, idx));
  return luaL_tolstring(L, idx, NULL);
}

_Noreturn void nnc_lua_errorf(lua_State *L, const char *fmt, ...) {
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  /* Cite the user's script line, not the nnc module that called in. */
  const char *file;
  int line;
  if (nnc_lua_script_where(L, &file, &line)) lua_pushfstring(L, "%s:%d: ", file, line);
  else luaL_where(L, 1);
  /* The message goes into a Lua buffer, so raising it leaks nothing. */
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, again);
  va_end(again);
  luaL_pushresultsize(&b, (size_t)n);
  lua_concat(L, 2);
  lua_error(L);
  abort(); /* lua_error does not return */
}

int64_t nnc_tensor_numel(const nnc_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->shape[i];
  return n;
}

int64_t nnc_tensor_row_size(const nnc_tensor *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++) n *= t->shape[i];
  return n;
}

/* snprintf that appends at `used` and tolerates a full buffer. */
static size_t append(char *buf, size_t size, size_t used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t size, size_t used, const char *fmt, ...) {
  if (used >= size) return used;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + used, size - used, fmt, ap);
  va_end(ap);
  return n < 0 ? used : used + (size_t)n;
}

static size_t append_shape(char *buf, size_t size, size_t used, int rank, const int64_t *shape) {
  used = append(buf, size, used, "[");
  for (int i = 0; i < rank; i++) used = append(buf, size, used, "%s%lld", i ? "," : "", (long long)shape[i]);
  return append(buf, size, used, "]");
}

const char *nnc_tensor_type_str(const nnc_tensor *t, char *buf, size_t size) {
  size_t used = append(buf, size, 0, "%s", nnc_dtype_name(t->dtype));
  append_shape(buf, size, used, t->rank, t->shape);
  return buf;
}

/* Element count of a shape, or a Lua error (ir/size.h's rule and cap). */
static int64_t checked_numel(lua_State *L, nnc_dtype dtype, int rank, const int64_t *shape) {
  if (rank < 1 || rank > NNC_MAX_RANK)
    nnc_lua_errorf(L, "tensor rank %d is outside 1..%d", rank, NNC_MAX_RANK);
  int64_t n;
  nnc_status st = {0};
  if (nnc_size_shape("tensor", rank, shape, (int64_t)nnc_dtype_size(dtype), &n, &st)) nnc_lua_errorf(L, "%s", st.msg);
  return n;
}

/* A zeroed userdata with the metatable: safe to collect at any point. */
static nnc_tensor *push_blank(lua_State *L) {
  nnc_tensor *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  if (luaL_getmetatable(L, NNC_TENSOR_META) == LUA_TNIL) {
    lua_pop(L, 1);
    nnc_lua_open_tensor(L);
    luaL_getmetatable(L, NNC_TENSOR_META);
  }
  lua_setmetatable(L, -2);
  return t;
}

nnc_tensor *nnc_lua_newtensor(lua_State *L, nnc_dtype dtype, int rank, const int64_t *shape) {
  int64_t n = checked_numel(L, dtype, rank, shape);
  nnc_tensor *t = push_blank(L);
  int64_t bytes = n * (int64_t)nnc_dtype_size(dtype);
  char type[NNC_TENSOR_TYPE_MAX], what[16 + NNC_TENSOR_TYPE_MAX];
  nnc_tensor shaped = {.dtype = dtype, .rank = rank};
  memcpy(shaped.shape, shape, (size_t)rank * sizeof *shape);
  snprintf(what, sizeof what, "tensor %s", nnc_tensor_type_str(&shaped, type, sizeof type));
  nnc_status st = {0};
  nnc_storage *s = nnc_size_calloc(what, STORAGE_HEADER + bytes, 1, &st);
  if (!s) nnc_lua_errorf(L, "%s", st.msg);
  s->refs = 1;
  s->data = (char *)s + STORAGE_HEADER;
  t->dtype = dtype;
  t->rank = rank;
  memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
  t->storage = s;
  return t;
}

nnc_tensor *nnc_lua_pushview(lua_State *L, const nnc_tensor *base, int rank, const int64_t *shape,
                             size_t offset) {
  checked_numel(L, base->dtype, rank, shape);
  nnc_tensor *t = push_blank(L);
  t->dtype = base->dtype;
  t->rank = rank;
  memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
  t->storage = base->storage;
  t->storage->refs++;
  t->offset = offset;
  return t;
}

nnc_tensor *nnc_lua_checktensor(lua_State *L, int idx) {
  nnc_tensor *t = luaL_checkudata(L, idx, NNC_TENSOR_META);
  if (!t->storage) luaL_argerror(L, idx, "tensor used after it was finalized");
  return t;
}

nnc_tensor *nnc_lua_totensor(lua_State *L, int idx) {
  nnc_tensor *t = luaL_testudata(L, idx, NNC_TENSOR_META);
  return t && t->storage ? t : NULL;
}

nnc_tensor *nnc_lua_checktensorlike(lua_State *L, int idx, nnc_dtype dtype) {
  idx = lua_absindex(L, idx);
  nnc_tensor *t = nnc_lua_totensor(L, idx);
  if (t) return t;
  if (lua_type(L, idx) != LUA_TTABLE) luaL_typeerror(L, idx, "tensor or table of numbers");
  lua_pushcfunction(L, nnc_lua_tensor_from_table);
  lua_pushvalue(L, idx);
  lua_pushstring(L, nnc_dtype_name(dtype));
  lua_call(L, 2, 1);
  lua_replace(L, idx);
  return nnc_lua_totensor(L, idx);
}

char *nnc_tensor_bytes(const nnc_tensor *t) {
  return (char *)t->storage->data + t->offset * nnc_dtype_size(t->dtype);
}

double nnc_tensor_get(const nnc_tensor *t, int64_t i) {
  switch (t->dtype) {
  case NNC_F32: return nnc_tensor_f32(t)[i];
  case NNC_I32: return nnc_tensor_i32(t)[i];
  case NNC_U8: return nnc_tensor_u8(t)[i];
  }
  return 0;
}

static float get_f32(const nnc_tensor *t, int64_t i) { return (float)nnc_tensor_get(t, i); }

/* Element i as an integer; 0 with *ok cleared when an f32 is not whole. */
static int64_t get_int(const nnc_tensor *t, int64_t i, int *ok) {
  *ok = 1;
  if (t->dtype != NNC_F32) return (int64_t)nnc_tensor_get(t, i);
  float v = nnc_tensor_f32(t)[i];
  if (!(v == floorf(v) && fabsf(v) < 9e15f)) {
    *ok = 0;
    return 0;
  }
  return (int64_t)v;
}

nnc_dtype nnc_lua_optdtype(lua_State *L, int idx, nnc_dtype def) {
  if (lua_isnoneornil(L, idx)) return def;
  const char *s = luaL_checkstring(L, idx);
  if (!strcmp(s, "f32") || !strcmp(s, "float32")) return NNC_F32;
  if (!strcmp(s, "i32") || !strcmp(s, "int32")) return NNC_I32;
  if (!strcmp(s, "u8") || !strcmp(s, "uint8")) return NNC_U8;
  static const char *const names[] = {"f32", "i32", "u8", "float32", "int32", "uint8", NULL};
  const char *near = nnc_closest_name(s, names);
  nnc_lua_errorf(L, "unknown dtype '%s'%s%s%s; tensors are \"f32\", \"i32\" or \"u8\"", s,
                 near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

/* Reads a shape table {2, 3, ...}; -1 entries only when allow_infer. */
static int read_shape(lua_State *L, int idx, int64_t *shape, int allow_infer, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n < 1 || n > NNC_MAX_RANK)
    nnc_lua_errorf(L, "%s: a shape has 1 to %d sizes, got %lld", what, NNC_MAX_RANK, (long long)n);
  for (int i = 0; i < n; i++) {
    int ok;
    lua_rawgeti(L, idx, i + 1);
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER)
      nnc_lua_errorf(L, "%s: shape entry %d is %s, expected a whole number", what, i + 1,
                     luaL_tolstring(L, -1, NULL));
    if (v < 0 && !(allow_infer && v == -1))
      nnc_lua_errorf(L, "%s: shape entry %d is %lld; sizes are >= 0%s", what, i + 1, (long long)v,
                     allow_infer ? " (or -1 for one inferred size)" : "");
    shape[i] = v;
    lua_pop(L, 1);
  }
  return (int)n;
}

/* ---- fields and methods ---- */

static int push_shape(lua_State *L, const nnc_tensor *t) {
  lua_createtable(L, t->rank, 0);
  for (int i = 0; i < t->rank; i++) {
    lua_pushinteger(L, (lua_Integer)t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* t[i]: a number for rank 1, a view of row i otherwise; nil past the ends,
 * as for tables, so ipairs(t) stops where it should. */
static int index_row(lua_State *L, const nnc_tensor *t, lua_Integer i) {
  if (i < 1 || i > t->shape[0]) return 0;
  if (t->rank == 1) {
    if (t->dtype == NNC_F32)
      lua_pushnumber(L, nnc_tensor_f32(t)[i - 1]);
    else
      lua_pushinteger(L, (lua_Integer)nnc_tensor_get(t, i - 1));
    return 1;
  }
  size_t offset = t->offset + (size_t)((i - 1) * nnc_tensor_row_size(t));
  nnc_lua_pushview(L, t, t->rank - 1, t->shape + 1, offset);
  return 1;
}

static int tensor_rows(lua_State *L);

static int tensor_index(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  int type = lua_type(L, 2);
  if (type == LUA_TNUMBER) {
    int whole;
    lua_Integer i = lua_tointegerx(L, 2, &whole);
    return whole ? index_row(L, t, i) : 0;
  }
  /* x[idx] with a tensor or table of row numbers, as numpy's x[idx]. */
  if (type == LUA_TTABLE || nnc_lua_totensor(L, 2)) {
    lua_settop(L, 2);
    return tensor_rows(L);
  }
  if (type != LUA_TSTRING)
    nnc_lua_errorf(L, "tensors are indexed by row number or field name, not by a %s", luaL_typename(L, 2));
  const char *key = lua_tostring(L, 2);
  if (!strcmp(key, "shape")) return push_shape(L, t);
  if (!strcmp(key, "dtype")) {
    lua_pushstring(L, nnc_dtype_name(t->dtype));
    return 1;
  }
  if (lua_getfield(L, lua_upvalueindex(1), key) != LUA_TNIL) return 1;
  /* A typo is far likelier than a deliberate probe for a missing field. */
  const char *near = nnc_closest_name(key, field_names);
  nnc_lua_errorf(L, "tensor has no field '%s'%s%s%s", key, near ? " (did you mean '" : "", near ? near : "",
                 near ? "'?)" : "");
}

static int tensor_newindex(lua_State *L) {
  nnc_lua_errorf(L, "tensors are read-only (assigning t[%s]); build a new one with data.tensor or arithmetic",
                 luaL_tolstring(L, 2, NULL));
}

static int tensor_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nnc_lua_checktensor(L, 1)->shape[0]);
  return 1;
}

static int tensor_gc(lua_State *L) {
  nnc_tensor *t = luaL_checkudata(L, 1, NNC_TENSOR_META);
  if (t->storage && --t->storage->refs == 0) free(t->storage);
  t->storage = NULL;
  return 0;
}

/* Resolves one -1 in `shape` so the counts match, or raises. */
static void infer_size(lua_State *L, const nnc_tensor *t, int rank, int64_t *shape) {
  char from[NNC_TENSOR_TYPE_MAX], to[NNC_TENSOR_TYPE_MAX];
  nnc_tensor_type_str(t, from, sizeof from);
  append_shape(to, sizeof to, 0, rank, shape);
  int64_t known = 1, numel = nnc_tensor_numel(t);
  int infer = -1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] != -1) {
      known *= shape[i];
    } else if (infer >= 0) {
      nnc_lua_errorf(L, "reshape: %s has more than one -1; only one size can be inferred", to);
    } else {
      infer = i;
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      nnc_lua_errorf(L, "reshape: cannot reshape %s (%lld elements) into %s: %lld is not a multiple of %lld",
                     from, (long long)numel, to, (long long)numel, (long long)known);
    shape[infer] = numel / known;
  } else if (known != numel) {
    nnc_lua_errorf(L, "reshape: cannot reshape %s (%lld elements) into %s (%lld elements)", from,
                   (long long)numel, to, (long long)known);
  }
}

/* t:reshape{a, b, ...} or t:reshape(a, b, ...). */
static int tensor_reshape(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  int64_t shape[NNC_MAX_RANK];
  if (lua_type(L, 2) == LUA_TNUMBER) {
    int n = lua_gettop(L) - 1;
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(L, i + 1);
      lua_rawseti(L, -2, i);
    }
    lua_replace(L, 2);
    lua_settop(L, 2);
  }
  int rank = read_shape(L, 2, shape, 1, "reshape");
  infer_size(L, t, rank, shape);
  nnc_lua_pushview(L, t, rank, shape, t->offset);
  return 1;
}

/* t:slice(first, last): rows first..last, inclusive and 1-based like
 * string.sub; negative numbers count from the end (-1 is the last row). */
static int tensor_slice(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  int64_t rows = t->shape[0];
  lua_Integer first_arg = luaL_checkinteger(L, 2), last_arg = luaL_optinteger(L, 3, rows);
  int64_t first = first_arg < 0 ? rows + first_arg + 1 : first_arg;
  int64_t last = last_arg < 0 ? rows + last_arg + 1 : last_arg;
  if (first < 1 || last > rows || first > last + 1) {
    char type[NNC_TENSOR_TYPE_MAX];
    nnc_lua_errorf(L, "slice(%lld, %lld) is out of bounds for %s: rows are 1..%lld (first <= last + 1)",
                   (long long)first_arg, (long long)last_arg, nnc_tensor_type_str(t, type, sizeof type),
                   (long long)rows);
  }
  int64_t shape[NNC_MAX_RANK];
  memcpy(shape, t->shape, sizeof shape);
  shape[0] = last - first + 1;
  nnc_lua_pushview(L, t, t->rank, shape, t->offset + (size_t)((first - 1) * nnc_tensor_row_size(t)));
  return 1;
}

/* t:rows(index): copies the rows named by a rank-1 tensor or table of
 * 1-based row numbers, in that order (shuffles, batches, subsets). */
static int tensor_rows(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  nnc_tensor *index = nnc_lua_checktensorlike(L, 2, NNC_I32);
  char type[NNC_TENSOR_TYPE_MAX];
  if (index->rank != 1)
    nnc_lua_errorf(L, "rows: the index must have rank 1, got %s",
                   nnc_tensor_type_str(index, type, sizeof type));
  int64_t n = index->shape[0], size = nnc_tensor_row_size(t);
  int64_t shape[NNC_MAX_RANK];
  memcpy(shape, t->shape, sizeof shape);
  shape[0] = n;
  nnc_tensor *out = nnc_lua_newtensor(L, t->dtype, t->rank, shape);
  for (int64_t k = 0; k < n; k++) {
    int whole;
    int64_t row = get_int(index, k, &whole);
    if (!whole || row < 1 || row > t->shape[0])
      nnc_lua_errorf(L, "rows: index entry %lld is %g, but %s has rows 1..%lld", (long long)k + 1,
                     (double)get_f32(index, k), nnc_tensor_type_str(t, type, sizeof type),
                     (long long)t->shape[0]);
    size_t bytes = (size_t)size * nnc_dtype_size(t->dtype);
    memcpy(nnc_tensor_bytes(out) + (size_t)k * bytes, nnc_tensor_bytes(t) + (size_t)(row - 1) * bytes, bytes);
  }
  return 1;
}

/* ---- printing ---- */

/* Whole numbers without a fraction, others in the fewest digits that read
 * back as the same float: 0.1 rather than 0.100000001. */
static void format_float(char *buf, size_t size, float v) {
  if (v == floorf(v) && fabsf(v) < 1e9f) {
    snprintf(buf, size, "%.0f", (double)v);
    return;
  }
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(buf, size, "%.*g", digits, (double)v);
    if (strtof(buf, NULL) == v) return;
  }
}

static void add_values(luaL_Buffer *b, const nnc_tensor *t, int axis, int64_t *pos) {
  luaL_addchar(b, '{');
  for (int64_t i = 0; i < t->shape[axis]; i++) {
    if (i) luaL_addstring(b, ", ");
    if (axis < t->rank - 1) {
      add_values(b, t, axis + 1, pos);
      continue;
    }
    char num[32];
    if (t->dtype == NNC_F32)
      format_float(num, sizeof num, nnc_tensor_f32(t)[(*pos)++]);
    else
      snprintf(num, sizeof num, "%lld", (long long)nnc_tensor_get(t, (*pos)++));
    luaL_addstring(b, num);
  }
  luaL_addchar(b, '}');
}

/* Whether the values print in full: at most PRINT_MAX items on every level
 * of braces, so that an empty tensor of shape [1000000000,0] does not
 * become a billion "{}". */
static int small_enough_to_print(const nnc_tensor *t) {
  int64_t items = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->shape[i] == 0) return 1;
    if (t->shape[i] > PRINT_MAX || (items *= t->shape[i]) > PRINT_MAX) return 0;
  }
  return 1;
}

/* "tensor(f32[2,3]) {{1, 2, 3}, {4, 5, 6}}": the values read back through
 * data.tensor. Big tensors print as "tensor(f32[60000,28,28,1]) ...". */
static int tensor_tostring(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  char type[NNC_TENSOR_TYPE_MAX];
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  luaL_addstring(&b, nnc_tensor_type_str(t, type, sizeof type));
  luaL_addstring(&b, ") ");
  if (!small_enough_to_print(t)) {
    luaL_addstring(&b, "...");
  } else {
    int64_t pos = 0;
    add_values(&b, t, 0, &pos);
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---- constructors ---- */

/* The shape of nested tables, read down the first entries; fill() checks
 * that every other entry agrees. */
static int table_shape(lua_State *L, int idx, int64_t *shape) {
  int rank = 0;
  lua_pushvalue(L, idx);
  for (;;) {
    if (rank == NNC_MAX_RANK) nnc_lua_errorf(L, "tensor tables nest deeper than %d levels", NNC_MAX_RANK);
    shape[rank++] = (int64_t)lua_rawlen(L, -1);
    if (shape[rank - 1] == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    if (lua_type(L, -1) != LUA_TTABLE) break;
  }
  lua_pop(L, 1);
  return rank;
}

static const char *entry_name(char *buf, size_t size, const int64_t *path, int depth) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < depth; i++) used = append(buf, size, used, "[%lld]", (long long)path[i]);
  return buf;
}

static void store_number(lua_State *L, nnc_tensor *t, int64_t pos, const int64_t *path, int depth) {
  char where[128];
  if (lua_type(L, -1) != LUA_TNUMBER)
    nnc_lua_errorf(L, "tensor entry %s is a %s, expected a number",
                   entry_name(where, sizeof where, path, depth), luaL_typename(L, -1));
  if (t->dtype == NNC_F32) {
    nnc_tensor_f32(t)[pos] = (float)lua_tonumber(L, -1);
    return;
  }
  int whole;
  lua_Integer v = lua_tointegerx(L, -1, &whole);
  int u8 = t->dtype == NNC_U8;
  if (!whole || v < (u8 ? 0 : INT32_MIN) || v > (u8 ? 255 : INT32_MAX))
    nnc_lua_errorf(L, "tensor entry %s is %s, not a%s %s integer", entry_name(where, sizeof where, path, depth),
                   luaL_tolstring(L, -1, NULL), u8 ? "" : "n", nnc_dtype_name(t->dtype));
  if (u8)
    nnc_tensor_u8(t)[pos] = (uint8_t)v;
  else
    nnc_tensor_i32(t)[pos] = (int32_t)v;
}

/* Copies the table at idx (axis `axis`) into t, in row-major order. */
static void fill(lua_State *L, int idx, nnc_tensor *t, int axis, int64_t *path, int64_t *pos) {
  char where[128];
  int64_t n = (int64_t)lua_rawlen(L, idx);
  if (n != t->shape[axis])
    nnc_lua_errorf(
        L, "tensor table is ragged: entry %s has %lld entries, the first one at that depth has %lld",
        axis ? entry_name(where, sizeof where, path, axis) : "{}", (long long)n, (long long)t->shape[axis]);
  for (int64_t i = 0; i < n; i++) {
    path[axis] = i + 1;
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    if (axis == t->rank - 1) {
      store_number(L, t, (*pos)++, path, axis + 1);
    } else if (lua_type(L, -1) == LUA_TTABLE) {
      fill(L, lua_gettop(L), t, axis + 1, path, pos);
    } else {
      nnc_lua_errorf(L, "tensor table is ragged: entry %s is a %s, expected a table of %lld numbers",
                     entry_name(where, sizeof where, path, axis + 1), luaL_typename(L, -1),
                     (long long)t->shape[axis + 1]);
    }
    lua_pop(L, 1);
  }
}

int nnc_lua_tensor_from_table(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  nnc_dtype dtype = nnc_lua_optdtype(L, 2, NNC_F32);
  int64_t shape[NNC_MAX_RANK], path[NNC_MAX_RANK], pos = 0;
  int rank = table_shape(L, 1, shape);
  nnc_tensor *t = nnc_lua_newtensor(L, dtype, rank, shape);
  fill(L, 1, t, 0, path, &pos);
  return 1;
}

int nnc_lua_tensor_zeros(lua_State *L) {
  int64_t shape[NNC_MAX_RANK];
  int rank = read_shape(L, 1, shape, 0, "zeros");
  nnc_lua_newtensor(L, nnc_lua_optdtype(L, 2, NNC_F32), rank, shape);
  return 1;
}

/* All arguments must agree with the first in dtype and trailing shape. */
static int64_t concat_rows(lua_State *L, int n) {
  nnc_tensor *first = nnc_lua_checktensor(L, 1);
  int64_t rows = first->shape[0];
  for (int i = 2; i <= n; i++) {
    nnc_tensor *t = nnc_lua_checktensor(L, i);
    int same = t->dtype == first->dtype && t->rank == first->rank;
    for (int d = 1; same && d < t->rank; d++) same = t->shape[d] == first->shape[d];
    if (!same) {
      char a[NNC_TENSOR_TYPE_MAX], b[NNC_TENSOR_TYPE_MAX];
      nnc_lua_errorf(
          L, "concat: argument %d is %s but argument 1 is %s; dtypes and all sizes but the first must match",
          i, nnc_tensor_type_str(t, b, sizeof b), nnc_tensor_type_str(first, a, sizeof a));
    }
    rows += t->shape[0];
  }
  return rows;
}

int nnc_lua_tensor_concat(lua_State *L) {
  int n = lua_gettop(L);
  if (n < 1) nnc_lua_errorf(L, "concat: expected at least one tensor");
  int64_t shape[NNC_MAX_RANK];
  nnc_tensor *first = nnc_lua_checktensor(L, 1);
  memcpy(shape, first->shape, sizeof shape);
  shape[0] = concat_rows(L, n);
  nnc_tensor *out = nnc_lua_newtensor(L, first->dtype, first->rank, shape);
  char *dst = nnc_tensor_bytes(out);
  for (int i = 1; i <= n; i++) {
    nnc_tensor *t = nnc_lua_totensor(L, i);
    size_t bytes = (size_t)nnc_tensor_numel(t) * nnc_dtype_size(t->dtype);
    memcpy(dst, nnc_tensor_bytes(t), bytes);
    dst += bytes;
  }
  return 1;
}

void nnc_lua_open_tensor(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__gc", tensor_gc},
      {"__len", tensor_len},
      {"__tostring", tensor_tostring},
      {"__newindex", tensor_newindex},
      {NULL, NULL},
  };
  static const luaL_Reg methods[] = {
      {"reshape", tensor_reshape}, {"slice", tensor_slice}, {"rows", tensor_rows}, {NULL, NULL}};
  if (!luaL_newmetatable(L, NNC_TENSOR_META)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, meta, 0);
  luaL_setfuncs(L, nnc_tensor_math_meta, 0);
  luaL_newlib(L, methods);
  luaL_setfuncs(L, nnc_tensor_math_methods, 0);
  lua_pushcclosure(L, tensor_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
