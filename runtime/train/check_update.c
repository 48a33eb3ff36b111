/* The interpreter's optimizer step on another backend's gradients, for nnc
 * check. Comparing two backends' weights after a step would measure Adam's
 * conditioning more than either backend: at step 1 it moves each weight by
 * about lr * g / (|g| + 1e-7), so a gradient element that rounding moves
 * by 1e-7 near zero moves its weight by up to lr. The backend's update is
 * therefore checked against the one the interpreter makes from the same
 * gradients. The graph is the optimizer pass itself, run on the gradients as
 * inputs, so the check and training share one definition of each update. */
#include "runtime/train/check_update.h"

#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/train.h"
#include "ir/status.h"

/* Param W and input "grad:W" for each gradient output of the train graph,
 * then the optimizer pass: the graph of updates a train step ends with. */
static nnc_graph *update_graph(const nnc_graph *train, const nnc_train_spec *spec, nnc_status *st) {
  nnc_graph *g = nnc_graph_new();
  for (int i = 0; i < train->noutputs; i++) {
    const nnc_graph_output *o = &train->outputs[i];
    const char *weight = nnc_output_weight(o->name, NNC_GRAD_PREFIX);
    if (!weight) continue;
    const nnc_node *grad = &train->nodes[o->node];
    int32_t input = nnc_graph_leaf(g, NNC_OP_INPUT, o->name, NNC_F32, grad->rank, grad->shape, st);
    if (nnc_graph_leaf(g, NNC_OP_PARAM, weight, NNC_F32, grad->rank, grad->shape, st) < 0 || input < 0 ||
        nnc_graph_add_output(g, o->name, input, st)) {
      nnc_graph_free(g);
      return NULL;
    }
  }
  nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY, .train = spec};
  if (nnc_pass_optimizer.run(&g, &ctx, st)) {
    nnc_graph_free(g);
    return NULL;
  }
  return g;
}

/* Points the update graph's leaves at the weights, the backend's gradients
 * and the step's scalar. */
static int bind_leaves(const nnc_graph *g, void **leaves, const nnc_check_step *s, float *scalar, nnc_status *st) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->op == NNC_OP_PARAM) {
      nnc_weight *w = nnc_weights_find(s->before, n->name);
      if (!w) return nnc_fail(st, "no weight '%s' before the step", n->name);
      leaves[id] = w->data;
    } else if (n->op == NNC_OP_INPUT && nnc_output_weight(n->name, NNC_GRAD_PREFIX)) {
      int32_t node = nnc_graph_output_node(s->train, n->name);
      leaves[id] = node >= 0 ? (void *)s->backend->value(s->exec, node) : NULL;
      if (!leaves[id]) return nnc_fail(st, "the backend kept no '%s'", n->name);
    } else if (n->op == NNC_OP_INPUT) {
      leaves[id] = scalar;
    }
  }
  return 0;
}

int nnc_check_reference_update(const nnc_check_step *s, nnc_weights *after, nnc_status *st) {
  nnc_graph *g = update_graph(s->train, s->spec, st);
  if (!g) return -1;
  void **leaves = calloc((size_t)g->nnodes + 1, sizeof *leaves);
  if (!leaves) nnc_out_of_memory("the check's reference update");
  float scalar = (float)nnc_optimizer_scalar(&s->spec->optimizer, s->step);
  nnc_run_opts opts = {0};
  const nnc_backend *interp = &nnc_backend_interp;
  const nnc_options defaults = {0};
  nnc_exec *e = interp->prepare(g, &defaults, st);
  int rc = e ? bind_leaves(g, leaves, s, &scalar, st) : -1;
  if (rc == 0) rc = interp->run(e, leaves, &opts, st);
  if (rc == 0) rc = nnc_weights_copy(after, s->before, st); /* the caller frees it either way */
  if (rc == 0) nnc_weights_take_updates(after, g, interp, e);
  if (e) interp->release(e);
  free(leaves);
  nnc_graph_free(g);
  return rc;
}
