/* Library lowerings (--lower conv=cudnn,matmul=cublas, or $NNC_LOWER): on
 * the GPU path, the GEMM-shaped ops of an op kind run as cuBLAS or cuDNN
 * calls instead of nnc's generated kernels. The setting is part of
 * nnc_options (passes/options.h), read by the fuse pass (a lowered op
 * anchors no group, since the library writes the plain result) and by
 * codegen (a lowered node becomes a library step of the program).
 *
 * Kinds: `conv` covers conv2d, conv2d_grad_input and conv2d_grad_kernel;
 * `matmul` covers matmul in all its forms (trans_a, trans_b: the train
 * graph's dW = x^T dy and dx = dy w^T). */
#ifndef NNC_PASSES_LOWER_H
#define NNC_PASSES_LOWER_H

#include "ir/graph.h"

typedef enum nnc_lower_lib {
  NNC_LOWER_NNC = 0, /* nnc's own generated kernels (the default) */
  NNC_LOWER_CUBLAS,
  NNC_LOWER_CUDNN,
  /* Not a --lower choice: on the GPU the all-reduce of data-parallel
   * training is always a NCCL call (runtime/cuda/nccl.h), never a kernel. */
  NNC_LOWER_NCCL,
} nnc_lower_lib;

/* The op kinds --lower names (conv, matmul). */
#define NNC_LOWER_KINDS 2

struct nnc_options;

/* Parses "conv=cudnn,matmul=cublas" (either part alone; `nnc` names the
 * default) into setting, one library per kind; the kinds the spec does not
 * name keep theirs. On error setting is unchanged and the message names the
 * bad part and the valid choices. */
int nnc_lower_parse(const char *spec, nnc_lower_lib setting[NNC_LOWER_KINDS], nnc_status *st);
/* The library op's kind is lowered to under o. */
nnc_lower_lib nnc_lower_for_op(const struct nnc_options *o, nnc_op op);
const char *nnc_lower_name(nnc_lower_lib lib);

/* How node id of g runs under o: the library its kind is lowered to, when the
 * library can compute it exactly (cuDNN pads symmetrically, so a "same"
 * convolution whose padding is lopsided keeps nnc's kernel), else
 * NNC_LOWER_NNC. Spatial sizes must be known; the batch may not be. An
 * allreduce is NNC_LOWER_NCCL. */
nnc_lower_lib nnc_lower_node(const struct nnc_options *o, const nnc_graph *g, int32_t id);

#endif
