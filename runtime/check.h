/* nnc check: a backend against the interpreter on one model. Both start
 * from the script's weights and seed, train the same number of steps on the
 * same batches (the script's training data in row order, or synthetic
 * ones), so dropout draws the same masks, and the largest
 * relative differences in the losses and in the weights are reported:
 *   loss    |loss_b - loss_interp| / |loss_interp|, the worst step
 *   weights max|w_b - w_interp| / max|w_interp| per tensor (optimizer
 *           slots included), the worst tensor
 * The last line is `CHECK <backend> <steps> <loss diff> <weight diff>`. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include <stdio.h>

#include "runtime/model.h"

typedef struct nnc_check_opts {
  const nnc_backend *backend;
  int steps;
  int64_t batch;
  double tolerance; /* for both differences */
  FILE *out;
  const struct nnc_dataset *data; /* the script's training data: batches in row order; NULL: synthetic batches */
} nnc_check_opts;

typedef struct nnc_check_result {
  double loss_diff, weight_diff;
  int worst_step;
  char worst_weight[256];
} nnc_check_result;

/* Runs the check on m's model (its weights, spec and seed are copied, not
 * changed). Fails, after printing the report, when a difference exceeds the
 * tolerance. */
int nnc_check(nnc_model *m, const nnc_graph *forward, const nnc_check_opts *o, nnc_check_result *r,
              nnc_status *st);

#endif
