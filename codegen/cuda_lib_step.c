/* Library steps: a node that --lower sends to cuBLAS or cuDNN
 * (passes/lower.h) becomes a step of the program that names its buffers and
 * the calls, instead of a kernel. runtime/cuda/cuda_lib.c makes the calls; here
 * is what they compute, shared with the text --dump-kernels writes.
 *
 * cuBLAS is column-major: a row-major matrix is its transpose, so the
 * row-major out = op(A) op(B) is computed as the column-major
 * out^T = op(B)^T op(A)^T, i.e. sgemm(op_b, op_a, n, m, k, B, A).
 *
 * cuDNN's NHWC filters are KRSC ([out, kh, kw, in]) where nnc's kernels are
 * HWIO ([kh, kw, in, out], Keras's layout, kept so weights export as they
 * are): a convolution step first transposes the kernel into KRSC scratch
 * (cublasSgeam), and the kernel gradient is computed into KRSC scratch and
 * transposed back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "ir/op.h"

void nnc_cuda_lib_call_of(const nnc_graph *g, int32_t id, nnc_lower_lib lib, nnc_cuda_lib_call *call) {
  const nnc_node *n = &g->nodes[id], *a = &g->nodes[n->src[0]], *b = &g->nodes[n->src[1]];
  memset(call, 0, sizeof *call);
  call->lib = lib;
  call->op = n->op;
  if (call->lib == NNC_LOWER_NCCL) {
    call->m = nnc_node_numel(n);
    return;
  }
  if (n->op == NNC_OP_MATMUL) {
    call->trans_a = n->attrs.trans_a;
    call->trans_b = n->attrs.trans_b;
    call->n = n->shape[n->rank - 1];
    call->m = call->n ? nnc_node_numel(n) / call->n : 0;
    call->k = call->trans_b ? b->shape[1] : b->shape[0];
    call->lda = a->shape[a->rank - 1];
    call->ldb = b->shape[1];
    return;
  }
  const nnc_node *x = n->op == NNC_OP_CONV2D_GRAD_INPUT ? n : a;
  const nnc_node *y = n->op == NNC_OP_CONV2D ? n : n->op == NNC_OP_CONV2D_GRAD_INPUT ? a : b;
  const nnc_node *w = n->op == NNC_OP_CONV2D_GRAD_KERNEL ? n : b;
  call->q = nnc_window_of(x, y, w->shape[0], w->shape[1], &n->attrs);
}

static const char *op_name(int trans) { return trans ? "CUBLAS_OP_T" : "CUBLAS_OP_N"; }

static void describe_gemm(nnc_strbuf *t, const nnc_cuda_lib_call *c, const nnc_node *n, int32_t id) {
  nnc_strbuf_appendf(t,
                     " * 1 call on the stream (column-major, so out^T = op(B)^T op(A)^T):\n"
                     " *   cublasSgemm_v2(%s, %s, m=%lld, n=%lld, k=%lld, alpha=1, B=b%d ld=%lld, A=b%d ld=%lld,\n"
                     " *                  beta=0, C=b%d ld=%lld)\n",
                     op_name(c->trans_b), op_name(c->trans_a), c->n, c->m, c->k, (int)n->src[1], c->ldb, (int)n->src[0],
                     c->lda, (int)id, c->n);
}

/* The cuDNN entry point and fixed algorithm of each convolution op (see
 * runtime/cuda/cuda_lib.c for why these algorithms). */
static const char *conv_call(nnc_op op) {
  return op == NNC_OP_CONV2D              ? "cudnnConvolutionForward, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM"
         : op == NNC_OP_CONV2D_GRAD_INPUT ? "cudnnConvolutionBackwardData, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1"
                                          : "cudnnConvolutionBackwardFilter, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1";
}

static void describe_conv(nnc_strbuf *t, const nnc_cuda_lib_call *c, const nnc_node *n, int32_t id) {
  const nnc_window *q = &c->q;
  char shapes[256];
  snprintf(shapes, sizeof shapes,
           "x [%lld,%lld,%lld,%lld] NHWC, filter [%lld,%lld,%lld,%lld] KRSC, y [%lld,%lld,%lld,%lld] NHWC", q->batch,
           q->ih, q->iw, q->ic, q->oc, q->kh, q->kw, q->ic, q->batch, q->oh, q->ow, q->oc);
  nnc_strbuf_append(t, " * 2 calls on the stream:\n");
  if (c->op != NNC_OP_CONV2D_GRAD_KERNEL)
    nnc_strbuf_appendf(t, " *   cublasSgeam: kernel b%d HWIO -> KRSC scratch ([%lld x %lld] transposed)\n",
                       (int)n->src[1], q->kh * q->kw * q->ic, q->oc);
  char out[64];
  if (c->op == NNC_OP_CONV2D_GRAD_KERNEL)
    snprintf(out, sizeof out, "the filter gradient to KRSC scratch");
  else
    snprintf(out, sizeof out, "b%d", (int)id);
  nnc_strbuf_appendf(t,
                     " *   %s,\n"
                     " *     CUDNN_CROSS_CORRELATION, float, pad [%lld,%lld], stride [%lld,%lld], dilation [1,1]:\n"
                     " *     %s;\n"
                     " *     alpha=1, beta=0, writes %s\n",
                     conv_call(c->op), q->ph, q->pw, q->sh, q->sw, shapes, out);
  if (c->op == NNC_OP_CONV2D_GRAD_KERNEL)
    nnc_strbuf_appendf(t, " *   cublasSgeam: KRSC scratch -> b%d HWIO ([%lld x %lld] transposed)\n", (int)id, q->oc,
                       q->kh * q->kw * q->ic);
}

