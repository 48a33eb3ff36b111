#include "passes/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/autodiff.h"
#include "ir/status.h"

/* A fresh optimizer slot for `weight` ("dense/kernel/m"), zero at the start. */
static int32_t add_slot(nnc_graph *g, const nnc_node *weight, const char *slot, nnc_status *st) {
  char name[512];
  snprintf(name, sizeof name, "%s/%s", weight->name, slot);
  return nnc_graph_leaf(g, NNC_OP_PARAM, name, NNC_F32, weight->rank, weight->shape, st);
}

/* Softmax output + cross-entropy trains on the exact log-softmax of the
 * logits (Keras does the same through from_logits); any other output is
 * treated as probabilities and clipped. */
static int run_loss(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *g = *gp;
  int32_t out = nnc_graph_output_node(g, "output");
  if (out < 0 || !ctx->train) return nnc_fail(st, "the loss pass needs a model output and a loss");
  const nnc_node o = g->nodes[out];
  g->loc = o.loc;
  int sparse = ctx->train->loss == NNC_LOSS_SPARSE_XENT;
  int32_t labels =
      nnc_graph_leaf(g, NNC_OP_INPUT, NNC_LABELS, sparse ? NNC_I32 : NNC_F32, sparse ? 1 : o.rank, o.shape, st);
  if (labels < 0) return -1;
  int32_t src[2] = {out, labels};
  nnc_op op = NNC_OP_MSE;
  if (ctx->train->loss != NNC_LOSS_MSE) {
    op = NNC_OP_XENT_PROBS;
    if (o.op == NNC_OP_SOFTMAX) op = NNC_OP_XENT_LOGITS, src[0] = o.src[0];
  }
  int32_t loss = nnc_graph_op(g, op, src, 2, NULL, st);
  if (loss < 0 || nnc_graph_add_output(g, "loss", loss, st)) return -1;
  if (!ctx->train->accuracy) return 0;
  src[0] = out;
  int32_t correct = nnc_graph_op(g, NNC_OP_CORRECT, src, 2, NULL, st);
  return correct < 0 ? -1 : nnc_graph_add_output(g, "correct", correct, st);
}

static int run_autodiff(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  (void)ctx;
  nnc_graph *g = *gp;
  int32_t loss = nnc_graph_output_node(g, "loss");
  if (loss < 0) return nnc_fail(st, "autodiff needs the loss pass first");
  int count = 0;
  int32_t *wrt = malloc(sizeof *wrt * (size_t)g->nnodes), *grads = malloc(sizeof *grads * (size_t)g->nnodes);
  if (!wrt || !grads) nnc_out_of_memory("building the train step");
  for (int32_t id = 0; id < g->nnodes; id++)
    if (g->nodes[id].op == NNC_OP_PARAM) wrt[count++] = id;
  int rc = nnc_autodiff(g, loss, wrt, count, grads, st);
  for (int i = 0; i < count && rc == 0; i++) {
    char role[512];
    snprintf(role, sizeof role, NNC_GRAD_PREFIX "%s", g->nodes[wrt[i]].name);
    rc = nnc_graph_add_output(g, role, grads[i], st);
  }
  free(wrt);
  free(grads);
  return rc;
}

static int32_t op2(nnc_graph *g, nnc_op op, int32_t a, int32_t b, const nnc_attrs *attrs, nnc_status *st) {
  int32_t src[2] = {a, b};
  return nnc_graph_op(g, op, src, 2, attrs, st);
}

static int32_t op_n(nnc_graph *g, nnc_op op, const int32_t *src, int n, const nnc_attrs *attrs, nnc_status *st) {
  return nnc_graph_op(g, op, src, n, attrs, st);
}

static int add_update(nnc_graph *g, const char *name, int32_t node, nnc_status *st) {
  char role[600];
  if (node < 0) return -1;
  snprintf(role, sizeof role, NNC_UPDATE_PREFIX "%s", name);
  return nnc_graph_add_output(g, role, node, st);
}

/* The update of weight's optimizer slot `slot` ("dense/kernel/m"). */
static int add_slot_update(nnc_graph *g, const nnc_node *weight, const char *slot, int32_t node, nnc_status *st) {
  char name[512];
  snprintf(name, sizeof name, "%s/%s", weight->name, slot);
  return add_update(g, name, node, st);
}

/* Keras 2 Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); with amsgrad
 * vhat = max(vhat, v) takes v's place in the step, w -= lr_t m / (sqrt(vhat) + eps). */
