/* The text IR: exact printed text for hand-built graphs, one case per op
 * row (a new row without a case fails test_every_op_has_a_case), exact
 * round trips, and one test per kind of malformed input, each checking the
 * whole message including line and column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "ir/op.h"
#include "ir/text.h"
#include "tests/ir/suites.h"

/* ---- helpers ---- */

static int32_t leaf(nnc_graph *g, nnc_op op, const char *name, nnc_dtype dtype, int rank,
                    const int64_t *shape) {
  nnc_node_spec spec;
  nnc_status st = {0};
  memset(&spec, 0, sizeof spec);
  spec.op = op;
  spec.name = name;
  spec.dtype = dtype;
  spec.rank = rank;
  memcpy(spec.shape, shape, sizeof shape[0] * (size_t)rank);
  int32_t id = nnc_graph_add(g, &spec, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static int32_t node(nnc_graph *g, nnc_op op, const int32_t *src, const nnc_attrs *attrs) {
  nnc_status st = {0};
  int32_t id = nnc_graph_op(g, op, src, nnc_ops[op].arity, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static void output(nnc_graph *g, const char *role, int32_t id) {
  nnc_status st = {0};
  ck_assert_msg(nnc_graph_add_output(g, role, id, &st) == 0, "%s", st.msg);
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* Every field of every node, so a parsed graph is the printed one. */
static void assert_graphs_equal(const nnc_graph *a, const nnc_graph *b) {
  ck_assert_int_eq(a->nnodes, b->nnodes);
  for (int32_t i = 0; i < a->nnodes; i++) {
    const nnc_node *x = &a->nodes[i], *y = &b->nodes[i];
    ck_assert_msg(x->op == y->op && x->dtype == y->dtype && x->rank == y->rank && x->nsrc == y->nsrc,
                  "node %d differs", (int)i);
    ck_assert_mem_eq(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->rank);
    ck_assert_mem_eq(x->src, y->src, sizeof x->src[0] * (size_t)x->nsrc);
    ck_assert_mem_eq(&x->attrs, &y->attrs, sizeof x->attrs);
    ck_assert_msg(same_str(x->name, y->name), "node %d: name differs", (int)i);
    ck_assert_msg(same_str(x->loc.layer, y->loc.layer) && same_str(x->loc.layer_type, y->loc.layer_type) &&
                      same_str(x->loc.file, y->loc.file) && x->loc.line == y->loc.line,
                  "node %d: loc differs", (int)i);
    ck_assert_uint_eq(x->hash, y->hash);
  }
  ck_assert_int_eq(a->noutputs, b->noutputs);
  for (int i = 0; i < a->noutputs; i++) {
    ck_assert_str_eq(a->outputs[i].name, b->outputs[i].name);
    ck_assert_int_eq(a->outputs[i].node, b->outputs[i].node);
  }
  ck_assert_uint_eq(nnc_graph_hash(a), nnc_graph_hash(b));
}

/* Prints g, checks the text, parses it back, checks the parse is g and
 * prints the same text again. */
static void assert_round_trip(const nnc_graph *g, const char *expect) {
  nnc_status st = {0};
  char *text = nnc_graph_to_text(g);
  if (expect) ck_assert_str_eq(text, expect);
  nnc_graph *parsed = nnc_graph_parse(text, "rt.ir", &st);
  ck_assert_msg(parsed != NULL, "%s\n%s", st.msg, text);
  char *again = nnc_graph_to_text(parsed);
  ck_assert_str_eq(again, text);
  assert_graphs_equal(g, parsed);
  ck_assert_msg(nnc_graph_verify(parsed, &st) == 0, "%s", st.msg);
  free(again);
  free(text);
  nnc_graph_free(parsed);
}

static void assert_parse_error(const char *text, const char *message) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "t.ir", &st);
  ck_assert_msg(g == NULL, "parsed, expected: %s", message);
  ck_assert_str_eq(st.msg, message);
}

/* ---- one case per op row ---- */

typedef struct operand {
  nnc_dtype dtype;
  int rank;
  int64_t shape[4];
} operand;

/* The op applied to inputs named "s0", "s1" of the given types; a leaf
 * case is the leaf itself, named "leaf", with the first operand's type.
 * Attributes are not the zero defaults, so each is seen to print. */
typedef struct op_case {
  nnc_op op;
  operand src[4];
  const char *line; /* the op's node as printed */
  nnc_attrs attrs;
} op_case;

#define F32(...) {NNC_F32, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), {__VA_ARGS__}}
#define ANY NNC_DIM_ANY

static const op_case op_cases[] = {
    {.op = NNC_OP_INPUT, .src = {{NNC_I32, 1, {ANY}}}, .line = "  %0 = input() {name=\"leaf\"} : i32[?]"},
    {.op = NNC_OP_PARAM, .src = {F32(3, 4)}, .line = "  %0 = param() {name=\"leaf\"} : f32[3,4]"},
    {.op = NNC_OP_STATE, .src = {F32(4)}, .line = "  %0 = state() {name=\"leaf\"} : f32[4]"},
    {.op = NNC_OP_MATMUL,
     .src = {F32(4, 5), F32(3, 4)},
     .line = "  %2 = matmul(%0, %1) {trans_a=1, trans_b=1} : f32[5,3]",
     .attrs = {.trans_a = 1, .trans_b = 1}},
    {.op = NNC_OP_BIAS_ADD, .src = {F32(ANY, 3), F32(3)}, .line = "  %2 = bias_add(%0, %1) : f32[?,3]"},
    {.op = NNC_OP_CONV2D,
     .src = {F32(ANY, 8, 8, 3), F32(3, 3, 3, 4)},
     .line = "  %2 = conv2d(%0, %1) {stride=[2,1], pad=same} : f32[?,4,8,4]",
     .attrs = {.stride = {2, 1}, .pad = NNC_PAD_SAME}},
    {.op = NNC_OP_MAX_POOL,
     .src = {F32(ANY, 8, 8, 3)},
     .line = "  %1 = max_pool(%0) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]",
     .attrs = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID}},
    {.op = NNC_OP_AVG_POOL,
     .src = {F32(ANY, 8, 8, 3)},
     .line = "  %1 = avg_pool(%0) {window=[3,2], stride=[1,2], pad=same} : f32[?,8,4,3]",
     .attrs = {.window = {3, 2}, .stride = {1, 2}, .pad = NNC_PAD_SAME}},
    {.op = NNC_OP_RESHAPE,
     .src = {F32(ANY, 4, 4, 3)},
     .line = "  %1 = reshape(%0) {shape=[-1,6]} : f32[?,8,6]",
     .attrs = {.shape_rank = 2, .shape = {-1, 6}}},
    {.op = NNC_OP_RELU, .src = {F32(ANY, 10)}, .line = "  %1 = relu(%0) : f32[?,10]"},
    {.op = NNC_OP_LEAKY_RELU, .src = {F32(ANY, 10)}, .line = "  %1 = leaky_relu(%0) {alpha=0.200000003} : f32[?,10]",
     .attrs = {.alpha = 0.2f}},
    {.op = NNC_OP_ELU, .src = {F32(ANY, 10)}, .line = "  %1 = elu(%0) {alpha=1} : f32[?,10]", .attrs = {.alpha = 1.0f}},
    {.op = NNC_OP_SIGMOID, .src = {F32(2, 10)}, .line = "  %1 = sigmoid(%0) : f32[2,10]"},
    {.op = NNC_OP_TANH, .src = {F32(ANY)}, .line = "  %1 = tanh(%0) : f32[?]"},
    {.op = NNC_OP_SOFTMAX, .src = {F32(ANY, 10)}, .line = "  %1 = softmax(%0) : f32[?,10]"},
    {.op = NNC_OP_DROPOUT,
     .src = {F32(ANY, 10)},
     .line = "  %1 = dropout(%0) {rate=0.100000001, stream=7} : f32[?,10]",
     .attrs = {.rate = 0.1f, .stream = 7}},
    {.op = NNC_OP_ADD, .src = {F32(2, 3), F32(2, 3)}, .line = "  %2 = add(%0, %1) : f32[2,3]"},
    {.op = NNC_OP_ALLREDUCE,
     .src = {F32(3, 3, 1, 4)},
     .line = "  %1 = allreduce(%0) {bucket=1} : f32[3,3,1,4]",
     .attrs = {.bucket = 1}},
    {.op = NNC_OP_MUL, .src = {F32(ANY, 3), F32(ANY, 3)}, .line = "  %2 = mul(%0, %1) : f32[?,3]"},
    {.op = NNC_OP_BIAS_GRAD, .src = {F32(ANY, 4, 4, 3)}, .line = "  %1 = bias_grad(%0) : f32[3]"},
    {.op = NNC_OP_CONV2D_GRAD_INPUT,
     .src = {F32(ANY, 4, 8, 4), F32(3, 3, 3, 4)},
     .line = "  %2 = conv2d_grad_input(%0, %1) {stride=[2,1], pad=same, shape=[8,8,3]} : f32[?,8,8,3]",
     .attrs = {.stride = {2, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {8, 8, 3}}},
    {.op = NNC_OP_CONV2D_GRAD_KERNEL,
     .src = {F32(ANY, 8, 8, 3), F32(ANY, 6, 6, 4)},
     .line = "  %2 = conv2d_grad_kernel(%0, %1) {stride=[1,1], pad=valid, shape=[3,3]} : f32[3,3,3,4]",
     .attrs = {.stride = {1, 1}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {3, 3}}},
    {.op = NNC_OP_MAX_POOL_GRAD,
     .src = {F32(ANY, 8, 8, 3), F32(ANY, 4, 4, 3)},
     .line = "  %2 = max_pool_grad(%0, %1) {window=[2,2], stride=[2,2], pad=valid} : f32[?,8,8,3]",
     .attrs = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID}},
    {.op = NNC_OP_AVG_POOL_GRAD,
     .src = {F32(ANY, 4, 4, 3)},
     .line = "  %1 = avg_pool_grad(%0) {window=[2,2], stride=[2,2], pad=valid, shape=[8,8]} : f32[?,8,8,3]",
     .attrs = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {8, 8}}},
    {.op = NNC_OP_RELU_GRAD, .src = {F32(ANY, 10), F32(ANY, 10)}, .line = "  %2 = relu_grad(%0, %1) : f32[?,10]"},
    {.op = NNC_OP_SIGMOID_GRAD, .src = {F32(2, 3), F32(2, 3)}, .line = "  %2 = sigmoid_grad(%0, %1) : f32[2,3]"},
    {.op = NNC_OP_TANH_GRAD, .src = {F32(2, 3), F32(2, 3)}, .line = "  %2 = tanh_grad(%0, %1) : f32[2,3]"},
    {.op = NNC_OP_LEAKY_RELU_GRAD, .src = {F32(2, 3), F32(2, 3)},
     .line = "  %2 = leaky_relu_grad(%0, %1) {alpha=0.300000012} : f32[2,3]", .attrs = {.alpha = 0.3f}},
    {.op = NNC_OP_ELU_GRAD, .src = {F32(2, 3), F32(2, 3)}, .line = "  %2 = elu_grad(%0, %1) {alpha=0.5} : f32[2,3]",
     .attrs = {.alpha = 0.5f}},
    {.op = NNC_OP_SOFTMAX_GRAD, .src = {F32(2, 3), F32(2, 3)}, .line = "  %2 = softmax_grad(%0, %1) : f32[2,3]"},
    {.op = NNC_OP_XENT_LOGITS,
     .src = {F32(ANY, 10), {NNC_I32, 1, {ANY}}},
     .line = "  %2 = xent_logits(%0, %1) : f32[]"},
    {.op = NNC_OP_XENT_LOGITS_GRAD,
     .src = {F32(ANY, 10), {NNC_I32, 1, {ANY}}},
     .line = "  %2 = xent_logits_grad(%0, %1) : f32[?,10]"},
    {.op = NNC_OP_XENT_PROBS, .src = {F32(4, 10), F32(4, 10)}, .line = "  %2 = xent_probs(%0, %1) : f32[]"},
    {.op = NNC_OP_XENT_PROBS_GRAD, .src = {F32(4, 10), F32(4, 10)}, .line = "  %2 = xent_probs_grad(%0, %1) : f32[4,10]"},
    {.op = NNC_OP_MSE, .src = {F32(4, 2), F32(4, 2)}, .line = "  %2 = mse(%0, %1) : f32[]"},
    {.op = NNC_OP_MSE_GRAD, .src = {F32(4, 2), F32(4, 2)}, .line = "  %2 = mse_grad(%0, %1) : f32[4,2]"},
    {.op = NNC_OP_CORRECT, .src = {F32(ANY, 10), {NNC_I32, 1, {ANY}}}, .line = "  %2 = correct(%0, %1) : f32[]"},
    {.op = NNC_OP_SQUARE, .src = {F32(3, 4)}, .line = "  %1 = square(%0) : f32[3,4]"},
    {.op = NNC_OP_EMA,
     .src = {F32(3, 4), F32(3, 4)},
     .line = "  %2 = ema(%0, %1) {alpha=0.100000001} : f32[3,4]",
     .attrs = {.alpha = 0.1f}},
    {.op = NNC_OP_ADAM_UPDATE,
     .src = {F32(3), F32(3), F32(3), {NNC_F32, 0, {0}}},
     .line = "  %4 = adam_update(%0, %1, %2, %3) {eps=1.00000001e-07} : f32[3]",
     .attrs = {.eps = 1e-7f}},
    {.op = NNC_OP_RMSPROP_UPDATE,
     .src = {F32(3), F32(3), F32(3), {NNC_F32, 0, {0}}},
     .line = "  %4 = rmsprop_update(%0, %1, %2, %3) {eps=1.00000001e-07} : f32[3]",
     .attrs = {.eps = 1e-7f}},
    {.op = NNC_OP_SGD_UPDATE, .src = {F32(3), F32(3), {NNC_F32, 0, {0}}}, .line = "  %3 = sgd_update(%0, %1, %2) : f32[3]"},
    {.op = NNC_OP_MOMENTUM_VELOCITY,
     .src = {F32(3), F32(3), {NNC_F32, 0, {0}}},
     .line = "  %3 = momentum_velocity(%0, %1, %2) {alpha=0.899999976} : f32[3]",
     .attrs = {.alpha = 0.9f}},
    {.op = NNC_OP_NESTEROV_UPDATE,
     .src = {F32(3), F32(3), F32(3), {NNC_F32, 0, {0}}},
     .line = "  %4 = nesterov_update(%0, %1, %2, %3) {alpha=0.899999976} : f32[3]",
     .attrs = {.alpha = 0.9f}},
    {.op = NNC_OP_SUB, .src = {F32(3), F32(3)}, .line = "  %2 = sub(%0, %1) : f32[3]"},
    {.op = NNC_OP_MAXIMUM, .src = {F32(3), F32(3)}, .line = "  %2 = maximum(%0, %1) : f32[3]"},
    {.op = NNC_OP_BN_STATS, .src = {F32(ANY, 3)}, .line = "  %1 = bn_stats(%0) : f32[3,3]"},
    {.op = NNC_OP_BATCH_NORM_TRAIN,
     .src = {F32(ANY, 3), F32(3, 3), F32(3), F32(3)},
     .line = "  %4 = batch_norm_train(%0, %1, %2, %3) {eps=0.00100000005} : f32[?,3]",
     .attrs = {.eps = 1e-3f}},
    {.op = NNC_OP_BATCH_NORM_TRAIN_GRAD,
     .src = {F32(ANY, 3), F32(ANY, 3), F32(3, 3), F32(3)},
     .line = "  %4 = batch_norm_train_grad(%0, %1, %2, %3) {eps=0.00100000005} : f32[?,3]",
     .attrs = {.eps = 1e-3f}},
    {.op = NNC_OP_BN_GAMMA_GRAD,
     .src = {F32(ANY, 3), F32(ANY, 3), F32(3, 3)},
     .line = "  %3 = bn_gamma_grad(%0, %1, %2) {eps=0.00100000005} : f32[3]",
     .attrs = {.eps = 1e-3f}},
    {.op = NNC_OP_BN_MOVING,
     .src = {F32(3), F32(3, 3)},
     .line = "  %2 = bn_moving(%0, %1) {alpha=0.99000001, index=2} : f32[3]",
     .attrs = {.alpha = 0.99f, .index = 2}},
    {.op = NNC_OP_BN_FOLD,
     .src = {F32(3), F32(3), F32(3), F32(3)},
     .line = "  %4 = bn_fold(%0, %1, %2, %3) {alpha=0.99000001, eps=0.00100000005} : f32[2,3]",
     .attrs = {.alpha = 0.99f, .eps = 1e-3f}},
    {.op = NNC_OP_SCALE_SHIFT, .src = {F32(ANY, 3), F32(2, 3)}, .line = "  %2 = scale_shift(%0, %1) : f32[?,3]"},
    {.op = NNC_OP_SCALE_SHIFT_GRAD, .src = {F32(ANY, 3), F32(2, 3)}, .line = "  %2 = scale_shift_grad(%0, %1) : f32[?,3]"},
    {.op = NNC_OP_FILL, .src = {F32(3)}, .line = "  %1 = fill(%0) {alpha=1} : f32[3]", .attrs = {.alpha = 1.0f}},
    {.op = NNC_OP_RMSPROP_MOMENTUM,
     .src = {F32(3), F32(3), F32(3), {NNC_F32, 0, {0}}},
     .line = "  %4 = rmsprop_momentum(%0, %1, %2, %3) {alpha=0.899999976, eps=1.00000001e-07} : f32[3]",
     .attrs = {.alpha = 0.9f, .eps = 1e-7f}},
};
enum { NCASES = sizeof op_cases / sizeof op_cases[0] };

static nnc_graph *build_case(const op_case *c) {
  nnc_graph *g = nnc_graph_new();
  const operand *s = c->src;
  if (nnc_ops[c->op].flags & NNC_OPF_LEAF) {
    output(g, "out", leaf(g, c->op, "leaf", s[0].dtype, s[0].rank, s[0].shape));
    return g;
  }
  int32_t src[4];
  static const char *const names[4] = {"s0", "s1", "s2", "s3"};
  for (int i = 0; i < nnc_ops[c->op].arity; i++)
    src[i] = leaf(g, NNC_OP_INPUT, names[i], s[i].dtype, s[i].rank, s[i].shape);
  output(g, "out", node(g, c->op, src, &c->attrs));
  return g;
}

/* The line of the text that holds node `id`, without its newline. */
static char *node_line(const char *text, int32_t id) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "\n  %%%d = ", (int)id);
  const char *start = strstr(text, prefix);
  ck_assert_msg(start != NULL, "no %%%d in\n%s", (int)id, text);
  start++;
  size_t len = strcspn(start, "\n");
  char *line = malloc(len + 1);
  memcpy(line, start, len);
  line[len] = 0;
  return line;
}

