/* The op table as data: one nnc_op_row per row of ir/ops.def. */
#ifndef NNC_OP_H
#define NNC_OP_H

#include "ir/graph.h"

typedef int nnc_infer_fn(const nnc_graph *g, nnc_node *n, nnc_status *st);
typedef void nnc_cost_fn(const nnc_graph *g, const nnc_node *n, nnc_cost *cost);

typedef struct nnc_op_row {
  const char *name;
  int arity;
  unsigned attrs; /* NNC_A_* */
  unsigned flags; /* NNC_OPF_* */
  nnc_infer_fn *infer;
  nnc_cost_fn *cost;
} nnc_op_row;

extern const nnc_op_row nnc_ops[NNC_OP_COUNT];

/* Whether op is a weight leaf: a trainable param or a state (a weight no
 * gradient reaches, as BatchNormalization's moving statistics). Both are
 * bound to the model's weights, saved and loaded. */
static inline int nnc_op_is_weight(nnc_op op) { return op == NNC_OP_PARAM || op == NNC_OP_STATE; }

/* NNC_OP_COUNT when no op has this name. */
nnc_op nnc_op_by_name(const char *name);

/* Declarations of every row's functions. */
#define X(ENUM, name, arity, attrs, flags) \
  nnc_infer_fn nnc_infer_##name;           \
  nnc_cost_fn nnc_cost_##name;
#include "ir/ops.def"
#undef X

/* The pointwise ops' math (ir/pointwise.def), one row per op that has it. */
typedef enum nnc_pw_kind {
  NNC_PW_NONE,            /* not pointwise, or no expression: a test failure for an elementwise row */
  NNC_PW_ACTIVATION,      /* y = expr(x, alpha), fusable as an epilogue */
  NNC_PW_ACTIVATION_GRAD, /* dx = expr(y, dy, alpha), fusable as an epilogue reading dy */
  NNC_PW_POINTWISE,       /* expr(a, b, c, s, alpha, eps) */
  NNC_PW_RANDOM,          /* expr(x, u, rate, scale): dropout */
} nnc_pw_kind;

typedef struct nnc_pw_row {
  nnc_pw_kind kind;
  int operands;     /* operands read element for element (the rest: the step's scalar s) */
  nnc_op grad;      /* activations: the op of their gradient */
  double flops;     /* per element, for the cost */
  const char *expr; /* the expression as written, for the CUDA emitter */
} nnc_pw_row;

extern const nnc_pw_row nnc_pointwise[NNC_OP_COUNT];

/* The functions an expression may call: C's and CUDA's float math. */
extern const char *const nnc_pw_functions[];

/* The names a row of this kind binds, NULL-terminated. */
const char *const *nnc_pw_names(nnc_pw_kind kind);

/* Shape inference and cost of every row of ir/pointwise.def, by its kind:
 * each row's nnc_infer_<name> and nnc_cost_<name> are these. */
int nnc_infer_pointwise(const nnc_graph *g, nnc_node *n, nnc_status *st);
void nnc_cost_pointwise(const nnc_graph *g, const nnc_node *n, nnc_cost *c);
/* The (y, dy) rule of the activation gradients, which softmax_grad shares. */
int nnc_infer_y_dy(const nnc_graph *g, nnc_node *n, nnc_status *st);

/* Shared by the infer functions: fail with the node's place and a message. */
int nnc_infer_fail(const nnc_graph *g, const nnc_node *n, nnc_status *st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Output size of a window op along one axis (Keras's same/valid rules). */
int64_t nnc_window_out(int64_t in, int64_t window, int stride, nnc_pad pad);
/* Padding before the first element for `same` (the odd extra goes after). */
int64_t nnc_window_pad_before(int64_t in, int64_t window, int stride, nnc_pad pad);

/* The geometry of a convolution or pooling window, NHWC in and out, for
 * every kernel that walks one (reference, cpu, generated CUDA). long long,
 * so that the CUDA emitters print the fields with %lld as they are. */
typedef struct nnc_window {
  long long batch, ih, iw, ic, oh, ow, oc;
  long long kh, kw, sh, sw, ph, pw;
} nnc_window;

/* `in` is the forward op's input and `out` its output; kh x kw is the
 * kernel or pooling window; a holds stride and padding. */
nnc_window nnc_window_of(const nnc_node *in, const nnc_node *out, int64_t kh, int64_t kw, const nnc_attrs *a);

#endif
