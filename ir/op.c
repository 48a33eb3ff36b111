/* The op table itself, built from ir/ops.def, and helpers its rows share. */
#include "ir/op.h"

#include <string.h>

const nnc_op_row nnc_ops[NNC_OP_COUNT] = {
#define X(ENUM, name, arity, attrs, flags) \
  [NNC_OP_##ENUM] = {#name, arity, attrs, flags, nnc_infer_##name, nnc_cost_##name},
#include "ir/ops.def"
#undef X
};

const nnc_pw_row nnc_pointwise[NNC_OP_COUNT] = {
#define ACTIVATION(ENUM, name, GRAD, flops, ...) \
  [NNC_OP_##ENUM] = {NNC_PW_ACTIVATION, 1, NNC_OP_##GRAD, flops, #__VA_ARGS__},
#define ACTIVATION_GRAD(ENUM, name, flops, ...) \
  [NNC_OP_##ENUM] = {NNC_PW_ACTIVATION_GRAD, 2, NNC_OP_COUNT, flops, #__VA_ARGS__},
#define POINTWISE(ENUM, name, operands, flops, ...) \
  [NNC_OP_##ENUM] = {NNC_PW_POINTWISE, operands, NNC_OP_COUNT, flops, #__VA_ARGS__},
#define RANDOM(ENUM, name, flops, ...) [NNC_OP_##ENUM] = {NNC_PW_RANDOM, 1, NNC_OP_COUNT, flops, #__VA_ARGS__},
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM
};

const char *const nnc_pw_functions[] = {"expf", "tanhf", "sqrtf", "expm1f", "fabsf", NULL};

const char *const *nnc_pw_names(nnc_pw_kind kind) {
  static const char *const activation[] = {"x", "alpha", NULL}, *const grad[] = {"y", "dy", "alpha", NULL},
                           *const pointwise[] = {"a", "b", "c", "s", "alpha", "eps", NULL},
                           *const random[] = {"x", "u", "rate", "scale", NULL}, *const none[] = {NULL};
  switch (kind) {
  case NNC_PW_ACTIVATION: return activation;
  case NNC_PW_ACTIVATION_GRAD: return grad;
  case NNC_PW_POINTWISE: return pointwise;
  case NNC_PW_RANDOM: return random;
  case NNC_PW_NONE: break;
  }
  return none;
}

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
