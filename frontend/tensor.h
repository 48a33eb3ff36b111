/* Tensors as Lua userdata: typed, shaped, row-major data shared between views.
 * A slice of rows is a view on the same storage (no copy), so splitting
 * 60,000 images into train and validation costs nothing. */
#ifndef NNC_TENSOR_H
#define NNC_TENSOR_H

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "ir/types.h"

typedef struct nnc_storage {
  int refs;
  void *data;
} nnc_storage;

typedef struct nnc_tensor {
  nnc_dtype dtype;
  int rank;
  int64_t shape[NNC_MAX_RANK];
  nnc_storage *storage;
  size_t offset; /* in elements from the start of storage */
} nnc_tensor;

#define NNC_TENSOR_META "nnc.tensor"

/* Pushes a new zero-filled tensor and returns it. Raises a Lua error when the
 * shape is invalid or memory runs out. */
nnc_tensor *nnc_lua_newtensor(lua_State *L, nnc_dtype dtype, int rank, const int64_t *shape);
/* The tensor at stack index idx, or a Lua argument error (also for a tensor
 * already finalized, which a finalizer elsewhere can bring back). */
nnc_tensor *nnc_lua_checktensor(lua_State *L, int idx);
/* The tensor at idx, or NULL when it is not one (or was finalized). */
nnc_tensor *nnc_lua_totensor(lua_State *L, int idx);
int64_t nnc_tensor_numel(const nnc_tensor *t);
/* Elements per leading-axis row. */
int64_t nnc_tensor_row_size(const nnc_tensor *t);
static inline float *nnc_tensor_f32(const nnc_tensor *t) { return (float *)t->storage->data + t->offset; }
static inline int32_t *nnc_tensor_i32(const nnc_tensor *t) { return (int32_t *)t->storage->data + t->offset; }
static inline uint8_t *nnc_tensor_u8(const nnc_tensor *t) { return (uint8_t *)t->storage->data + t->offset; }
/* The first element as raw bytes, whatever the dtype. */
char *nnc_tensor_bytes(const nnc_tensor *t);
/* Element i (from the tensor's start) as a double, whatever the dtype. */
double nnc_tensor_get(const nnc_tensor *t, int64_t i);
/* "f32[60000,28,28,1]" */
const char *nnc_tensor_type_str(const nnc_tensor *t, char *buf, size_t size);
/* Enough for any nnc_tensor_type_str. */
#define NNC_TENSOR_TYPE_MAX 160

/* Pushes a view of base's storage (no copy) with the given shape, starting
 * `offset` elements into the storage. The caller keeps the view inside base. */
nnc_tensor *nnc_lua_pushview(lua_State *L, const nnc_tensor *base, int rank, const int64_t *shape,
                             size_t offset);
/* A tensor at idx, or a (nested) table of numbers at idx converted to a
 * tensor of `dtype` that replaces the table on the stack; anything else is
 * an error. A tensor argument keeps its own dtype. */
nnc_tensor *nnc_lua_checktensorlike(lua_State *L, int idx, nnc_dtype dtype);
/* The dtype named at idx ("f32"/"float32", "i32"/"int32", "u8"/"uint8"),
 * def when it is nil, or an error with the closest name. */
nnc_dtype nnc_lua_optdtype(lua_State *L, int idx, nnc_dtype def);
/* The value at idx as a message shows it (pushed on the stack): a string
 * quoted and called one, so "32" where 32 goes is told apart. */
const char *nnc_lua_show(lua_State *L, int idx);
/* Raises a Lua error whose message is formatted by printf rules (Lua's own
 * formatter lacks %lld and %zu) and prefixed with the calling script line. */
_Noreturn void nnc_lua_errorf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* lua_CFunctions behind the `data` module's constructors:
 * data.tensor(table [, dtype]) from nested tables of numbers,
 * data.zeros(shape [, dtype]), and data.concat(a, b, ...) / nn.concat, which
 * joins tensors along the first axis (same dtype, same trailing shape). */
int nnc_lua_tensor_from_table(lua_State *L);
int nnc_lua_tensor_zeros(lua_State *L);
int nnc_lua_tensor_concat(lua_State *L);

/* tensor_math.c: the arithmetic metamethods, and the methods astype,
 * argmax, abs, sum, mean, min and max. */
extern const luaL_Reg nnc_tensor_math_meta[];
extern const luaL_Reg nnc_tensor_math_methods[];
/* data.confusion_matrix(y_true, y_pred [, classes]). */
int nnc_lua_confusion_matrix(lua_State *L);

/* Registers the tensor metatable and its methods; called once per state. */
void nnc_lua_open_tensor(lua_State *L);
/* Pushes the `data` module table (IDX readers, datasets, to_categorical,
 * constructors); the caller names it. Registers the tensor metatable too. */
int nnc_lua_open_data(lua_State *L);

#endif
