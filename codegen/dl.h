/* Filling a table of entry points from a library opened with dlopen: how
 * nnc reaches NVRTC, the CUDA driver, cuBLAS and cuDNN without linking them;
 * and finding those libraries where CUDA installs put them. */
#ifndef NNC_CODEGEN_DL_H
#define NNC_CODEGEN_DL_H

#include <stddef.h>

#include "passes/options.h"

/* table is a struct of `count` function pointers in the order of names;
 * each is looked up in handle. Returns NULL, or the first name the library
 * lacks (the table is then incomplete and must not be used). */
const char *nnc_dl_fill(void *handle, const char *const *names, size_t count, void *table);

/* Opens the first of `files` (sonames, most wanted first) that loads, from
 * the usual places in this order: the loader's path (LD_LIBRARY_PATH, the
 * loader cache); $CUDA_HOME, $CUDA_PATH (o->cuda_home, o->cuda_path) and
 * /usr/local/cuda, each's lib64
 * and targets/x86_64-linux/lib; the lib folders of NVIDIA's pip wheels
 * (site-packages/nvidia/.../lib under $VIRTUAL_ENV, $CONDA_PREFIX,
 * ~/.local and the system's Python folders) and $CONDA_PREFIX/lib. Before a
 * file found in a folder, each of `companions` in that folder is loaded, so
 * that the libraries it needs by soname (cuBLAS's cublasLt, cuDNN's parts)
 * are found there too. NULL with `tried` saying where it looked. */
void *nnc_dl_open_cuda(const nnc_options *o, const char *const *files, size_t nfiles, const char *const *companions,
                       size_t ncompanions, char *tried, size_t size);

#endif
