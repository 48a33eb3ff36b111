/* Filling a table of entry points from a library opened with dlopen: how
 * nnc reaches NVRTC and the CUDA driver without linking them. */
#ifndef NNC_CODEGEN_DL_H
#define NNC_CODEGEN_DL_H

#include <stddef.h>

/* table is a struct of `count` function pointers in the order of names;
 * each is looked up in handle. Returns NULL, or the first name the library
 * lacks (the table is then incomplete and must not be used). */
const char *nnc_dl_fill(void *handle, const char *const *names, size_t count, void *table);

#endif
