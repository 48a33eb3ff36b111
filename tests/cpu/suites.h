/* The cpu area: the CPU backend against the interpreter. Each file defines
 * one or more `TCase *tcase_<name>(void)`; list each here, and main.c
 * registers it. The helpers below are shared by the files (helpers.c). */
#ifndef NNC_TESTS_CPU_SUITES_H
#define NNC_TESTS_CPU_SUITES_H

#include <check.h>

#include "runtime/backend.h"
#include "runtime/model.h"

#define NNC_CPU_TCASES(X) \
  X(cpu_ops)              \
  X(cpu_threads)          \
  X(cpu_groups)           \
  X(cpu_conv_choice)      \
  X(cpu_train)            \
  X(cpu_arena)            \
  X(cpu_cli)

#define X(name) TCase *tcase_##name(void);
NNC_CPU_TCASES(X)
#undef X

/* Parses "f32[2,7,5,3]" (or "i32[5]", "f32[]") into a leaf spec. */
void cputest_parse_type(const char *text, nnc_node_spec *spec);
/* Adds a leaf of that type, named name; fails the test on an error. */
int32_t cputest_leaf(nnc_graph *g, nnc_op op, const char *name, const char *type);
/* Adds op on src; fails the test on an error. */
int32_t cputest_op(nnc_graph *g, nnc_op op, const int32_t *src, int nsrc, const nnc_attrs *attrs);

/* Data for every leaf of g, from a fixed seed: f32 uniform in [-1, 1), or
 * in [0.05, 1.05) for leaves whose bit is set in `positive`; scalars are
 * 0.01 (learning rates); i32 values are class indices below `classes`.
 * Free with cputest_leaves_free. */
void **cputest_leaves(const nnc_graph *g, unsigned positive, int classes);
void cputest_leaves_free(const nnc_graph *g, void **leaves);

/* Prepares g on the backend and runs it once; fails the test on an error. */
nnc_exec *cputest_run(const nnc_backend *b, const nnc_graph *g, void **leaves, const nnc_run_opts *opts);

/* A model of g on b that trains with opt on sparse cross-entropy (model
 * seed `seed`), each param uniform in [-scale, scale) from `weight_seed`. */
void cputest_start_model(nnc_model *m, const nnc_backend *b, const nnc_graph *g, const nnc_optimizer *opt,
                         uint64_t seed, uint64_t weight_seed, float scale);

/* Fails unless |got - want| <= tol * (|want| + 1) everywhere (NaN and
 * infinities must match), naming what and the first bad index. */
void cputest_expect_close(const char *what, const float *got, const float *want, int64_t count, double tol);

#endif
