/* Where a step's first value that is not finite (NaN, infinity) came from.
 * Keras trains on when the loss becomes nan and so does nnc, but it says
 * once per fit where the value began: the step runs again on the reference
 * interpreter, from the same batch and the weights the step started from,
 * and the first node whose value is not finite is named by its op, layer
 * and script line, with the operand (the batch's x or y, or a weight) that
 * already held such a value. */
#ifndef NNC_NAN_TRACE_H
#define NNC_NAN_TRACE_H

#include "runtime/model.h"

/* Called by nnc_model_run after c ran with opts and before the step's
 * updates reach the weights (c->leaves still hold what the step read).
 * found: the first node the backend saw become not finite under
 * NNC_DEBUG=nan, or -1. When the loss is not finite or found >= 0, warns on
 * stderr, once until m->nan_warned is cleared. */
void nnc_nan_trace(nnc_model *m, nnc_compiled *c, const nnc_run_opts *opts, int32_t found);

#endif
