#include "passes/autodiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"

static nnc_grad_fn *const grad_rules[NNC_OP_COUNT] = {
#define X(ENUM, name, arity, attrs, flags) [NNC_OP_##ENUM] = nnc_grad_##name,
#include "ir/ops.def"
#include "ir/status.h"
#undef X
};

/* Marks the nodes the loss depends on (itself included). */
static char *reaching_loss(const nnc_graph *g, int32_t loss) {
  char *to_loss = calloc((size_t)loss + 1, 1);
  if (!to_loss) nnc_out_of_memory("the autodiff pass");
  to_loss[loss] = 1;
  for (int32_t id = loss; id >= 0; id--)
    if (to_loss[id])
      for (int i = 0; i < g->nodes[id].nsrc; i++) to_loss[g->nodes[id].src[i]] = 1;
  return to_loss;
}

/* Marks nodes the loss depends on that themselves depend on some wrt node:
 * only those need a gradient. */
static char *needed_nodes(const nnc_graph *g, int32_t loss, const char *to_loss, const int32_t *wrt, int nwrt) {
  char *from_wrt = calloc((size_t)loss + 1, 1);
  if (!from_wrt) nnc_out_of_memory("the autodiff pass");
  for (int i = 0; i < nwrt; i++)
    if (wrt[i] <= loss) from_wrt[wrt[i]] = 1;
  for (int32_t id = 0; id <= loss; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++)
      if (from_wrt[g->nodes[id].src[i]]) from_wrt[id] = 1;
  for (int32_t id = 0; id <= loss; id++) from_wrt[id] &= to_loss[id];
  return from_wrt;
}

/* Says why node `id` got no gradient, naming a leaf by its name. */
static int no_gradient(const nnc_graph *g, int32_t id, int reaches_loss, nnc_status *st) {
  const nnc_node *n = &g->nodes[id];
  char where[256], what[512];
  nnc_node_where(g, id, where, sizeof where);
  if (n->name && n->loc.layer) snprintf(what, sizeof what, "%s: %s '%s'", where, nnc_ops[n->op].name, n->name);
  else if (n->name) snprintf(what, sizeof what, "%s '%s'", nnc_ops[n->op].name, n->name);
  else snprintf(what, sizeof what, "%s", where);
  if (reaches_loss)
    return nnc_fail(st, "%s reaches the loss only through operands that take no gradient (labels, targets), so it "
                    "has no gradient", what);
  return nnc_fail(st, "%s does not affect the loss, so it has no gradient", what);
}

/* Sums gradient contributions from several consumers. */
static int accumulate(nnc_graph *g, int32_t *slot, int32_t contribution, nnc_status *st) {
  if (*slot < 0) {
    *slot = contribution;
    return 0;
  }
  int32_t src[2] = {*slot, contribution};
  *slot = nnc_graph_op(g, NNC_OP_ADD, src, 2, NULL, st);
  return *slot < 0 ? -1 : 0;
}

static int check_grad_type(const nnc_graph *g, int32_t source, int32_t grad, nnc_status *st) {
  const nnc_node *s = &g->nodes[source], *d = &g->nodes[grad];
  char where[256], ts[128], td[128];
  if (s->rank != d->rank || memcmp(s->shape, d->shape, sizeof s->shape[0] * (size_t)s->rank))
    return nnc_fail(st, "%s: its gradient has type %s, the value has %s", nnc_node_where(g, source, where, sizeof where),
                    nnc_type_str(d, td, sizeof td), nnc_type_str(s, ts, sizeof ts));
  return 0;
}

static int backprop_node(nnc_graph *g, int32_t id, int32_t *grad, const char *needed, nnc_status *st) {
  nnc_node n = g->nodes[id];
  int32_t dsrc[NNC_MAX_SRC] = {-1, -1, -1, -1};
  g->loc = n.loc; /* gradient nodes cite the layer they differentiate */
  if (grad_rules[n.op](g, &n, id, grad[id], dsrc, st)) return -1;
  for (int i = 0; i < n.nsrc; i++) {
    if (dsrc[i] < 0 || !needed[n.src[i]]) continue;
    if (check_grad_type(g, n.src[i], dsrc[i], st)) return -1;
    if (accumulate(g, &grad[n.src[i]], dsrc[i], st)) return -1;
  }
  return 0;
}

int nnc_autodiff(nnc_graph *g, int32_t loss, const int32_t *wrt, int nwrt, int32_t *grads, nnc_status *st) {
  char where[256], type[128];
  if (loss < 0 || loss >= g->nnodes) return nnc_fail(st, "autodiff: the loss %%%d does not exist", (int)loss);
  if (g->nodes[loss].rank != 0 || g->nodes[loss].dtype != NNC_F32)
    return nnc_fail(st, "%s: the loss must be an f32[] scalar, got %s", nnc_node_where(g, loss, where, sizeof where),
                    nnc_type_str(&g->nodes[loss], type, sizeof type));
  for (int i = 0; i < nwrt; i++)
    if (wrt[i] < 0 || wrt[i] >= g->nnodes)
      return nnc_fail(st, "autodiff: gradient source %%%d does not exist", (int)wrt[i]);
  char *to_loss = reaching_loss(g, loss);
  char *needed = needed_nodes(g, loss, to_loss, wrt, nwrt);
  int32_t *grad = malloc(sizeof *grad * (size_t)(loss + 1));
  if (!grad) nnc_out_of_memory("the autodiff pass");
  for (int32_t id = 0; id <= loss; id++) grad[id] = -1;
  nnc_loc saved = g->loc;
  int rc = 0;
  for (int32_t id = loss; id >= 0 && rc == 0; id--) {
    if (!needed[id] || (grad[id] < 0 && id != loss)) continue;
    rc = backprop_node(g, id, grad, needed, st);
  }
  g->loc = saved;
  for (int i = 0; i < nwrt && rc == 0; i++) {
    grads[i] = wrt[i] <= loss ? grad[wrt[i]] : -1;
    if (grads[i] < 0) rc = no_gradient(g, wrt[i], wrt[i] <= loss && to_loss[wrt[i]], st);
  }
  free(to_loss);
  free(needed);
  free(grad);
  return rc;
}
