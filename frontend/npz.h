/* Reading arrays out of numpy .npz archives (Keras's mnist.npz). */
#ifndef NNC_NPZ_H
#define NNC_NPZ_H

#include <lua.h>

#include "frontend/tensor.h"

typedef struct npz_file npz_file;

/* Pushes the open archive (a userdata that closes itself when collected)
 * and returns it; raises a Lua error naming path when it cannot. */
npz_file *nnc_npz_open(lua_State *L, const char *path);
/* Pushes array `name` ("x_train", read from x_train.npy) as a tensor: u1 as
 * u8, integers as i32, f4 as f32. Errors name the file and the array. */
nnc_tensor *nnc_npz_read(lua_State *L, npz_file *f, const char *path, const char *name);
/* Closes the archive at stack index idx now rather than at collection. */
void nnc_npz_close(lua_State *L, int idx);

#endif