/* Every activation and activation gradient row, by walking the pointwise
 * table: printed with its alpha when the row reads one, and read back. */
static int activation_case(nnc_op op, op_case *c, char *line, size_t size) {
  nnc_pw_kind kind = nnc_pointwise[op].kind;
  if (kind != NNC_PW_ACTIVATION && kind != NNC_PW_ACTIVATION_GRAD) return 0;
  int grad = kind == NNC_PW_ACTIVATION_GRAD;
  *c = (op_case){.op = op, .src = {F32(2, 3), F32(2, 3)}, .line = line, .attrs = {.alpha = 0.3f}};
  snprintf(line, size, "  %%%d = %s(%s)%s : f32[2,3]", 1 + grad, nnc_ops[op].name, grad ? "%0, %1" : "%0",
           nnc_ops[op].attrs & NNC_A_ALPHA ? " {alpha=0.300000012}" : "");
  return 1;
}

START_TEST(test_every_op_has_a_case) {
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    op_case made;
    char line[128];
    if (activation_case((nnc_op)op, &made, line, sizeof line)) continue;
    int found = 0;
    for (int i = 0; i < NCASES; i++) found |= op_cases[i].op == (nnc_op)op;
    ck_assert_msg(found, "op '%s' has no case in op_cases", nnc_ops[op].name);
  }
}
END_TEST