static int update_adam(nnc_graph *g, const nnc_optimizer *o, int32_t w, int32_t grad, int32_t lr_t, nnc_status *st) {
  const nnc_node weight = g->nodes[w];
  int32_t m = add_slot(g, &weight, "m", st), v = add_slot(g, &weight, "v", st);
  if (m < 0 || v < 0) return -1;
  nnc_attrs a1 = {0}, a2 = {0}, ae = {0};
  a1.alpha = (float)(1 - o->beta_1);
  a2.alpha = (float)(1 - o->beta_2);
  ae.eps = (float)o->epsilon;
  int32_t m2 = op2(g, NNC_OP_EMA, m, grad, &a1, st);
  int32_t sq = nnc_graph_op(g, NNC_OP_SQUARE, &grad, 1, NULL, st);
  int32_t v2 = sq < 0 ? -1 : op2(g, NNC_OP_EMA, v, sq, &a2, st);
  if (m2 < 0 || v2 < 0) return -1;
  int32_t denom = v2;
  if (o->amsgrad) {
    int32_t vhat = add_slot(g, &weight, "vhat", st);
    denom = vhat < 0 ? -1 : op2(g, NNC_OP_MAXIMUM, vhat, v2, NULL, st);
    if (add_slot_update(g, &weight, "vhat", denom, st)) return -1;
  }
  int32_t src[4] = {w, m2, denom, lr_t};
  if (add_update(g, weight.name, op_n(g, NNC_OP_ADAM_UPDATE, src, 4, &ae, st), st)) return -1;
  if (add_slot_update(g, &weight, "m", m2, st)) return -1;
  return add_slot_update(g, &weight, "v", v2, st);
}

/* Keras 2 RMSprop: rms = rho rms + (1 - rho) g^2, and centered also
 * mg = rho mg + (1 - rho) g, dividing by rms - mg^2 instead of rms. Without
 * momentum w -= lr g / sqrt(d + eps); with it, as TF's ApplyRMSProp kernels,
 * mom = momentum mom + lr g / sqrt(d + eps) and w -= mom. */
static int update_rmsprop(nnc_graph *g, const nnc_optimizer *o, int32_t w, int32_t grad, int32_t lr, nnc_status *st) {
  const nnc_node weight = g->nodes[w];
  int32_t v = add_slot(g, &weight, "rms", st);
  int32_t sq = nnc_graph_op(g, NNC_OP_SQUARE, &grad, 1, NULL, st);
  if (v < 0 || sq < 0) return -1;
  nnc_attrs ar = {0}, ae = {0};
  ar.alpha = (float)(1 - o->rho);
  ae.eps = (float)o->epsilon;
  ae.alpha = (float)o->momentum;
  int32_t v2 = op2(g, NNC_OP_EMA, v, sq, &ar, st);
  if (v2 < 0 || add_slot_update(g, &weight, "rms", v2, st)) return -1;
  int32_t denom = v2;
  if (o->centered) {
    int32_t mg = add_slot(g, &weight, "mg", st);
    int32_t mg2 = mg < 0 ? -1 : op2(g, NNC_OP_EMA, mg, grad, &ar, st);
    int32_t mg_sq = mg2 < 0 ? -1 : nnc_graph_op(g, NNC_OP_SQUARE, &mg2, 1, NULL, st);
    denom = mg_sq < 0 ? -1 : op2(g, NNC_OP_SUB, v2, mg_sq, NULL, st);
    if (denom < 0 || add_slot_update(g, &weight, "mg", mg2, st)) return -1;
  }
  if (o->momentum == 0) {
    int32_t src[4] = {w, grad, denom, lr};
    return add_update(g, weight.name, op_n(g, NNC_OP_RMSPROP_UPDATE, src, 4, &ae, st), st);
  }
  int32_t mom = add_slot(g, &weight, "momentum", st);
  if (mom < 0) return -1;
  int32_t src[4] = {mom, grad, denom, lr};
  int32_t mom2 = op_n(g, NNC_OP_RMSPROP_MOMENTUM, src, 4, &ae, st);
  if (mom2 < 0 || add_slot_update(g, &weight, "momentum", mom2, st)) return -1;
  return add_update(g, weight.name, op2(g, NNC_OP_SUB, w, mom2, NULL, st), st);
}

/* Keras 2 SGD: velocity = momentum * velocity - lr * g; w += velocity, or
 * with Nesterov w += momentum * velocity - lr * g. */
static int update_sgd(nnc_graph *g, const nnc_optimizer *o, int32_t w, int32_t grad, int32_t lr, nnc_status *st) {
  const nnc_node weight = g->nodes[w];
  if (o->momentum == 0) {
    int32_t src[3] = {w, grad, lr};
    return add_update(g, weight.name, op_n(g, NNC_OP_SGD_UPDATE, src, 3, NULL, st), st);
  }
  int32_t vel = add_slot(g, &weight, "momentum", st);
  if (vel < 0) return -1;
  nnc_attrs am = {0};
  am.alpha = (float)o->momentum;
  int32_t vsrc[3] = {vel, grad, lr};
  int32_t vel2 = op_n(g, NNC_OP_MOMENTUM_VELOCITY, vsrc, 3, &am, st);
  if (vel2 < 0) return -1;
  int32_t nsrc[4] = {w, vel2, grad, lr};
  int32_t w2 = o->nesterov ? op_n(g, NNC_OP_NESTEROV_UPDATE, nsrc, 4, &am, st) : op2(g, NNC_OP_ADD, w, vel2, NULL, st);
  if (add_update(g, weight.name, w2, st)) return -1;
  return add_slot_update(g, &weight, "momentum", vel2, st);
}