static void describe_allreduce(nnc_strbuf *t, const nnc_cuda_lib_call *c, const nnc_node *n, int32_t id) {
  nnc_strbuf_appendf(t,
                     " * 1 call on the stream, waited for at the bucket's last member:\n"
                     " *   ncclAllReduce(b%d, b%d, count=%lld, ncclFloat32, pre-multiplied sum by this rank's share of\n"
                     " *                 the batch, the run's communicator)\n",
                     (int)n->src[0], (int)id, c->m);
}

int nnc_cuda_lib_step(const nnc_graph *g, uint64_t hash, int32_t id, nnc_lower_lib lib, int tf32, nnc_cuda_kernel *k,
                      nnc_status *st) {
  const nnc_node *n = &g->nodes[id];
  nnc_cuda_lib_call c;
  nnc_cuda_lib_call_of(g, id, lib, &c);
  for (int i = 0; i < n->nsrc; i++)
    if (g->nodes[n->src[i]].dtype != NNC_F32) {
      char where[256];
      return nnc_fail(st, "CUDA codegen: %s: %s takes f32 operands only", nnc_node_where(g, id, where, sizeof where),
                      nnc_lower_name(c.lib));
    }
  memset(k, 0, sizeof *k);
  nnc_strbuf name, text;
  nnc_strbuf_init(&name);
  nnc_strbuf_init(&text);
  nnc_strbuf_appendf(&name, "nnc_%d_%s_%s", (int)id, nnc_ops[n->op].name, nnc_lower_name(c.lib));
  char type[128], where[256];
  int nccl = c.lib == NNC_LOWER_NCCL;
  nnc_strbuf_appendf(&text, "/* generated by nnc: graph %016llx, library step %s%s\n", (unsigned long long)hash,
                     nnc_strbuf_str(&name), nccl ? "" : " (--lower)");
  char operands[64];
  snprintf(operands, sizeof operands, nccl ? "%%%d" : "%%%d, %%%d", (int)n->src[0], (int)n->src[nccl ? 0 : 1]);
  nnc_strbuf_appendf(&text, " *   %%%d = %s(%s)%s%s : %s  %s\n", (int)id, nnc_ops[n->op].name, operands,
                     c.trans_a ? " trans_a" : "", c.trans_b ? " trans_b" : "", nnc_type_str(n, type, sizeof type),
                     nnc_node_where(g, id, where, sizeof where));
  if (nccl)
    describe_allreduce(&text, &c, n, id);
  else if (c.lib == NNC_LOWER_CUBLAS)
    describe_gemm(&text, &c, n, id);
  else
    describe_conv(&text, &c, n, id);
  if (!nccl)
    nnc_strbuf_appendf(&text, " * math: %s\n",
                       tf32 ? (c.lib == NNC_LOWER_CUBLAS ? "CUBLAS_TF32_TENSOR_OP_MATH (TF32 tensor cores)"
                                                         : "CUDNN_TENSOR_OP_MATH (TF32 tensor cores)")
                       : c.lib == NNC_LOWER_CUBLAS ? "CUBLAS_DEFAULT_MATH (float)"
                                                   : "CUDNN_FMA_MATH (float)");
  nnc_strbuf_append(&text, " */\n");
  k->name = nnc_strbuf_take(&name);
  k->call = nnc_strbuf_take(&text);
  k->lib = c.lib;
  k->tf32 = tf32;
  k->launches = c.lib == NNC_LOWER_CUDNN ? 2 : 1;
  k->nargs = nccl ? 2 : 3;
  k->args[0] = (nnc_cuda_arg){NNC_CUDA_ARG_OUT, id};
  k->args[1] = (nnc_cuda_arg){NNC_CUDA_ARG_IN, n->src[0]};
  if (!nccl) k->args[2] = (nnc_cuda_arg){NNC_CUDA_ARG_IN, n->src[1]};
  k->nnodes = 1;
  k->nodes[0] = id;
  return 0;
}