static void check_op_case(const op_case *c) {
  nnc_graph *g = build_case(c);
  char *text = nnc_graph_to_text(g);
  char *line = node_line(text, g->nnodes - 1);
  ck_assert_str_eq(line, c->line);
  assert_round_trip(g, NULL);
  free(line);
  free(text);
  nnc_graph_free(g);
}

START_TEST(test_op_case) { check_op_case(&op_cases[_i]); }
END_TEST

START_TEST(test_activation_case) {
  op_case c;
  char line[128];
  if (activation_case((nnc_op)_i, &c, line, sizeof line)) check_op_case(&c);
}
END_TEST

/* ---- whole graphs ---- */

static const int64_t image[] = {ANY, 28, 28, 1};

/* Every op, with every shape of loc(...): full, without a layer type,
 * without a file, and none. */
static nnc_graph *build_cnn(void) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", NNC_F32, 4, image);
  nnc_graph_set_loc(g, "conv2d", "Conv2D", "models/vgg.lua", 5);
  int32_t k = leaf(g, NNC_OP_PARAM, "conv2d/kernel", NNC_F32, 4, (int64_t[]){3, 3, 1, 32});
  int32_t kb = leaf(g, NNC_OP_PARAM, "conv2d/bias", NNC_F32, 1, (int64_t[]){32});
  nnc_attrs conv = {.stride = {1, 1}, .pad = NNC_PAD_SAME};
  int32_t c = node(g, NNC_OP_CONV2D, (int32_t[]){x, k}, &conv);
  int32_t r = node(g, NNC_OP_RELU, (int32_t[]){node(g, NNC_OP_BIAS_ADD, (int32_t[]){c, kb}, NULL)}, NULL);
  nnc_graph_set_loc(g, "max_pooling2d", "MaxPooling2D", "models/vgg.lua", 6);
  nnc_attrs pool = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID};
  int32_t mp = node(g, NNC_OP_MAX_POOL, (int32_t[]){r}, &pool);
  nnc_graph_set_loc(g, "avg", NULL, "models/vgg.lua", 7);
  nnc_attrs avg = {.window = {3, 3}, .stride = {1, 1}, .pad = NNC_PAD_SAME};
  int32_t ap = node(g, NNC_OP_AVG_POOL, (int32_t[]){mp}, &avg);
  nnc_graph_set_loc(g, "flatten", "Flatten", NULL, 0);
  nnc_attrs flat = {.shape_rank = 1, .shape = {-1}};
  int32_t f = node(g, NNC_OP_RESHAPE, (int32_t[]){ap}, &flat);
  nnc_graph_set_loc(g, "dense", "Dense", "models/vgg.lua", 9);
  int32_t w = leaf(g, NNC_OP_PARAM, "dense/kernel", NNC_F32, 2, (int64_t[]){6272, 10});
  int32_t wb = leaf(g, NNC_OP_PARAM, "dense/bias", NNC_F32, 1, (int64_t[]){10});
  int32_t mm = node(g, NNC_OP_MATMUL, (int32_t[]){f, w}, NULL);
  int32_t d = node(g, NNC_OP_BIAS_ADD, (int32_t[]){mm, wb}, NULL);
  nnc_graph_set_loc(g, "dropout", "Dropout", "models/vgg.lua", 10);
  nnc_attrs drop = {.rate = 0.25f, .stream = 3};
  int32_t dr = node(g, NNC_OP_DROPOUT, (int32_t[]){d}, &drop);
  nnc_graph_set_loc(g, NULL, NULL, NULL, 0);
  int32_t t = node(g, NNC_OP_TANH, (int32_t[]){dr}, NULL);
  int32_t s = node(g, NNC_OP_SIGMOID, (int32_t[]){dr}, NULL);
  int32_t m = node(g, NNC_OP_MUL, (int32_t[]){node(g, NNC_OP_ADD, (int32_t[]){t, s}, NULL), dr}, NULL);
  output(g, "output", node(g, NNC_OP_SOFTMAX, (int32_t[]){m}, NULL));
  output(g, "logits", m);
  leaf(g, NNC_OP_INPUT, "labels", NNC_I32, 1, (int64_t[]){ANY});
  return g;
}

