/* What generated CUDA can run in one kernel (passes/schedule.h): any
 * kernel applies epilogue members at its stores (nnc_cuda_store), a member
 * being any op with an expression per element (its emitter's
 * nnc_cuda_pointwise); an anchor that reads an operand through
 * nnc_cuda_load computes an elementwise prologue there. A group whose
 * members do not all join runs as several kernels, and --lower sends nodes
 * to cuBLAS and cuDNN. */
#include "codegen/cuda.h"
#include "ir/fusion.h"
#include "passes/schedule.h"

static unsigned cuda_op_caps(nnc_op op) {
  const nnc_op_fusion *f = &nnc_op_fusions[op];
  unsigned caps = (nnc_ops[op].flags & NNC_OPF_LEAF) ? 0u : NNC_CAN_ANCHOR;
  if (f->roles & NNC_ROLE_EPILOGUE) caps |= NNC_CAN_EPILOGUE;
  if ((f->roles & NNC_ROLE_EPILOGUE) && (nnc_ops[op].flags & NNC_OPF_ELEMENTWISE)) caps |= NNC_CAN_PROLOGUE;
  if (f->prologue_at) caps |= NNC_CAN_TAKE_PROLOGUE;
  return caps;
}

const nnc_backend_caps nnc_cuda_caps = {"cuda", NNC_CAPS_SPLIT | NNC_CAPS_LIBRARY, cuda_op_caps};
