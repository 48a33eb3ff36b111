/* Reference kernels for leaves, reshape, elementwise ops and softmax. */
#include <math.h>
#include <string.h>

#include "ir/op.h"
#include "ir/pointwise.h"
#include "runtime/interp/interp.h"
#include "runtime/rng.h"

/* Leaves are bound by the caller; the interpreter never runs these. */
void nnc_ref_input(const nnc_kernel_args *k) { (void)k; }
void nnc_ref_param(const nnc_kernel_args *k) { (void)k; }
void nnc_ref_state(const nnc_kernel_args *k) { (void)k; }

void nnc_ref_reshape(const nnc_kernel_args *k) {
  memcpy(k->out, k->in[0], (size_t)nnc_node_numel(k->n) * nnc_dtype_size(k->n->dtype));
}

/* The rows of ir/pointwise.def, element by element. An update's scalar s
 * is its last operand. */
#define ACTIVATION(ENUM, name, GRAD, flops, ...)                                       \
  void nnc_ref_##name(const nnc_kernel_args *k) {                                     \
    const float *x = k->in[0], alpha = k->n->attrs.alpha;                             \
    float *out = k->out;                                                               \
    for (int64_t i = 0, count = nnc_node_numel(k->n); i < count; i++) out[i] = nnc_pw_##name(x[i], alpha); \
  }
#define ACTIVATION_GRAD(ENUM, name, flops, ...)                                               \
  void nnc_ref_##name(const nnc_kernel_args *k) {                                     \
    const float *y = k->in[0], *dy = k->in[1], alpha = k->n->attrs.alpha;             \
    float *out = k->out;                                                               \
    for (int64_t i = 0, count = nnc_node_numel(k->n); i < count; i++) out[i] = nnc_pw_##name(y[i], dy[i], alpha); \
  }
#define POINTWISE(ENUM, name, operands, flops, ...)                                           \
  void nnc_ref_##name(const nnc_kernel_args *k) {                                     \
    const float *a = k->in[0], *b = k->in[operands > 1 ? 1 : 0], *c = k->in[operands > 2 ? 2 : 0]; \
    const float s = k->n->nsrc > operands ? *(const float *)k->in[k->n->nsrc - 1] : 0.0f; \
    const float alpha = k->n->attrs.alpha, eps = k->n->attrs.eps;                     \
    float *out = k->out;                                                               \
    for (int64_t i = 0, count = nnc_node_numel(k->n); i < count; i++)                  \
      out[i] = nnc_pw_##name(a[i], b[i], c[i], s, alpha, eps);                         \
  }
#define RANDOM(ENUM, name, ...) /* below */
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM

/* Softmax over the last axis, shifted by the row maximum so exp cannot overflow. */
void nnc_ref_softmax(const nnc_kernel_args *k) {
  const float *x = k->in[0];
  float *out = k->out;
  int64_t c = k->n->shape[k->n->rank - 1], rows = nnc_node_numel(k->n) / (c ? c : 1);
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float *orow = out + r * c;
    float top = xr[0];
    for (int64_t j = 1; j < c; j++) top = xr[j] > top ? xr[j] : top;
    double sum = 0;
    for (int64_t j = 0; j < c; j++) sum += (orow[j] = expf(xr[j] - top));
    for (int64_t j = 0; j < c; j++) orow[j] = (float)(orow[j] / sum);
  }
}

/* Inverted dropout: keep with probability 1-rate and scale by 1/(1-rate), so
 * inference is the identity. Element i draws nnc_dropout_counter + i on the
 * node's stream: the same mask on every backend and every rank count. */
void nnc_ref_dropout(const nnc_kernel_args *k) {
  const float *x = k->in[0];
  float *out = k->out;
  int64_t count = nnc_node_numel(k->n);
  float rate = k->n->attrs.rate;
  if (!k->opts || !k->opts->training || rate == 0.0f) {
    memcpy(out, x, (size_t)count * sizeof *out);
    return;
  }
  float scale = 1.0f / (1.0f - rate);
  uint64_t base = nnc_dropout_counter(k->opts, k->n);
  for (int64_t i = 0; i < count; i++) {
    float u = nnc_rng_uniform(k->opts->seed, (uint32_t)k->n->attrs.stream, base + (uint64_t)i);
    out[i] = nnc_pw_dropout(x[i], u, rate, scale);
  }
}