static const char cnn_text[] =
    "graph {\n"
    "  %0 = input() {name=\"x\"} : f32[?,28,28,1]\n"
    "  %1 = param() {name=\"conv2d/kernel\"} : f32[3,3,1,32] loc(\"conv2d\", \"Conv2D\", "
    "\"models/vgg.lua\":5)\n"
    "  %2 = param() {name=\"conv2d/bias\"} : f32[32] loc(\"conv2d\", \"Conv2D\", \"models/vgg.lua\":5)\n"
    "  %3 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,28,28,32] loc(\"conv2d\", \"Conv2D\", "
    "\"models/vgg.lua\":5)\n"
    "  %4 = bias_add(%3, %2) : f32[?,28,28,32] loc(\"conv2d\", \"Conv2D\", \"models/vgg.lua\":5)\n"
    "  %5 = relu(%4) : f32[?,28,28,32] loc(\"conv2d\", \"Conv2D\", \"models/vgg.lua\":5)\n"
    "  %6 = max_pool(%5) {window=[2,2], stride=[2,2], pad=valid} : f32[?,14,14,32] loc(\"max_pooling2d\", "
    "\"MaxPooling2D\", \"models/vgg.lua\":6)\n"
    "  %7 = avg_pool(%6) {window=[3,3], stride=[1,1], pad=same} : f32[?,14,14,32] loc(\"avg\", "
    "\"models/vgg.lua\":7)\n"
    "  %8 = reshape(%7) {shape=[-1]} : f32[?,6272] loc(\"flatten\", \"Flatten\")\n"
    "  %9 = param() {name=\"dense/kernel\"} : f32[6272,10] loc(\"dense\", \"Dense\", \"models/vgg.lua\":9)\n"
    "  %10 = param() {name=\"dense/bias\"} : f32[10] loc(\"dense\", \"Dense\", \"models/vgg.lua\":9)\n"
    "  %11 = matmul(%8, %9) {trans_a=0, trans_b=0} : f32[?,10] loc(\"dense\", \"Dense\", "
    "\"models/vgg.lua\":9)\n"
    "  %12 = bias_add(%11, %10) : f32[?,10] loc(\"dense\", \"Dense\", \"models/vgg.lua\":9)\n"
    "  %13 = dropout(%12) {rate=0.25, stream=3} : f32[?,10] loc(\"dropout\", \"Dropout\", "
    "\"models/vgg.lua\":10)\n"
    "  %14 = tanh(%13) : f32[?,10]\n"
    "  %15 = sigmoid(%13) : f32[?,10]\n"
    "  %16 = add(%14, %15) : f32[?,10]\n"
    "  %17 = mul(%16, %13) : f32[?,10]\n"
    "  %18 = softmax(%17) : f32[?,10]\n"
    "  %19 = input() {name=\"labels\"} : i32[?]\n"
    "  output \"output\" = %18\n"
    "  output \"logits\" = %17\n"
    "}\n";

