/* The data sets scripts load by name: MNIST and Fashion-MNIST, found on disk
 * or fetched once into nnc's cache, in Keras's load_data() form and in the
 * data.mnist() convenience form; and data.get_file, Keras's get_file. */
#ifndef NNC_DATASETS_H
#define NNC_DATASETS_H

#include <lua.h>

/* Pushes x (u8[N,rows,cols]) and y (i32[N]) read from an images and a
 * labels IDX file, or raises naming the file (data.c). */
void nnc_data_load_split(lua_State *L, const char *images, const char *labels);
/* Adds mnist, fashion_mnist and get_file to the `data` table at data_idx. */
void nnc_data_add_datasets(lua_State *L, int data_idx);
/* Pushes the `datasets` table: datasets.mnist.load_data() and
 * datasets.fashion_mnist.load_data(). */
int nnc_lua_open_datasets(lua_State *L);
/* Where the data sets are looked for after $NNC_DATA: "/usr/share/datasets"
 * unless set; NULL restores it. For tests and for packagers whose
 * distribution keeps data sets elsewhere. */
void nnc_data_set_system_dir(const char *dir);
/* nnc's cache folder, under which data sets go to datasets/<name>:
 * $XDG_CACHE_HOME/nnc (or ~/.cache/nnc) unless set; NULL restores it. For
 * tests. */
void nnc_data_set_cache_dir(const char *dir);

#endif
