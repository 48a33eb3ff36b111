#include "runtime/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/batch_norm.h"
#include "runtime/train/nan_trace.h"

void nnc_model_init(nnc_model *m, uint64_t seed) {
  memset(m, 0, sizeof *m);
  m->seed = seed;
  m->backend = &nnc_backend_interp;
  m->weights_version = 1;
  strcpy(m->metric, "accuracy");
}

static void apply_updates(nnc_model *m, nnc_compiled *c);

nnc_weights *nnc_model_weights(nnc_model *m) {
  if (m->holder) {
    apply_updates(m, m->holder);
    m->holder = NULL;
    nnc_model_weights_changed(m);
  }
  return &m->weights;
}

void nnc_model_weights_changed(nnc_model *m) { m->weights_version++; }

static void compiled_free(nnc_model *m, nnc_compiled *c) {
  if (m->holder == c) nnc_model_weights(m);
  if (c->exec) m->backend->release(c->exec);
  nnc_graph_free(c->g);
  free(c->leaves);
  memset(c, 0, sizeof *c);
}

void nnc_model_free(nnc_model *m) {
  for (int i = 0; i < m->ncache; i++) compiled_free(m, &m->cache[i]);
  nnc_weights_free(&m->weights);
  if (m->shard) nnc_shard_free(m->shard);
  free(m->shard);
  memset(m, 0, sizeof *m);
}

static const char *kind_label(nnc_graph_kind kind) {
  return kind == NNC_KIND_TRAIN ? "train-step" : kind == NNC_KIND_EVAL ? "eval" : "predict";
}

/* The pipeline of each kind of graph (ARCHITECTURE.md, "Passes"). */
static int run_pipeline(nnc_model *m, nnc_graph **g, nnc_graph_kind kind, int64_t batch, nnc_status *st) {
  const nnc_pass *passes[12];
  int n = 0;
  passes[n++] = &nnc_pass_verify;
  if (kind == NNC_KIND_TRAIN) passes[n++] = &nnc_pass_batch_norm;
  if (kind != NNC_KIND_PREDICT) passes[n++] = &nnc_pass_loss;
  int ranks = m->shard ? m->shard->ranks : 1;
  if (kind == NNC_KIND_TRAIN) {
    passes[n++] = &nnc_pass_autodiff;
    if (ranks > 1) passes[n++] = &nnc_pass_allreduce;
    passes[n++] = &nnc_pass_optimizer;
  }
  passes[n++] = &nnc_pass_dce;
  if (!m->opts.no_fuse) passes[n++] = &nnc_pass_fuse;
  passes[n++] = &nnc_pass_infer_shapes;
  passes[n++] = &nnc_pass_schedule;
  passes[n++] = &nnc_pass_plan_memory;
  nnc_pass_ctx ctx = {.opts = &m->opts, .batch = batch, .train = &m->spec,
                      .caps = m->backend->caps, .keep_grads = m->keep_grads, .ranks = ranks,
                      .bucket_bytes = m->bucket_bytes};
  nnc_dump_opts dump = m->opts.dump;
  dump.label = kind_label(kind);
  /* Dump each kind once, not once per batch size. */
  for (int i = 0; i < m->ncache; i++)
    if (m->cache[i].kind == kind) dump.enabled = 0;
  return nnc_pass_run(g, passes, n, &ctx, &dump, st);
}

static int32_t find_input(const nnc_graph *g, const char *name) {
  for (int32_t id = 0; id < g->nnodes; id++)
    if (g->nodes[id].op == NNC_OP_INPUT && (!name || !strcmp(g->nodes[id].name, name))) return id;
  return -1;
}

/* The model's data input: the one input leaf that is not a label or scalar. */
static int32_t data_input(const nnc_graph *g) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->op == NNC_OP_INPUT && strcmp(n->name, NNC_LABELS) && strcmp(n->name, NNC_LR) &&
        strcmp(n->name, NNC_ADAM_LR_T))
      return id;
  }
  return -1;
}

/* Points every weight leaf at its weight, creating optimizer slots (zeros). */
static int bind_params(nnc_model *m, nnc_compiled *c, nnc_status *st) {
  for (int32_t id = 0; id < c->g->nnodes; id++) {
    const nnc_node *n = &c->g->nodes[id];
    if (!nnc_op_is_weight(n->op)) continue;
    nnc_weight *w = nnc_weights_find(&m->weights, n->name);
    if (!w) w = nnc_weights_add(&m->weights, n->name, n->rank, n->shape, st);
    if (!w) return -1;
    c->leaves[id] = w->data;
  }
  return 0;
}