START_TEST(test_print_cnn) {
  nnc_graph *g = build_cnn();
  assert_round_trip(g, cnn_text);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_print_to_file) {
  nnc_graph *g = build_cnn();
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  ck_assert_int_eq(nnc_graph_print(g, f), 0);
  fclose(f);
  ck_assert_str_eq(buf, cnn_text);
  free(buf);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_round_trip_rebatched) {
  nnc_graph *g = build_cnn();
  nnc_status st = {0};
  nnc_graph *b = nnc_graph_with_batch(g, 32, &st);
  ck_assert_msg(b != NULL, "%s", st.msg);
  assert_round_trip(b, NULL);
  char *text = nnc_graph_to_text(b);
  char *line = node_line(text, 8);
  ck_assert_str_eq(line, "  %8 = reshape(%7) {shape=[-1]} : f32[32,6272] loc(\"flatten\", \"Flatten\")");
  free(line);
  free(text);
  nnc_graph_free(b);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_print_empty_graph) {
  nnc_graph *g = nnc_graph_new();
  assert_round_trip(g, "graph {\n}\n");
  nnc_graph_free(g);
}
END_TEST

/* Quotes, backslashes and control bytes are escaped, so a name can never
 * end a string or a line early; bytes above 0x7f pass through. */
START_TEST(test_strings_escaped) {
  nnc_graph *g = nnc_graph_new();
  nnc_graph_set_loc(g, "a\"b", "T\\U", "dir/f\tg.lua", 4);
  int32_t x = leaf(g, NNC_OP_INPUT, "x\ny\x01z\x7f\xc3\xa9", NNC_F32, 1, (int64_t[]){2});
  output(g, "role \"1\"", x);
  assert_round_trip(g, "graph {\n"
                       "  %0 = input() {name=\"x\\ny\\x01z\\x7f\xc3\xa9\"} : f32[2] "
                       "loc(\"a\\\"b\", \"T\\\\U\", \"dir/f\\tg.lua\":4)\n"
                       "  output \"role \\\"1\\\"\" = %0\n"
                       "}\n");
  nnc_graph_free(g);
}
END_TEST

/* A line means nothing without its file, so it is not printed and a
 * parse gives 0; the text still round-trips. */
START_TEST(test_loc_line_without_file) {
  nnc_graph *g = nnc_graph_new();
  nnc_graph_set_loc(g, "d", NULL, NULL, 12);
  leaf(g, NNC_OP_PARAM, "w", NNC_F32, 1, (int64_t[]){2});
  const char *expect = "graph {\n  %0 = param() {name=\"w\"} : f32[2] loc(\"d\")\n}\n";
  char *text = nnc_graph_to_text(g);
  ck_assert_str_eq(text, expect);
  nnc_status st = {0};
  nnc_graph *p = nnc_graph_parse(text, NULL, &st);
  ck_assert_msg(p != NULL, "%s", st.msg);
  ck_assert_str_eq(p->nodes[0].loc.layer, "d");
  ck_assert_ptr_null(p->nodes[0].loc.layer_type);
  ck_assert_ptr_null(p->nodes[0].loc.file);
  ck_assert_int_eq(p->nodes[0].loc.line, 0);
  char *again = nnc_graph_to_text(p);
  ck_assert_str_eq(again, expect);
  free(again);
  free(text);
  nnc_graph_free(p);
  nnc_graph_free(g);
}
END_TEST

/* Hand-written IR may use any spacing, comments and attribute order, and
 * prints back in the one canonical form. */
