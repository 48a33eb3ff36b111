/* Tensors as Lua userdata: typed, shaped, row-major data shared between views.
 * A slice of rows is a view on the same storage (no copy), so splitting
 * 60,000 images into train and validation costs nothing. */
#ifndef NNC_TENSOR_H
#define NNC_TENSOR_H

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
/* The tensor at stack index idx, or a Lua argument error. */
nnc_tensor *nnc_lua_checktensor(lua_State *L, int idx);
/* The tensor at idx, or NULL when it is not one. */
nnc_tensor *nnc_lua_totensor(lua_State *L, int idx);
int64_t nnc_tensor_numel(const nnc_tensor *t);
/* Elements per leading-axis row. */
int64_t nnc_tensor_row_size(const nnc_tensor *t);
static inline float *nnc_tensor_f32(const nnc_tensor *t) { return (float *)t->storage->data + t->offset; }
static inline int32_t *nnc_tensor_i32(const nnc_tensor *t) { return (int32_t *)t->storage->data + t->offset; }
/* "f32[60000,28,28,1]" */
const char *nnc_tensor_type_str(const nnc_tensor *t, char *buf, size_t size);

/* Registers the tensor metatable and its methods; called once per state. */
void nnc_lua_open_tensor(lua_State *L);
/* Registers the `data` module (IDX readers, datasets, to_categorical). */
int nnc_lua_open_data(lua_State *L);

#endif
