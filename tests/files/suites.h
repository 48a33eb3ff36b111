/* The files area: what nnc writes for a Keras user (HDF5 weights and
 * models, logs, checkpoints, pictures, graphs), each read back by an
 * independent reader. Each file defines `TCase *tcase_<name>(void)`; list it
 * here and main.c registers it. */
#ifndef NNC_TESTS_FILES_SUITES_H
#define NNC_TESTS_FILES_SUITES_H

#include <check.h>

#define NNC_FILES_TCASES(X) \
  X(h5_weights)                \
  X(h5_model)                  \
  X(h5_sizes)                  \
  X(plots)                     \
  X(file_callbacks)             \
  X(dot)                       \
  X(tensorboard)

#define X(name) TCase *tcase_##name(void);
NNC_FILES_TCASES(X)
#undef X

/* The test's scratch folder, where scripts run and write their files. */
const char *files_dir(void);
/* Runs nnc on a script written from `text`, in files_dir(); returns the exit status. */
int files_nnc(const char *text, char **out, char **err);
/* Runs a shell command in files_dir(), with $NNC and $PY set to nnc and
 * to check.py under Debian's python3. */
int files_sh(const char *cmd, char **out, char **err);
/* Runs tests/files/check.py with `args` in files_dir() under Debian's python3. */
int files_py(const char *args, char **out, char **err);
/* The same, failing the test unless they exit 0; returns stdout (free it). */
char *files_nnc_ok(const char *text);
char *files_py_ok(const char *args);

#endif