START_TEST(test_parse_free_form) {
  const char *text = "// a comment line\n"
                     "graph{%0=input(){name=\"x\"}:f32[?,8,8,3]   // trailing comment\n"
                     "\t%1 = max_pool( %0 ) { pad = same , stride=[ 1 , 1 ], window=[2,2] }\n"
                     "     : f32[?,8,8,3] loc( \"p\" , \"m.lua\" : 2 )\n"
                     "  %2 = input() {name=\"one\"} : f32[?,1]\n"
                     "  %3 = reshape(%2) {shape=[]} : f32[?]\n"
                     "output \"y\"=%1}\n";
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "t.ir", &st);
  ck_assert_msg(g != NULL, "%s", st.msg);
  char *printed = nnc_graph_to_text(g);
  ck_assert_str_eq(
      printed,
      "graph {\n"
      "  %0 = input() {name=\"x\"} : f32[?,8,8,3]\n"
      "  %1 = max_pool(%0) {window=[2,2], stride=[1,1], pad=same} : f32[?,8,8,3] loc(\"p\", \"m.lua\":2)\n"
      "  %2 = input() {name=\"one\"} : f32[?,1]\n"
      "  %3 = reshape(%2) {shape=[]} : f32[?]\n"
      "  output \"y\" = %1\n"
      "}\n");
  /* The parsed graph ends with no location, so later nodes get none. */
  ck_assert_ptr_null(g->loc.layer);
  free(printed);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_parse_float_forms) {
  const char *text = "graph {\n"
                     "  %0 = input() {name=\"x\"} : f32[?,4]\n"
                     "  %1 = dropout(%0) {rate=5e-1, stream=-2} : f32[?,4]\n"
                     "  %2 = dropout(%0) {rate=.125, stream=0} : f32[?,4]\n"
                     "  %3 = dropout(%0) {rate=1e-05, stream=0} : f32[?,4]\n"
                     "}\n";
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "t.ir", &st);
  ck_assert_msg(g != NULL, "%s", st.msg);
  ck_assert_float_eq(g->nodes[1].attrs.rate, 0.5f);
  ck_assert_int_eq(g->nodes[1].attrs.stream, -2);
  ck_assert_float_eq(g->nodes[2].attrs.rate, 0.125f);
  ck_assert_float_eq(g->nodes[3].attrs.rate, 1e-5f);
  assert_round_trip(g, NULL);
  char *printed = nnc_graph_to_text(g);
  char *line = node_line(printed, 3);
  ck_assert_str_eq(line, "  %3 = dropout(%0) {rate=9.99999975e-06, stream=0} : f32[?,4]");
  free(line);
  free(printed);
  nnc_graph_free(g);
}
END_TEST

/* ---- malformed input: one test per kind of error ---- */

/* Line 4 of each is the line under test. */
#define HEAD                                   \
  "graph {\n"                                  \
  "  %0 = input() {name=\"x\"} : f32[?,4]\n" \
  "  %1 = param() {name=\"w\"} : f32[4,3]\n"

START_TEST(test_error_unknown_op) {
  assert_parse_error(HEAD "  %2 = matmull(%0, %1) {trans_a=0, trans_b=0} : f32[?,3]\n}\n",
                     "t.ir:4:8: error: unknown op 'matmull' (did you mean 'matmul'?)");
  assert_parse_error(HEAD "  %2 = qqqqqqqqqqqqqqqqqq(%0)\n}\n",
                     "t.ir:4:8: error: unknown op 'qqqqqqqqqqqqqqqqqq'");
}
END_TEST

START_TEST(test_error_unknown_attribute) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) {trans_a=0, transb=0} : f32[?,3]\n}\n",
                     "t.ir:4:35: error: matmul has no attribute 'transb' (did you mean 'trans_b'?)");
  /* Known elsewhere, but not for this op. */
  assert_parse_error(HEAD "  %2 = relu(%0) {stride=[1,1]} : f32[?,4]\n}\n",
                     "t.ir:4:18: error: relu has no attribute 'stride'");
  assert_parse_error(HEAD "  %2 = relu(%0) {name=\"r\"} : f32[?,4]\n}\n",
                     "t.ir:4:18: error: relu has no attribute 'name'");
}
END_TEST

START_TEST(test_error_missing_attribute) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) {trans_a=0} : f32[?,3]\n}\n",
                     "t.ir:4:8: error: matmul needs attribute 'trans_b'");
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) : f32[?,3]\n}\n",
                     "t.ir:4:8: error: matmul needs attribute 'trans_a'");
  assert_parse_error("graph {\n  %0 = input() : f32[?,4]\n}\n",
                     "t.ir:2:8: error: input needs attribute 'name'");
}
END_TEST

START_TEST(test_error_repeated_attribute) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) {trans_a=0, trans_a=1, trans_b=0} : f32[?,3]\n}\n",
                     "t.ir:4:35: error: attribute 'trans_a' is given twice");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\", name=\"y\"} : f32[?,4]\n}\n",
                     "t.ir:2:27: error: attribute 'name' is given twice");
}
END_TEST

START_TEST(test_error_attribute_value) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) {trans_a=2, trans_b=0} : f32[?,3]\n}\n",
                     "t.ir:4:32: error: trans_a must be 0 or 1, found '2'");
  assert_parse_error(
      HEAD "  %2 = reshape(%0) {shape=[2,x]} : f32[?,2,2]\n}\n",
      "t.ir:4:30: error: shape must be an integer from -9223372036854775808 to 9223372036854775807, "
      "found 'x'");
  assert_parse_error(HEAD "  %2 = dropout(%0) {rate=0.5, stream=99999999999} : f32[?,4]\n}\n",
                     "t.ir:4:38: error: stream must be an integer from -2147483648 to 2147483647, found "
                     "'99999999999'");
  assert_parse_error(HEAD "  %2 = dropout(%0) {rate=half, stream=0} : f32[?,4]\n}\n",
                     "t.ir:4:26: error: rate must be a number, found 'half'");
  assert_parse_error("graph {\n  %0 = input() {name=x} : f32[?,4]\n}\n",
                     "t.ir:2:22: error: expected the leaf's name (a quoted string), found 'x'");
}
END_TEST

START_TEST(test_error_pad_and_pair) {
  const char *line = "  %0 = input() {name=\"x\"} : f32[?,8,8,3]\n";
  char text[256];
  snprintf(text, sizeof text,
           "graph {\n%s  %%1 = max_pool(%%0) {window=[2,2], stride=[2,2], pad=full} : f32[?,4,4,3]\n}\n",
           line);
  assert_parse_error(text, "t.ir:3:54: error: pad must be same or valid, found 'full'");
  snprintf(text, sizeof text,
           "graph {\n%s  %%1 = max_pool(%%0) {window=[2], stride=[2,2], pad=same} : f32[?,4,4,3]\n}\n", line);
  assert_parse_error(text, "t.ir:3:29: error: window needs two entries, [a,b]");
  snprintf(text, sizeof text,
           "graph {\n%s  %%1 = max_pool(%%0) {window=[2,2,2], stride=[2,2], pad=same} : f32[?,4,4,3]\n}\n",
           line);
  assert_parse_error(text, "t.ir:3:34: error: window has at most 2 entries");
}
END_TEST

