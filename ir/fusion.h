/* Fusion roles: for each row of the op table (ir/ops.def), a parallel row
 * saying how the op can take part in a fused kernel, whatever the backend:
 *
 *   anchor     its kernel writes its output tile by tile (a GEMM, a
 *              convolution or its input gradient, max_pool_grad), so
 *              members can be applied to each tile before it is stored
 *   epilogue   pointwise: element e of its result needs only element e of
 *              its `elementwise` operands (and any element of the others),
 *              so it can be applied to a value in a register
 *   prologue   elementwise: it can be computed where its one reader reads it
 *   reduction  an element of its result sums a row, a column or the whole
 *              operand (softmax, bias_grad, the losses, batch statistics)
 *   library    a library can compute it (cuBLAS, cuDNN, NCCL; passes/lower.h)
 *
 * What a given backend supports of these it declares itself
 * (nnc_backend_caps in passes/schedule.h); the schedule pass reads both. */
#ifndef NNC_IR_FUSION_H
#define NNC_IR_FUSION_H

#include "ir/types.h"

enum {
  NNC_ROLE_ANCHOR = 1 << 0,
  NNC_ROLE_EPILOGUE = 1 << 1,
  NNC_ROLE_PROLOGUE = 1 << 2,
  NNC_ROLE_REDUCTION = 1 << 3,
  NNC_ROLE_LIBRARY = 1 << 4,
};

typedef struct nnc_op_fusion {
  unsigned roles; /* NNC_ROLE_* */
  /* Epilogue ops: bit i set when operand i is read by index (a bias, a
   * channel's statistics, a step's scalar) rather than element by element,
   * so it cannot be a value computed in the same kernel. */
  unsigned indexed;
  /* Epilogue ops: the operand an epilogue chain carries, the value the op
   * transforms (x for bias_add, dy for the activation gradients). */
  int chain;
  /* Anchors that take a prologue: bit i set when the anchor can compute
   * operand i where it reads it (max_pool_grad's dy). */
  unsigned prologue_at;
} nnc_op_fusion;

extern const nnc_op_fusion nnc_op_fusions[NNC_OP_COUNT];

#endif
