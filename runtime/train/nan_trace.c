#include "runtime/train/nan_trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/train/finite.h"

typedef struct bad {
  int32_t node; /* -1: none */
  int64_t element;
} bad;

static bad bad_in(const nnc_graph *g, void *const *values, int32_t id) {
  return (bad){id, nnc_value_non_finite(&g->nodes[id], values[id])};
}

/* The first computed node whose value is not finite, in run order. */
static bad first_computed(const nnc_graph *g, void *const *values) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF) continue;
    bad b = bad_in(g, values, id);
    if (b.element >= 0) return b;
  }
  return (bad){-1, -1};
}

/* The first leaf among ids[0..n) (every node when ids is NULL) that
 * already held such a value. */
static bad first_leaf(const nnc_graph *g, void *const *values, const int32_t *ids, int n) {
  for (int i = 0; i < (ids ? n : g->nnodes); i++) {
    int32_t id = ids ? ids[i] : i;
    if (!(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)) continue;
    bad b = bad_in(g, values, id);
    if (b.element >= 0) return b;
  }
  return (bad){-1, -1};
}

static const char *value_name(void *const *values, bad b) {
  return nnc_non_finite_name(((const float *)values[b.node])[b.element]);
}

/* A leaf the step read: the batch's x or y by row (of the global batch
 * under mpirun) and element, a weight (as it was before the step), or the
 * learning rate. */
static void describe_leaf(const nnc_model *m, const nnc_compiled *c, void *const *values, bad b, char *buf,
                          size_t size) {
  const nnc_node *n = &c->g->nodes[b.node];
  int64_t rows = c->batch > 0 ? c->batch : 1, row = nnc_node_numel(n) / rows;
  int64_t first = m->shard ? m->shard->first_row : 0;
  const char *v = value_name(values, b);
  if (b.node == c->input || b.node == c->labels)
    snprintf(buf, size, "the batch's %s, which already held %s at row %lld, element %lld (1-based, in the batch)",
             b.node == c->input ? "x" : "y", v, (long long)(first + b.element / row) + 1,
             (long long)(b.element % row) + 1);
  else if (nnc_op_is_weight(n->op))
    snprintf(buf, size, "the weight '%s', which already held %s before the step (element %lld)", n->name, v,
             (long long)b.element + 1);
  else snprintf(buf, size, "the input '%s', which already held %s", n->name ? n->name : "?", v);
}

/* Where node id sits in the step: the forward pass, the backward pass (the
 * gradients, which autodiff puts after every forward output), or the
 * optimizer's update of a weight. */
static const char *phase(const nnc_compiled *c, int32_t id, char *buf, size_t size) {
  int32_t last_forward = -1;
  for (int i = 0; i < c->g->noutputs; i++) {
    const nnc_graph_output *o = &c->g->outputs[i];
    const char *w = nnc_output_weight(o->name, NNC_UPDATE_PREFIX);
    if (w && o->node == id) return snprintf(buf, size, "the update of %s", w), buf;
    if (!w && !nnc_output_weight(o->name, NNC_GRAD_PREFIX) && o->node > last_forward) last_forward = o->node;
  }
  if (nnc_ops[c->g->nodes[id].op].flags & NNC_OPF_UPDATE) return "the optimizer's update";
  return c->kind == NNC_KIND_TRAIN && id > last_forward ? "the backward pass" : "the forward pass";
}

/* The interpreter's step has every value finite, where the backend's
 * made one that is not (found, or -1 when only the loss showed it). */
static void backend_differs(const nnc_model *m, const nnc_compiled *c, int32_t found, char *buf, size_t size) {
  char where[256] = "its loss";
  if (found >= 0) {
    int len = snprintf(where, sizeof where, "%%%d = %s at ", (int)found, nnc_ops[c->g->nodes[found].op].name);
    if (len > 0 && (size_t)len < sizeof where) nnc_node_where(c->g, found, where + len, sizeof where - (size_t)len);
  }
  snprintf(buf, size,
           "not made on the reference interpreter, whose run of the step has every value finite; the %s backend "
           "made %s not finite (nnc check compares the two)",
           m->backend->name, where);
}

/* The first value that is not finite in the interpreter's values of the
 * step, and what it was made from. */
