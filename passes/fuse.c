/* The fuse pass: groups nodes that a backend runs as one kernel (see
 * nnc_group in ir/graph.h). Rules, tried in this order:
 *
 *  epilogue   conv2d or matmul, then bias_add of its result, then the
 *             inference form of batch normalization (scale_shift: a scale
 *             and a shift per channel, which bn_fold computed from the
 *             moving statistics, gamma and beta), then an activation (relu,
 *             sigmoid, tanh; softmax after matmul, the Dense-softmax head at
 *             inference, where the backend applies softmax as an epilogue:
 *             not the GPU backends, whose GEMM tiles do not hold whole rows); bias_add or scale_shift may be missing, not
 *             both: they and the activation are applied to each output tile
 *             while it is still in cache, instead of more passes over memory.
 *             Folding batch normalization this way is what inference engines
 *             do by rewriting the weights, without touching the weights.
 *  grad-act   a gradient anchor (conv2d_grad_input, or the matmul that
 *             computes dy @ w^T) followed by the previous layer's activation
 *             gradient (relu_grad, ...): the backward twin of `epilogue`.
 *  pool-grad  max_pool_grad, then the activation gradient that reads its
 *             result as dy (relu_grad, ...), with the dropout gradient that
 *             feeds it dy when there is one: dropout -> max_pool_grad ->
 *             relu_grad after every conv block that ends in MaxPooling and
 *             Dropout. The dropout runs as a prologue on each image's dy and
 *             the activation gradient on each finished image, so dy, the
 *             routed gradient and the masked one are each touched while in
 *             cache rather than in three passes. (Folding the bias_grad that
 *             follows into these groups was measured and left out: on the
 *             cpu backend a bias_grad re-reads a tensor just written, from
 *             cache, and costs under 0.5% of a VGG train step.)
 *  pointwise  a run of pointwise ops over tensors of one size (relu_grad,
 *             dropout, add, and the optimizer updates: square, ema,
 *             adam_update, ...): one loop instead of one pass per op, so a
 *             parameter's whole optimizer update reads each value once.
 *
 * With --lower (on a backend that honours it, NNC_CAPS_LIBRARY), a node
 * that runs as a cuBLAS or cuDNN call (nnc_schedule_lib) anchors no
 * epilogue or grad-act group: the library writes the plain product, so its
 * bias_add and activation (or the activation gradient) fuse by the
 * pointwise rule instead, bias_add counting as pointwise in x.
 *
 * Softmax + cross-entropy in training needs no rule here: the loss pass
 * already trains on xent_logits, the exact log-softmax of the logits, whose
 * gradient op computes the softmax itself.
 *
 * An anchor's intermediate results must have no other reader, so nothing
 * outside the group ever needs them; a pointwise group may export several
 * members (an Adam update exports m, v and w). */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/pass.h"
#include "passes/schedule.h"
#include "ir/status.h"

typedef struct uses {
  int *count;     /* readers of each node, outputs included */
  int32_t *first; /* the one reader, valid when count == 1 */
} uses;

static uses count_uses(const nnc_graph *g) {
  uses u = {calloc((size_t)g->nnodes + 1, sizeof(int)), malloc(sizeof(int32_t) * ((size_t)g->nnodes + 1))};
  if (!u.count || !u.first) nnc_out_of_memory("the fuse pass");
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int32_t s = g->nodes[id].src[i];
      if (u.count[s]++ == 0) u.first[s] = id;
    }
  for (int i = 0; i < g->noutputs; i++) u.count[g->outputs[i].node] += 2; /* never fused away */
  return u;
}

static int single_reader(const nnc_graph *g, const uses *u, int32_t id, nnc_op want) {
  if (u->count[id] != 1) return -1;
  int32_t r = u->first[id];
  return g->nodes[r].op == want && g->nodes[r].group < 0 ? r : -1;
}

static int is_activation(nnc_op op, int allow_softmax) {
  return nnc_pointwise[op].kind == NNC_PW_ACTIVATION || (allow_softmax && op == NNC_OP_SOFTMAX);
}

static int is_activation_grad(nnc_op op) {
  return nnc_pointwise[op].kind == NNC_PW_ACTIVATION_GRAD;
}

