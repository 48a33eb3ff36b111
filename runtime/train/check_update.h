/* The interpreter's optimizer step on another backend's gradients (see
 * runtime/train/check_update.c for why nnc check needs it). */
#ifndef NNC_CHECK_UPDATE_H
#define NNC_CHECK_UPDATE_H

#include "runtime/model.h"

/* One train step a backend has just run, compiled with keep_grads. */
typedef struct nnc_check_step {
  const nnc_graph *train; /* its graph, with "grad:W" outputs */
  const nnc_backend *backend;
  nnc_exec *exec;
  const nnc_train_spec *spec;
  int64_t step;                /* 1-based: the step Adam's lr_t is for */
  const nnc_weights *before;   /* weights and slots the step started from */
} nnc_check_step;

/* Fills *after (a fresh set: free with nnc_weights_free) with the weights
 * and slots the interpreter's optimizer makes from `before` and the
 * backend's gradients. */
int nnc_check_reference_update(const nnc_check_step *s, nnc_weights *after, nnc_status *st);

#endif