START_TEST(test_error_undefined_operand) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %3) {trans_a=0, trans_b=0} : f32[?,3]\n}\n",
                     "t.ir:4:19: error: %3 is used before it is defined");
  assert_parse_error(HEAD "  %2 = relu(%2) : f32[?,4]\n}\n",
                     "t.ir:4:13: error: %2 is used before it is defined");
  assert_parse_error(HEAD "}\n output \"y\" = %7\n}\n",
                     "t.ir:5:2: error: expected the end of input after the graph, found 'output'");
  assert_parse_error(HEAD "  output \"y\" = %7\n}\n", "t.ir:4:16: error: %7 is used before it is defined");
}
END_TEST

START_TEST(test_error_numbering) {
  assert_parse_error(HEAD "  %3 = relu(%0) : f32[?,4]\n}\n",
                     "t.ir:4:3: error: expected %2: nodes are numbered in order from %0");
  assert_parse_error("graph {\n  %1 = input() {name=\"x\"} : f32[?,4]\n}\n",
                     "t.ir:2:3: error: expected %0: nodes are numbered in order from %0");
}
END_TEST

START_TEST(test_error_type_mismatch) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[?,4]\n}\n",
                     "t.ir:4:48: error: type f32[?,4] does not match the inferred type f32[?,3]");
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[2,4]\n}\n",
                     "t.ir:4:19: error: type f32[2,4] does not match the inferred type f32[?,4]");
  assert_parse_error(HEAD "  %2 = relu(%0) : i32[?,4]\n}\n",
                     "t.ir:4:19: error: type i32[?,4] does not match the inferred type f32[?,4]");
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4,1]\n}\n",
                     "t.ir:4:19: error: type f32[?,4,1] does not match the inferred type f32[?,4]");
}
END_TEST

START_TEST(test_error_shape_inference) {
  assert_parse_error(
      HEAD
      "  %2 = matmul(%1, %1) {trans_a=0, trans_b=0} : f32[4,3] loc(\"dense\", \"Dense\", \"m.lua\":3)\n}\n",
      "t.ir:4:8: error: dense (Dense) at m.lua:3: inner dimensions differ: f32[4,3] has 3, "
      "f32[4,3] has 4");
  assert_parse_error(HEAD "  %2 = add(%0, %1) : f32[?,4]\n}\n",
                     "t.ir:4:8: error: add: operand 1 is f32[4,3], expected f32[?,4]");
  assert_parse_error("graph {\n  %0 = param() {name=\"w\"} : f32[0,3]\n}\n",
                     "t.ir:2:8: error: param: 'w' has a zero or negative size in f32[0,3]");
}
END_TEST

START_TEST(test_error_repeated_node) {
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4]\n  %3 = relu(%0) : f32[?,4]\n}\n",
                     "t.ir:5:3: error: %3 repeats %2; the graph merges identical nodes, so use %2");
  assert_parse_error(HEAD "  %2 = input() {name=\"x\"} : f32[?,4]\n}\n",
                     "t.ir:4:3: error: %2 repeats %0; the graph merges identical nodes, so use %0");
  /* The same leaf name with another type is a conflict, not a repeat. */
  assert_parse_error(HEAD "  %2 = input() {name=\"x\"} : f32[?,5]\n}\n",
                     "t.ir:4:8: error: input: a input named 'x' already exists with another type");
}
END_TEST

START_TEST(test_error_arity) {
  assert_parse_error(HEAD "  %2 = matmul(%0) {trans_a=0, trans_b=0} : f32[?,3]\n}\n",
                     "t.ir:4:8: error: matmul takes 2 operands, found 1");
  assert_parse_error(HEAD "  %2 = relu(%0, %0) : f32[?,4]\n}\n",
                     "t.ir:4:8: error: relu takes 1 operand, found 2");
  assert_parse_error(HEAD "  %2 = relu(%0, %0, %0, %0, %0) : f32[?,4]\n}\n",
                     "t.ir:4:8: error: relu takes 1 operand, found 5");
  assert_parse_error("graph {\n  %0 = input(%0) {name=\"x\"} : f32[?,4]\n}\n",
                     "t.ir:2:14: error: %0 is used before it is defined");
}
END_TEST

START_TEST(test_error_missing_token) {
  assert_parse_error(HEAD "  %2 = matmul(%0, %1 {trans_a=0, trans_b=0} : f32[?,3]\n}\n",
                     "t.ir:4:22: error: expected ')', found '{'");
  assert_parse_error(HEAD "  %2 = relu(%0)\n}\n", "t.ir:5:1: error: expected ':', found '}'");
  assert_parse_error(HEAD "  %2 relu(%0) : f32[?,4]\n}\n", "t.ir:4:6: error: expected '=', found 'relu'");
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4\n}\n", "t.ir:5:1: error: expected ']', found '}'");
  assert_parse_error(HEAD "  %2 = relu(%0) : [?,4]\n}\n",
                     "t.ir:4:19: error: expected a type such as f32[2,3], found '['");
  assert_parse_error(HEAD "  %2 = (%0) : f32[?,4]\n}\n", "t.ir:4:8: error: expected an op name, found '('");
  assert_parse_error(HEAD "  %2 = relu(%0) {: f32[?,4]\n}\n",
                     "t.ir:4:18: error: expected an attribute name, found ':'");
  assert_parse_error(HEAD "  %2 = relu(x) : f32[?,4]\n}\n",
                     "t.ir:4:13: error: expected a node (%N), found 'x'");
  assert_parse_error(HEAD,
                     "t.ir:4:1: error: expected a node (%N = ...), an output, a schedule or '}', found end of input");
  assert_parse_error(HEAD "  relu\n}\n",
                     "t.ir:4:3: error: expected a node (%N = ...), an output, a schedule or '}', found 'relu'");
  assert_parse_error(HEAD "  output y = %1\n}\n",
                     "t.ir:4:10: error: expected the output's role (a quoted string), found 'y'");
}
END_TEST

