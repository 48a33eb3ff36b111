/* Collectives are not kernels: on the GPU an allreduce is a NCCL step of
 * the program (nnc_lower_node gives NNC_LOWER_NCCL; runtime/cuda/cuda.c runs
 * it), so codegen never asks for its kernel. Were it asked, the program
 * would be wrong, and it says so rather than emit a copy. */
#include "codegen/cuda.h"

int nnc_cuda_emit_allreduce(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_fail(c, id, "an allreduce runs as a NCCL step of the program, not as a kernel");
}