static int compile_into(nnc_model *m, nnc_compiled *c, const nnc_graph *forward, nnc_graph_kind kind, int64_t batch,
                        nnc_status *st) {
  c->kind = kind, c->batch = batch, c->source_hash = nnc_graph_hash(forward);
  if ((kind != NNC_KIND_PREDICT && !m->has_spec))
    return nnc_fail(st, "the model must be compiled (model:compile) before it is trained or evaluated");
  c->g = nnc_graph_with_batch(forward, NNC_DIM_ANY, st);
  if (!c->g || run_pipeline(m, &c->g, kind, batch, st)) return -1;
  c->leaves = calloc((size_t)c->g->nnodes + 1, sizeof *c->leaves);
  if (!c->leaves) return nnc_fail(st, "out of memory");
  c->input = data_input(c->g);
  c->labels = find_input(c->g, NNC_LABELS);
  c->scalar = find_input(c->g, m->spec.optimizer.kind == NNC_OPT_ADAM ? NNC_ADAM_LR_T : NNC_LR);
  c->output = nnc_graph_output_node(c->g, "output");
  c->loss = nnc_graph_output_node(c->g, "loss");
  c->correct = nnc_graph_output_node(c->g, "correct");
  if (bind_params(m, c, st)) return -1;
  c->exec = m->backend->prepare(c->g, &m->opts, st);
  return c->exec ? 0 : -1;
}

nnc_compiled *nnc_model_compiled(nnc_model *m, const nnc_graph *forward, nnc_graph_kind kind, int64_t batch,
                                 nnc_status *st) {
  uint64_t hash = nnc_graph_hash(forward);
  for (int i = 0; i < m->ncache; i++) {
    nnc_compiled *c = &m->cache[i];
    if (c->kind == kind && c->batch == batch && c->source_hash == hash) return c;
  }
  /* A full cache drops its oldest entry: at most two batch sizes per kind are live in a fit. */
  if (m->ncache == NNC_MODEL_CACHE) {
    compiled_free(m, &m->cache[0]);
    memmove(&m->cache[0], &m->cache[1], sizeof m->cache[0] * (NNC_MODEL_CACHE - 1));
    m->ncache--;
    if (m->holder) m->holder--; /* it moved down with the others */
  }
  nnc_compiled *c = &m->cache[m->ncache];
  memset(c, 0, sizeof *c);
  if (compile_into(m, c, forward, kind, batch, st)) {
    compiled_free(m, c);
    return NULL;
  }
  m->ncache++;
  return c;
}

void nnc_weights_take_updates(nnc_weights *w, const nnc_graph *g, const nnc_backend *b, nnc_exec *e) {
  for (int i = 0; i < g->noutputs; i++) {
    const char *name = nnc_output_weight(g->outputs[i].name, NNC_UPDATE_PREFIX);
    nnc_weight *to = name ? nnc_weights_find(w, name) : NULL;
    const void *value = to ? b->value(e, g->outputs[i].node) : NULL;
    if (value) memcpy(to->data, value, sizeof(float) * (size_t)nnc_weight_numel(to));
  }
}

static void apply_updates(nnc_model *m, nnc_compiled *c) {
  nnc_weights_take_updates(&m->weights, c->g, m->backend, c->exec);
}

int nnc_model_run(nnc_model *m, nnc_compiled *c, const float *x, const void *y, nnc_status *st) {
  float scalar = 0;
  int training = c->kind == NNC_KIND_TRAIN;
  if (training) scalar = (float)nnc_optimizer_scalar(&m->spec.optimizer, m->steps + 1);
  if (c->input >= 0) c->leaves[c->input] = (void *)x;
  if (c->labels >= 0) c->leaves[c->labels] = (void *)y;
  if (c->scalar >= 0) c->leaves[c->scalar] = &scalar;
  /* Under NNC_DEBUG=nan the weights a step starts from stay on the host, so
   * that a step that makes a value that is not finite can run again. */
  int keep = training && m->backend->keeps_updates && !m->opts.debug_nan;
  /* Another graph's backend may hold the newest weights. */
  if (m->holder && m->holder != c) nnc_model_weights(m);
  if (m->shard && m->shard->rows != c->batch)
    return nnc_fail(st, "under mpirun, only fit, evaluate, predict, train_on_batch, test_on_batch and nnc bench "
                        "split batches over ranks");
  int32_t found = -1;
  nnc_run_opts opts = {training, m->seed, (uint64_t)m->steps, m->profile, m->weights_version, keep, m->shard,
                       m->opts.debug_nan ? &found : NULL};
  int rc = m->backend->run(c->exec, c->leaves, &opts, st);
  if (m->shard) {
    nnc_collective_finish(m->shard); /* a backend that stopped early leaves none in flight */
    if (nnc_collective_status(m->shard, st)) rc = -1;
  }
  if (rc) return -1;
  nnc_nan_trace(m, c, &opts, found);
  if (training) {
    if (keep) {
      m->holder = c;
    } else {
      apply_updates(m, c);
      /* a backend with memory of its own copies the new weights in */
      if (m->backend->keeps_updates) nnc_model_weights_changed(m);
    }
    m->steps++;
  }
  return 0;
}

double nnc_model_scalar(nnc_model *m, nnc_compiled *c, int32_t node) {
  const float *v = node >= 0 ? m->backend->value(c->exec, node) : NULL;
  return v ? *v : NAN;
}
