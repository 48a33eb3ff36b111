/* Every file nnc writes (weights, models, logs, pictures, graphs) goes
 * through here: it is written under a temporary name beside its target,
 * flushed to disk and renamed into place, and the folder is flushed too, so
 * a crash or a kill at any moment leaves either the old file or the
 * complete new one, never half of one. A temporary a killed writer left
 * behind is removed by the next save to the same path. */
#ifndef NNC_ATOMIC_FILE_H
#define NNC_ATOMIC_FILE_H

#include <stdio.h>

#include "ir/status.h"

/* Fills the temporary: `fd` is open on it for writing, and `tmp` is its path
 * for libraries that open files by name (HDF5, cairo), which may truncate and
 * rewrite it. Returns 0, or -1 with a message in st (the path is added). */
typedef int (*nnc_file_writer)(void *ctx, int fd, const char *tmp, nnc_status *st);

/* Creates PATH.nnc-tmp-<pid>-<n> exclusively, runs `write`, fsyncs, renames
 * onto PATH and fsyncs PATH's folder; on any failure the temporary is
 * removed and PATH is untouched. A PATH that is a symlink stays one: the
 * file it points to is the one replaced (the temporary sits beside it). */
int nnc_write_file(const char *path, nnc_file_writer write, void *ctx, nnc_status *st);

/* The same for text built with stdio: `write` gets a FILE* on the temporary. */
typedef int (*nnc_text_writer)(void *ctx, FILE *f, nnc_status *st);
int nnc_write_text_file(const char *path, nnc_text_writer write, void *ctx, nnc_status *st);

/* Writes `len` bytes of `data` as PATH. */
int nnc_write_bytes_file(const char *path, const void *data, size_t len, nnc_status *st);

/* Makes the folder DIR and any missing parents, as mkdir -p does; 0, or -1
 * with "cannot make the folder X: reason" in st. */
int nnc_make_dirs(const char *dir, nnc_status *st);

#endif
