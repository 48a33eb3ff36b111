/* The train step's batch-norm pass (passes/batch_norm.c): BatchNormalization
 * layers that train take their training form and update their moving
 * statistics. */
#ifndef NNC_BATCH_NORM_H
#define NNC_BATCH_NORM_H

#include "passes/pass.h"

extern const nnc_pass nnc_pass_batch_norm;

/* The row of bn_stats (1: biased, 2: with Bessel's correction) that Keras 2
 * averages into moving_variance for an input of this rank. */
int nnc_bn_moving_variance_row(int rank);

#endif
