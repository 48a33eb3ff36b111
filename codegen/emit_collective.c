/* Collectives. On one process the all-reduce is the identity, a copy; the
 * pass adds it only between ranks, where on a GPU it is to be a NCCL call
 * on the runtime's stream rather than generated code (runtime/model.c
 * refuses data-parallel runs on the GPU backends until that exists). */
#include "codegen/cuda.h"

int nnc_cuda_emit_allreduce(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_pointwise(c, id, "%s", nnc_cuda_val(c, id, 0));
}