/* The one reader of `id` when it is an ungrouped `want` reading id as its
 * operand 0 (and only there), else -1. */
static int32_t epilogue_reader(const nnc_graph *g, const uses *u, int32_t id, nnc_op want) {
  int32_t r = single_reader(g, u, id, want);
  return r >= 0 && g->nodes[r].src[0] == id && g->nodes[r].src[1] != id ? r : -1;
}

/* conv2d/matmul -> [bias_add] -> [scale_shift] -> [activation], at least one
 * of the first two. */
static int rule_epilogue(nnc_graph *g, const uses *u, int32_t id, int softmax, nnc_status *st) {
  nnc_op op = g->nodes[id].op;
  if (op != NNC_OP_CONV2D && op != NNC_OP_MATMUL) return 0;
  int32_t members[4] = {id};
  int n = 1;
  int32_t next = epilogue_reader(g, u, id, NNC_OP_BIAS_ADD);
  if (next >= 0) members[n++] = next;
  next = epilogue_reader(g, u, members[n - 1], NNC_OP_SCALE_SHIFT);
  int bn = next >= 0;
  if (bn) members[n++] = next;
  if (n == 1) return 0;
  if (u->count[members[n - 1]] == 1) {
    int32_t act = u->first[members[n - 1]];
    if (g->nodes[act].group < 0 && is_activation(g->nodes[act].op, op == NNC_OP_MATMUL && softmax)) members[n++] = act;
  }
  const char *rule = op == NNC_OP_CONV2D ? (bn ? "conv2d+bias+bn+act" : "conv2d+bias+act")
                                         : (bn ? "matmul+bias+bn+act" : "matmul+bias+act");
  return nnc_graph_add_group(g, rule, members, n, st) < 0 ? -1 : 1;
}

/* conv2d_grad_input / dy @ w^T -> activation gradient, reading it as dy. */
static int rule_grad_act(nnc_graph *g, const uses *u, int32_t id, nnc_status *st) {
  const nnc_node *n = &g->nodes[id];
  int anchor = n->op == NNC_OP_CONV2D_GRAD_INPUT || (n->op == NNC_OP_MATMUL && n->attrs.trans_b);
  if (!anchor || u->count[id] != 1) return 0;
  int32_t r = u->first[id];
  if (g->nodes[r].group >= 0 || !is_activation_grad(g->nodes[r].op) || g->nodes[r].src[1] != id) return 0;
  int32_t members[2] = {id, r};
  const char *rule = n->op == NNC_OP_MATMUL ? "matmul-grad+act-grad" : "conv2d-grad+act-grad";
  return nnc_graph_add_group(g, rule, members, 2, st) < 0 ? -1 : 1;
}

/* [dropout ->] max_pool_grad -> activation gradient, reading it as dy. */
static int rule_pool_grad(nnc_graph *g, const uses *u, int32_t id, nnc_status *st) {
  const nnc_node *n = &g->nodes[id];
  if (n->op != NNC_OP_MAX_POOL_GRAD) return 0;
  int32_t members[3];
  int count = 0;
  int32_t dy = n->src[1];
  if (g->nodes[dy].op == NNC_OP_DROPOUT && g->nodes[dy].group < 0 && n->src[0] != dy &&
      single_reader(g, u, dy, NNC_OP_MAX_POOL_GRAD) == id)
    members[count++] = dy;
  members[count++] = id;
  if (u->count[id] == 1) {
    int32_t r = u->first[id];
    const nnc_node *act = &g->nodes[r];
    if (act->group < 0 && is_activation_grad(act->op) && act->src[1] == id && act->src[0] != id) members[count++] = r;
  }
  if (count < 2) return 0;
  return nnc_graph_add_group(g, "pool-grad", members, count, st) < 0 ? -1 : 1;
}

static int is_pointwise(const nnc_node *n) {
  return (nnc_ops[n->op].flags & (NNC_OPF_ELEMENTWISE | NNC_OPF_UPDATE)) != 0 || n->op == NNC_OP_BIAS_ADD ||
         n->op == NNC_OP_SCALE_SHIFT || n->op == NNC_OP_SCALE_SHIFT_GRAD;
}