/* A comma promises another item. */
START_TEST(test_error_trailing_comma) {
  assert_parse_error(HEAD "  %2 = relu(%0, ) : f32[?,4]\n}\n", "t.ir:4:17: error: expected a node (%N), found ')'");
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4,]\n}\n",
                     "t.ir:4:27: error: a dimension is a size or '?', found ']'");
  assert_parse_error(HEAD "  %2 = matmul(%0, %1) {trans_a=0, trans_b=0,} : f32[?,3]\n}\n",
                     "t.ir:4:45: error: expected an attribute name, found '}'");
}
END_TEST

START_TEST(test_error_header_and_trailer) {
  assert_parse_error("", "t.ir:1:1: error: expected 'graph', found end of input");
  assert_parse_error("  // nothing\n\n grpah {\n}\n", "t.ir:3:2: error: expected 'graph', found 'grpah'");
  assert_parse_error("graph\n", "t.ir:2:1: error: expected '{', found end of input");
  assert_parse_error("graph {\n}\ngraph {\n}\n",
                     "t.ir:3:1: error: expected the end of input after the graph, found 'graph'");
  nnc_status st = {0};
  ck_assert_ptr_null(nnc_graph_parse("graph", NULL, &st));
  ck_assert_str_eq(st.msg, "<string>:1:6: error: expected '{', found end of input");
}
END_TEST

START_TEST(test_error_type_syntax) {
  assert_parse_error("graph {\n  %0 = input() {name=\"x\"} : f16[2]\n}\n",
                     "t.ir:2:29: error: unknown element type 'f16' (did you mean 'f32'?)");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\"} : f32[1,1,1,1,1,1,1]\n}\n",
                     "t.ir:2:45: error: a type has at most 6 dimensions");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\"} : f32[-1,2]\n}\n",
                     "t.ir:2:33: error: a dimension is a size or '?', found '-1'");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\"} : f32[2.5]\n}\n",
                     "t.ir:2:33: error: a dimension is a size or '?', found '2.5'");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\"} : f32[99999999999999999999]\n}\n",
                     "t.ir:2:33: error: a dimension is a size or '?', found '99999999999999999999'");
}
END_TEST

START_TEST(test_error_loc) {
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4] loc(\"a\", \"b\", \"c\")\n}\n",
                     "t.ir:4:45: error: expected ':' and a line number after the file name, found ')'");
  assert_parse_error(
      HEAD "  %2 = relu(%0) : f32[?,4] loc(\"a\", \"f\":x)\n}\n",
      "t.ir:4:41: error: the line number must be an integer from -2147483648 to 2147483647, found 'x'");
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4] loc(\"a\", \"f\":1, \"g\")\n}\n",
                     "t.ir:4:42: error: expected ')', found ','");
  assert_parse_error(HEAD "  %2 = relu(%0) : f32[?,4] loc(a)\n}\n",
                     "t.ir:4:32: error: expected the layer name (a quoted string), found 'a'");
}
END_TEST

START_TEST(test_error_output) {
  assert_parse_error(HEAD "  output \"y\" = %1\n  output \"y\" = %0\n}\n",
                     "t.ir:5:10: error: the graph already has an output named 'y'");
  assert_parse_error(HEAD "  output \"y\" %1\n}\n", "t.ir:4:14: error: expected '=', found '%1'");
}
END_TEST

START_TEST(test_error_lexical) {
  assert_parse_error("graph {\n  %0 = input() {name=\"x} : f32[?,4]\n}\n",
                     "t.ir:2:22: error: unterminated string");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\\qy\"} : f32[?,4]\n}\n",
                     "t.ir:2:24: error: unknown escape '\\q' (use \\\" \\\\ \\n \\t or \\xHH)");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\\x4\"} : f32[?,4]\n}\n",
                     "t.ir:2:24: error: \\x needs two hex digits");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\\x00\"} : f32[?,4]\n}\n",
                     "t.ir:2:24: error: a string cannot contain \\x00");
  assert_parse_error("graph {\n  %0 = input() {name=\"x\\\n\"} : f32[?,4]\n}\n",
                     "t.ir:2:22: error: unterminated string");
  assert_parse_error("graph {\n  %0 $ input()\n}\n", "t.ir:2:6: error: unexpected character '$'");
  assert_parse_error("graph {\n  %x = input()\n}\n", "t.ir:2:3: error: expected a node number after '%'");
  assert_parse_error("graph {\n  %99999999999 = input()\n}\n", "t.ir:2:3: error: node number is too large");
  assert_parse_error("graph {\n\x01}\n", "t.ir:2:1: error: unexpected byte 0x01");
  assert_parse_error("graph / {\n}\n", "t.ir:1:7: error: unexpected character '/'");
}
END_TEST

TCase *nnc_tcase_text(void) {
  TCase *tc = tcase_create("text");
  tcase_add_test(tc, test_every_op_has_a_case);
  tcase_add_loop_test(tc, test_op_case, 0, NCASES);
  tcase_add_loop_test(tc, test_activation_case, 0, NNC_OP_COUNT);
  tcase_add_test(tc, test_print_cnn);
  tcase_add_test(tc, test_print_to_file);
  tcase_add_test(tc, test_round_trip_rebatched);
  tcase_add_test(tc, test_print_empty_graph);
  tcase_add_test(tc, test_strings_escaped);
  tcase_add_test(tc, test_loc_line_without_file);
  tcase_add_test(tc, test_parse_free_form);
  tcase_add_test(tc, test_parse_float_forms);
  tcase_add_test(tc, test_error_unknown_op);
  tcase_add_test(tc, test_error_unknown_attribute);
  tcase_add_test(tc, test_error_missing_attribute);
  tcase_add_test(tc, test_error_repeated_attribute);
  tcase_add_test(tc, test_error_attribute_value);
  tcase_add_test(tc, test_error_pad_and_pair);
  tcase_add_test(tc, test_error_undefined_operand);
  tcase_add_test(tc, test_error_numbering);
  tcase_add_test(tc, test_error_type_mismatch);
  tcase_add_test(tc, test_error_shape_inference);
  tcase_add_test(tc, test_error_repeated_node);
  tcase_add_test(tc, test_error_arity);
  tcase_add_test(tc, test_error_missing_token);
  tcase_add_test(tc, test_error_trailing_comma);
  tcase_add_test(tc, test_error_header_and_trailer);
  tcase_add_test(tc, test_error_type_syntax);
  tcase_add_test(tc, test_error_loc);
  tcase_add_test(tc, test_error_output);
  tcase_add_test(tc, test_error_lexical);
  return tc;
}
