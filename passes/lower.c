/* The --lower setting: which op kinds run as library calls on the GPU path.
 * To lower another op kind, add a row to `kinds` and teach
 * runtime/cuda/cuda_lib.c the call. */
#include "passes/lower.h"

#include <stdio.h>
#include <string.h>

#include "ir/op.h"
#include "passes/options.h"

/* An op kind the command line names, the ops it covers and the one library
 * that can compute them. */
typedef struct lower_kind {
  const char *name;
  nnc_op ops[3];
  int nops;
  nnc_lower_lib lib;
} lower_kind;

static const lower_kind kinds[] = {
    {"conv", {NNC_OP_CONV2D, NNC_OP_CONV2D_GRAD_INPUT, NNC_OP_CONV2D_GRAD_KERNEL}, 3, NNC_LOWER_CUDNN},
    {"matmul", {NNC_OP_MATMUL}, 1, NNC_LOWER_CUBLAS},
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))
_Static_assert(NKINDS == NNC_LOWER_KINDS, "NNC_LOWER_KINDS counts the rows of kinds");

static const char *const lib_names[] = {"nnc", "cublas", "cudnn", "nccl"};
/* The libraries --lower can name (NCCL is chosen by the op, not the user). */
#define NCHOICES 3

const char *nnc_lower_name(nnc_lower_lib lib) { return lib_names[lib]; }

/* One "kind=lib" part of the spec, [part, end). */
static int parse_part(const char *part, size_t len, nnc_lower_lib *next, nnc_status *st) {
  const char *eq = memchr(part, '=', len);
  size_t klen = eq ? (size_t)(eq - part) : len;
  int k = 0;
  while (k < NKINDS && !(strlen(kinds[k].name) == klen && !strncmp(kinds[k].name, part, klen))) k++;
  if (k == NKINDS)
    return nnc_fail(st, "--lower: unknown op kind '%.*s' (expected conv or matmul, as in conv=cudnn,matmul=cublas)",
                    (int)klen, part);
  if (!eq)
    return nnc_fail(st, "--lower: '%.*s' needs a library, as in %s=%s", (int)len, part, kinds[k].name,
                    lib_names[kinds[k].lib]);
  const char *lib = eq + 1;
  size_t llen = len - klen - 1;
  for (int l = 0; l < NCHOICES; l++)
    if (strlen(lib_names[l]) == llen && !strncmp(lib_names[l], lib, llen)) {
      if (l != NNC_LOWER_NNC && l != (int)kinds[k].lib)
        return nnc_fail(st, "--lower: %s cannot be lowered to %s (choose %s or nnc)", kinds[k].name, lib_names[l],
                        lib_names[kinds[k].lib]);
      next[k] = (nnc_lower_lib)l;
      return 0;
    }
  return nnc_fail(st, "--lower: unknown library '%.*s' for %s (choose %s or nnc)", (int)llen, lib, kinds[k].name,
                  lib_names[kinds[k].lib]);
}

int nnc_lower_parse(const char *spec, nnc_lower_lib setting[NNC_LOWER_KINDS], nnc_status *st) {
  nnc_lower_lib next[NKINDS];
  memcpy(next, setting, sizeof next);
  if (!*spec) return nnc_fail(st, "--lower needs KIND=LIB[,KIND=LIB], e.g. conv=cudnn,matmul=cublas");
  for (const char *p = spec;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (parse_part(p, len, next, st)) return -1;
    if (!comma) break;
    p = comma + 1;
  }
  memcpy(setting, next, sizeof next);
  return 0;
}

nnc_lower_lib nnc_lower_for_op(const nnc_options *o, nnc_op op) {
  for (int k = 0; k < NKINDS; k++)
    for (int i = 0; i < kinds[k].nops; i++)
      if (kinds[k].ops[i] == op) return o->lower[k];
  return NNC_LOWER_NNC;
}

/* cuDNN's padding is one number per axis for both sides: it computes the
 * node exactly when that pad gives the node's output size. */
static int symmetric_axis(int64_t in, int64_t k, int64_t out, int stride, nnc_pad pad) {
  if (in < 0 || out < 0) return 0;
  int64_t before = nnc_window_pad_before(in, k, stride, pad);
  return (in + 2 * before - k) / stride + 1 == out;
}

nnc_lower_lib nnc_lower_node(const nnc_options *o, const nnc_graph *g, int32_t id) {
  const nnc_node *n = &g->nodes[id];
  if (n->op == NNC_OP_ALLREDUCE) return NNC_LOWER_NCCL;
  nnc_lower_lib lib = nnc_lower_for_op(o, n->op);
  if (lib != NNC_LOWER_CUDNN) return lib;
  /* The input, kernel and output of the forward convolution, whichever of them this op computes. */
  const nnc_node *x = n->op == NNC_OP_CONV2D_GRAD_INPUT ? n : &g->nodes[n->src[0]];
  const nnc_node *y = n->op == NNC_OP_CONV2D ? n : &g->nodes[n->src[n->op == NNC_OP_CONV2D_GRAD_INPUT ? 0 : 1]];
  const nnc_node *w = n->op == NNC_OP_CONV2D_GRAD_KERNEL ? n : &g->nodes[n->src[1]];
  const nnc_attrs *a = &n->attrs;
  if (x->rank != 4 || y->rank != 4 || w->rank != 4) return NNC_LOWER_NNC;
  int ok = symmetric_axis(x->shape[1], w->shape[0], y->shape[1], a->stride[0], (nnc_pad)a->pad) &&
           symmetric_axis(x->shape[2], w->shape[1], y->shape[2], a->stride[1], (nnc_pad)a->pad);
  return ok ? lib : NNC_LOWER_NNC;
}
