/* The checkpoint area's test cases. Each file in tests/checkpoint/ defines
 * functions `TCase *tcase_<name>(void)`; list each here, one line per TCase,
 * and main.c declares and registers it. */
#ifndef NNC_TESTS_CHECKPOINT_SUITES_H
#define NNC_TESTS_CHECKPOINT_SUITES_H

#include <check.h>

#define NNC_CHECKPOINT_TCASES(X) \
  X(safetensors_files)           \
  X(safetensors_header_errors)   \
  X(safetensors_layout_errors)   \
  X(safetensors_model_errors)    \
  X(safetensors_save_errors)

#define X(name) TCase *tcase_##name(void);
NNC_CHECKPOINT_TCASES(X)
#undef X

#endif
