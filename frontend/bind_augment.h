/* data.ImageDataGenerator and the iterators its flow() returns. */
#ifndef NNC_BIND_AUGMENT_H
#define NNC_BIND_AUGMENT_H

#include <lua.h>

#include "runtime/augment.h"

/* Adds ImageDataGenerator to the `data` table at data_idx and registers
 * the generator and iterator metatables. */
void nnc_lua_open_augment(lua_State *L, int data_idx);
/* The batches behind the flow() iterator at idx, or NULL when it is not one. */
const nnc_image_source *nnc_lua_toimagesource(lua_State *L, int idx);

#endif