/* Consumes the grad:W outputs: each becomes the update of W and its slots
 * (and stays an output under keep_grads). */
static int run_optimizer(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *g = *gp;
  const nnc_optimizer *o = &ctx->train->optimizer;
  int64_t none[1] = {0};
  g->loc = (nnc_loc){0};
  const char *name = o->kind == NNC_OPT_ADAM ? NNC_ADAM_LR_T : NNC_LR;
  int32_t scalar = nnc_graph_leaf(g, NNC_OP_INPUT, name, NNC_F32, 0, none, st);
  if (scalar < 0) return -1;
  int kept = 0, rc = 0;
  int noutputs = g->noutputs;
  nnc_graph_output *outs = malloc(sizeof *outs * (size_t)(noutputs ? noutputs : 1));
  if (!outs) nnc_out_of_memory("building the train step");
  memcpy(outs, g->outputs, sizeof *outs * (size_t)noutputs);
  for (int i = 0; i < noutputs; i++)
    if (ctx->keep_grads || !nnc_output_weight(outs[i].name, NNC_GRAD_PREFIX)) g->outputs[kept++] = outs[i];
  g->noutputs = kept;
  for (int i = 0; i < noutputs && rc == 0; i++) {
    const char *weight = nnc_output_weight(outs[i].name, NNC_GRAD_PREFIX);
    if (!weight) continue;
    int32_t w = nnc_graph_find_leaf(g, NNC_OP_PARAM, weight);
    g->loc = g->nodes[w].loc;
    if (o->kind == NNC_OPT_ADAM) rc = update_adam(g, o, w, outs[i].node, scalar, st);
    else if (o->kind == NNC_OPT_RMSPROP) rc = update_rmsprop(g, o, w, outs[i].node, scalar, st);
    else rc = update_sgd(g, o, w, outs[i].node, scalar, st);
  }
  free(outs);
  return rc;
}

/* Copies the nodes some output needs into a new graph, in order. */
static int run_dce(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  (void)ctx;
  nnc_graph *g = *gp, *out = nnc_graph_new();
  char *live = calloc((size_t)g->nnodes + 1, 1);
  int32_t *map = malloc(sizeof *map * ((size_t)g->nnodes + 1));
  if (!live || !map) nnc_out_of_memory("building the train step");
  for (int i = 0; i < g->noutputs; i++) live[g->outputs[i].node] = 1;
  for (int32_t id = g->nnodes - 1; id >= 0; id--)
    if (live[id])
      for (int i = 0; i < g->nodes[id].nsrc; i++) live[g->nodes[id].src[i]] = 1;
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    if (!live[id]) continue;
    const nnc_node *n = &g->nodes[id];
    nnc_node_spec spec = {n->op, n->nsrc, {0}, n->attrs, n->name, n->dtype, n->rank, {0}};
    for (int i = 0; i < n->nsrc; i++) spec.src[i] = map[n->src[i]];
    memcpy(spec.shape, n->shape, sizeof spec.shape);
    nnc_graph_set_loc(out, n->loc.layer, n->loc.layer_type, n->loc.file, n->loc.line);
    map[id] = nnc_graph_add(out, &spec, st);
    if (map[id] < 0) rc = -1;
  }
  for (int i = 0; i < g->noutputs && rc == 0; i++)
    rc = nnc_graph_add_output(out, g->outputs[i].name, map[g->outputs[i].node], st);
  out->loc = (nnc_loc){0};
  free(live);
  free(map);
  if (rc) {
    nnc_graph_free(out);
    return -1;
  }
  nnc_graph_free(g);
  *gp = out;
  return 0;
}

const nnc_pass nnc_pass_loss = {"loss", run_loss};
const nnc_pass nnc_pass_autodiff = {"autodiff", run_autodiff};
const nnc_pass nnc_pass_optimizer = {"optimizer", run_optimizer};
const nnc_pass nnc_pass_dce = {"dce", run_dce};

double nnc_optimizer_scalar(const nnc_optimizer *opt, int64_t t) {
  if (opt->kind != NNC_OPT_ADAM) return opt->learning_rate;
  return opt->learning_rate * sqrt(1 - pow(opt->beta_2, (double)t)) / (1 - pow(opt->beta_1, (double)t));
}

const char *nnc_output_weight(const char *output, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(output, prefix, n) ? NULL : output + n;
}
