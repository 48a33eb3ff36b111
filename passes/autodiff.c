#include "passes/autodiff.h"

#include <stdlib.h>
#include <string.h>

#include "ir/op.h"

static nnc_grad_fn *const grad_rules[NNC_OP_COUNT] = {
#define X(ENUM, name, arity, attrs, flags) [NNC_OP_##ENUM] = nnc_grad_##name,
#include "ir/ops.def"
#undef X
};

/* Marks nodes the loss depends on that themselves depend on some wrt node:
 * only those need a gradient. */
static char *needed_nodes(const nnc_graph *g, int32_t loss, const int32_t *wrt, int nwrt) {
  int32_t count = loss + 1;
  char *from_wrt = calloc((size_t)count, 1), *to_loss = calloc((size_t)count, 1);
  if (!from_wrt || !to_loss) abort();
  for (int i = 0; i < nwrt; i++)
    if (wrt[i] <= loss) from_wrt[wrt[i]] = 1;
  for (int32_t id = 0; id < count; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++)
      if (from_wrt[g->nodes[id].src[i]]) from_wrt[id] = 1;
  to_loss[loss] = 1;
  for (int32_t id = loss; id >= 0; id--)
    if (to_loss[id])
      for (int i = 0; i < g->nodes[id].nsrc; i++) to_loss[g->nodes[id].src[i]] = 1;
  for (int32_t id = 0; id < count; id++) from_wrt[id] &= to_loss[id];
  free(to_loss);
  return from_wrt;
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
  char *needed = needed_nodes(g, loss, wrt, nwrt);
  int32_t *grad = malloc(sizeof *grad * (size_t)(loss + 1));
  if (!grad) abort();
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
    if (grads[i] < 0) {
      char where[256];
      rc = nnc_fail(st, "%s does not affect the loss, so it has no gradient", nnc_node_where(g, wrt[i], where, sizeof where));
    }
  }
  free(needed);
  free(grad);
  return rc;
}
