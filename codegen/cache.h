/* The on-disk cache of compiled kernels, keyed by content: a hash of the
 * compiler's version, the options, the target and the full source, so any
 * change to any of them misses. Files are written under a temporary name
 * and renamed, so a reader never sees half a file. NNC_NOCACHE=1 turns the
 * cache off (nothing is read or written). */
#ifndef NNC_CODEGEN_CACHE_H
#define NNC_CODEGEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "passes/options.h"

/* A 128-bit content hash, fed piece by piece. */
typedef struct nnc_hasher {
  uint64_t a, b;
} nnc_hasher;

void nnc_hasher_init(nnc_hasher *h);
void nnc_hasher_add(nnc_hasher *h, const void *data, size_t size);
/* Adds a string and its terminator, so ("ab","c") and ("a","bc") differ. */
void nnc_hasher_str(nnc_hasher *h, const char *s);
/* 32 hex digits and a NUL. */
void nnc_hasher_hex(const nnc_hasher *h, char out[33]);

/* 0 under o->nocache ($NNC_NOCACHE set to anything but "0" or ""). */
int nnc_cache_enabled(const nnc_options *o);
/* The cache folder, created if needed: o->cache_dir ($NNC_CACHE_DIR), else
 * $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc. NULL if none can be made. */
const char *nnc_cache_dir(const nnc_options *o, char *buf, size_t size);
/* The whole of <cache>/<file> (malloc'd), or NULL if it is not there or
 * the cache is off. */
void *nnc_cache_read(const nnc_options *o, const char *file, size_t *size);
/* Stores data as <cache>/<file>; a cache that cannot be written is not an
 * error, so this reports nothing. */
void nnc_cache_write(const nnc_options *o, const char *file, const void *data, size_t size);

/* A folder for files nnc writes for people to read (failed kernels): the
 * cache folder, or the system's temporary folder ($TMPDIR, else /tmp). */
const char *nnc_scratch_dir(const nnc_options *o, char *buf, size_t size);

/* Writes text to path through a temporary name and a rename; -1 on failure. */
int nnc_write_file_atomic(const char *path, const void *data, size_t size);

#endif