static void culprit(const nnc_model *m, const nnc_compiled *c, void *const *values, int32_t found, char *buf,
                    size_t size) {
  const nnc_graph *g = c->g;
  bad first = first_computed(g, values);
  char leaf[512];
  if (first.node < 0) {
    bad held = first_leaf(g, values, NULL, 0);
    if (held.node < 0) return backend_differs(m, c, found, buf, size);
    describe_leaf(m, c, values, held, leaf, sizeof leaf);
    snprintf(buf, size, "%s", leaf);
    return;
  }
  const nnc_node *n = &g->nodes[first.node];
  char where[256], when[160];
  nnc_node_where(g, first.node, where, sizeof where);
  int len = snprintf(buf, size, "%s (%%%d = %s in %s, element %lld is %s)", where, (int)first.node,
                     nnc_ops[n->op].name, phase(c, first.node, when, sizeof when), (long long)first.element + 1,
                     value_name(values, first));
  bad held = first_leaf(g, values, n->src, n->nsrc);
  if (held.node >= 0) describe_leaf(m, c, values, held, leaf, sizeof leaf);
  else snprintf(leaf, sizeof leaf, "finite operands");
  if (len > 0 && (size_t)len < size) snprintf(buf + len, size - (size_t)len, ", computed from %s", leaf);
}

/* Runs c's graph again on the interpreter with the leaves the step read,
 * then names the culprit; the run's buffers are freed before returning. */
static void replay(nnc_model *m, nnc_compiled *c, const nnc_run_opts *opts, int32_t found, char *buf, size_t size) {
  const nnc_graph *g = c->g;
  void **values = calloc((size_t)g->nnodes + 1, sizeof *values);
  if (!values) {
    snprintf(buf, size, "unknown: no memory to run the step again on the reference interpreter");
    return;
  }
  for (int32_t id = 0; id < g->nnodes; id++)
    if (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF) values[id] = c->leaves[id];
  /* This rank's rows alone under mpirun (the all-reduce of one rank is the
   * identity), each drawing the dropout mask it drew in the step. */
  const nnc_shard *s = m->shard;
  nnc_shard local = {.ranks = 1};
  if (s) local.first_row = s->first_row, local.rows = s->rows, local.global_rows = s->global_rows;
  nnc_run_opts again = {opts->training, opts->seed, opts->step, .shard = s ? &local : NULL};
  nnc_status st = {0};
  if (nnc_interp_run(g, values, &again, &st))
    snprintf(buf, size, "unknown: running the step again on the reference interpreter failed: %.400s", st.msg);
  else culprit(m, c, values, found, buf, size);
  nnc_interp_free(g, values);
  free(values);
}

/* "the loss became nan at step 3", or that the NNC_DEBUG=nan check saw a
 * value that is not finite. */
static void event(const nnc_model *m, const nnc_compiled *c, double loss, char *buf, size_t size) {
  char when[96];
  long long step = (long long)m->steps;
  int len = c->kind == NNC_KIND_TRAIN ? snprintf(when, sizeof when, "at step %lld", step + 1)
                                      : snprintf(when, sizeof when, "in %s after step %lld",
                                                 c->kind == NNC_KIND_EVAL ? "evaluation" : "predict", step);
  /* each rank checks its own rows */
  if (m->shard && len > 0 && (size_t)len < sizeof when)
    snprintf(when + len, sizeof when - (size_t)len, " on rank %d", m->shard->rank);
  if (c->loss >= 0 && !isfinite(loss))
    snprintf(buf, size, "the loss became %s %s", nnc_non_finite_name((float)loss), when);
  else snprintf(buf, size, "NNC_DEBUG=nan saw a value that is not finite %s", when);
}

/* NNC_DEBUG=nan on a backend that does not look at each value as it is
 * made (cuda): the first output (the loss, an update) that is not finite. */
static int32_t output_non_finite(nnc_model *m, const nnc_compiled *c) {
  for (int i = 0; i < c->g->noutputs; i++) {
    int32_t id = c->g->outputs[i].node;
    if (nnc_value_non_finite(&c->g->nodes[id], m->backend->value(c->exec, id)) >= 0) return id;
  }
  return -1;
}

void nnc_nan_trace(nnc_model *m, nnc_compiled *c, const nnc_run_opts *opts, int32_t found) {
  if (m->nan_warned) return;
  if (m->opts.debug_nan && found < 0) found = output_non_finite(m, c);
  double loss = c->loss >= 0 ? nnc_model_scalar(m, c, c->loss) : 0;
  if (isfinite(loss) && found < 0) return;
  m->nan_warned = 1;
  char what[192], where[1024];
  event(m, c, loss, what, sizeof what);
  if (opts->keep_updates)
    snprintf(where, sizeof where,
             "unknown: the %s backend keeps the weights on its device, so the step cannot run again from the weights "
             "it started from (NNC_DEBUG=nan keeps them and names it)",
             m->backend->name);
  else replay(m, c, opts, found, where, sizeof where);
  fprintf(stderr, "warning: %s; the first value that is not finite is %s\n", what, where);
}