static int reads_any(const nnc_node *n, const int32_t *members, int count) {
  for (int i = 0; i < n->nsrc; i++)
    for (int k = 0; k < count; k++)
      if (n->src[i] == members[k]) return 1;
  return 0;
}

static int32_t find_root(int32_t *parent, int32_t x) {
  while (parent[x] != x) x = parent[x] = parent[parent[x]];
  return x;
}

/* Joins ungrouped pointwise nodes of one size that feed each other: an Adam
 * update's square, two emas and adam_update form one set. */
static int32_t *pointwise_sets(const nnc_graph *g) {
  int32_t *parent = malloc(sizeof *parent * ((size_t)g->nnodes + 1));
  if (!parent) nnc_out_of_memory("the fuse pass");
  for (int32_t id = 0; id < g->nnodes; id++) parent[id] = id;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->group >= 0 || !is_pointwise(n)) continue;
    for (int i = 0; i < n->nsrc; i++) {
      const nnc_node *s = &g->nodes[n->src[i]];
      if (s->group < 0 && is_pointwise(s) && nnc_node_numel(s) == nnc_node_numel(n))
        parent[find_root(parent, n->src[i])] = find_root(parent, id);
    }
  }
  return parent;
}

/* Turns the set of `seed` (its smallest id) into groups in id order, cutting
 * wherever an outside node would read a member before the group has run. */
static int group_set(nnc_graph *g, int32_t *parent, int32_t seed, nnc_status *st) {
  int32_t root = find_root(parent, seed), members[NNC_MAX_GROUP];
  int count = 0;
  for (int32_t id = seed; id <= g->nnodes; id++) {
    int in_set = id < g->nnodes && g->nodes[id].group < 0 && find_root(parent, id) == root;
    int cut = id == g->nnodes || count == NNC_MAX_GROUP ||
              (!in_set && count && reads_any(&g->nodes[id], members, count));
    if (cut) {
      if (count >= 2 && nnc_graph_add_group(g, "pointwise", members, count, st) < 0) return -1;
      count = 0;
    }
    if (in_set) members[count++] = id;
    if (id == g->nnodes) break;
  }
  return 0;
}

static int rule_pointwise_all(nnc_graph *g, nnc_status *st) {
  int32_t *parent = pointwise_sets(g);
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->group >= 0 || !is_pointwise(n) || find_root(parent, id) == id) continue;
    /* Only the set's first node starts it: the others are reached from there. */
    int first = 1;
    for (int32_t j = 0; j < id && first; j++) first = !(g->nodes[j].group < 0 && is_pointwise(&g->nodes[j]) && find_root(parent, j) == find_root(parent, id));
    if (first) rc = group_set(g, parent, id, st);
  }
  free(parent);
  return rc;
}

/* What the backend declares (passes/schedule.h); without caps (the
 * interpreter) every fused group runs node by node, softmax among them. */
static int softmax_epilogue(const nnc_pass_ctx *ctx) {
  return !ctx->caps || (ctx->caps->op(NNC_OP_SOFTMAX) & NNC_CAN_EPILOGUE) != 0;
}

/* Whether id may anchor an epilogue or grad-act group: not when it runs as
 * a library call. */
static int may_anchor(const nnc_graph *g, int32_t id, const nnc_pass_ctx *ctx) {
  return g->nodes[id].group < 0 && nnc_schedule_lib(nnc_pass_options(ctx), g, id, ctx->caps) == NNC_LIB_OWN;
}

static int run_fuse(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *g = *gp;
  uses u = count_uses(g);
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && rc >= 0; id++)
    if (may_anchor(g, id, ctx)) rc = rule_epilogue(g, &u, id, softmax_epilogue(ctx), st);
  for (int32_t id = 0; id < g->nnodes && rc >= 0; id++)
    if (may_anchor(g, id, ctx)) rc = rule_grad_act(g, &u, id, st);
  for (int32_t id = 0; id < g->nnodes && rc >= 0; id++)
    if (g->nodes[id].group < 0) rc = rule_pool_grad(g, &u, id, st);
  if (rc >= 0) rc = rule_pointwise_all(g, st);
  free(u.count);
  free(u.first);
  return rc < 0 ? -1 : 0;
}

const nnc_pass nnc_pass_fuse = {"fuse", run_fuse};
