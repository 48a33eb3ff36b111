/* The op table itself, built from ir/ops.def, and helpers its rows share. */
#include "ir/op.h"

#include <string.h>

const nnc_op_row nnc_ops[NNC_OP_COUNT] = {
#define X(ENUM, name, arity, attrs, flags) \
  [NNC_OP_##ENUM] = {#name, arity, attrs, flags, nnc_infer_##name, nnc_cost_##name},
#include "ir/ops.def"
#undef X
};

nnc_op nnc_op_by_name(const char *name) {
  for (int op = 0; op < NNC_OP_COUNT; op++)
    if (strcmp(nnc_ops[op].name, name) == 0) return (nnc_op)op;
  return NNC_OP_COUNT;
}

const char *nnc_dtype_name(nnc_dtype t) {
  switch (t) {
  case NNC_F32: return "f32";
  case NNC_I32: return "i32";
  case NNC_U8: return "u8";
  }
  return "?";
}

size_t nnc_dtype_size(nnc_dtype t) { return t == NNC_U8 ? 1 : 4; }

/* Keras: valid gives floor((n-k)/s)+1, same gives ceil(n/s). */
int64_t nnc_window_out(int64_t in, int64_t window, int stride, nnc_pad pad) {
  if (in == NNC_DIM_ANY) return NNC_DIM_ANY;
  if (pad == NNC_PAD_SAME) return (in + stride - 1) / stride;
  if (in < window) return 0;
  return (in - window) / stride + 1;
}

nnc_window nnc_window_of(const nnc_node *in, const nnc_node *out, int64_t kh, int64_t kw, const nnc_attrs *a) {
  nnc_window w = {in->shape[0], in->shape[1], in->shape[2], in->shape[3], out->shape[1], out->shape[2], out->shape[3],
                  kh, kw, a->stride[0], a->stride[1], 0, 0};
  w.ph = nnc_window_pad_before(w.ih, kh, a->stride[0], (nnc_pad)a->pad);
  w.pw = nnc_window_pad_before(w.iw, kw, a->stride[1], (nnc_pad)a->pad);
  return w;
}

/* Keras (TensorFlow) splits `same` padding with the odd extra at the end. */
int64_t nnc_window_pad_before(int64_t in, int64_t window, int stride, nnc_pad pad) {
  if (pad != NNC_PAD_SAME) return 0;
  int64_t out = nnc_window_out(in, window, stride, pad);
  int64_t total = (out - 1) * stride + window - in;
  return total > 0 ? total / 2 : 0;
}
