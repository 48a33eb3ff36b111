/* data.ImageDataGenerator and the iterators its flow() returns. */
#ifndef NNC_BIND_AUGMENT_H
#define NNC_BIND_AUGMENT_H

#include <lua.h>

#include "runtime/train/augment.h"

/* Adds ImageDataGenerator to the `data` table at data_idx and registers
 * the generator and iterator metatables. */
void nnc_lua_open_augment(lua_State *L, int data_idx);
/* Registers core.is_flow and core.fit_flow (fit on an iterator). */
void nnc_lua_open_flow_fit(lua_State *L, int core_index);

#endif
