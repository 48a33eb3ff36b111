/* nnc check: a backend against the interpreter on one model. Both start
 * each step from the interpreter's weights and slots (the script's at the
 * first), on the same batches (the script's training data in row order, or
 * synthetic ones) and seed, so dropout draws the same masks. Each step's
 * differences are its own, and the largest are reported:
 *   loss       |loss_b - loss_interp| / |loss_interp|
 *   gradients  ||g_b - g_interp|| / ||g_interp|| over all the step's
 *              gradients together, naming the tensor with the most of it
 *   update     max|w_b - w| / max|w - w_before| per weight and optimizer
 *              slot (plus the float rounding of w), where w is the
 *              interpreter's optimizer step on b's own gradients
 *              (runtime/train/check_update.c says why not on its own)
 * The tolerance bounds the loss and update; gradients have their own, as
 * the backward pass makes discrete choices that rounding can flip: a ReLU
 * input that is zero up to rounding passes its gradient on one backend and
 * not the other, and so does a max-pool window whose top two values tie up
 * to rounding. With zero-initialised biases the first step has most of
 * them (models/cnn.lua on cpu: 2.2e-4 at step 1, under 1e-6 after).
 * The gradients are kept as outputs of the checked train graph, so its
 * memory plan keeps them alive where training's would reuse them.
 * The last line is `CHECK <backend> <steps> <loss> <gradients> <update>`.
 *
 * Default tolerances: 1e-4 for the loss and update and 1e-3 for the
 * gradients where every product is a float's; on TF32 tensor cores (cuda
 * and cuda-emu on sm_80 and newer, unless --precision fp32) an operand
 * keeps 11 significant bits, so a GEMM's result is off by about 1e-3 of
 * itself: 1e-2 for the loss and update, as PyTorch's TF32 tests allow, and
 * 1e-1 for the gradients, where that perturbation of every activation flips
 * far more ReLUs at zero and max-pool ties than float rounding does
 * (models/vgg_fashion.lua on cuda-emu: 2.8e-2 in its first Dense's kernel,
 * the loss within 1.1e-5). */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include <stdio.h>

#include "runtime/model.h"

typedef struct nnc_check_opts {
  const nnc_backend *backend;
  int steps;
  int64_t batch;
  double tolerance;      /* for the loss and update differences; < 0: the backend's (nnc_check_tolerances) */
  double grad_tolerance; /* for the gradient difference; < 0: the backend's */
  FILE *out;
  const struct nnc_dataset *data; /* the script's training data: batches in row order; NULL: synthetic batches */
} nnc_check_opts;

typedef struct nnc_check_result {
  double loss_diff, grad_diff, weight_diff;
  int worst_step;
  char worst_grad[256], worst_weight[256];
} nnc_check_result;

/* Runs the check on m's model (its weights, spec and seed are copied, not
 * changed). Fails, after printing the report, when a difference exceeds the
 * tolerance. */
/* The defaults above for backend b. */
void nnc_check_tolerances(const nnc_backend *b, const nnc_options *opts, double *tolerance, double *grad_tolerance);

int nnc_check(nnc_model *m, const nnc_graph *forward, const nnc_check_opts *o, nnc_check_result *r,
              nnc_status *st);

#endif
