/* Shared by the cpu suite's files: building small graphs, filling their
 * leaves, running a backend and comparing values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/rng.h"
#include "tests/cpu/suites.h"
#include "tests/testutil.h"

void cputest_parse_type(const char *text, nnc_node_spec *spec) {
  spec->dtype = strncmp(text, "i32", 3) == 0 ? NNC_I32 : NNC_F32;
  const char *p = strchr(text, '[');
  ck_assert_msg(p != NULL, "bad type '%s'", text);
  spec->rank = 0;
  for (p++; *p && *p != ']';) {
    ck_assert_int_lt(spec->rank, NNC_MAX_RANK);
    char *end;
    spec->shape[spec->rank++] = strtoll(p, &end, 10);
    ck_assert_msg(end != p, "bad type '%s'", text);
    p = *end == ',' ? end + 1 : end;
  }
}

int32_t cputest_leaf(nnc_graph *g, nnc_op op, const char *name, const char *type) {
  nnc_status st = {0};
  nnc_node_spec spec = {.op = op, .name = name};
  cputest_parse_type(type, &spec);
  int32_t id = nnc_graph_add(g, &spec, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

int32_t cputest_op(nnc_graph *g, nnc_op op, const int32_t *src, int nsrc, const nnc_attrs *attrs) {
  nnc_status st = {0};
  int32_t id = nnc_graph_op(g, op, src, nsrc, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

void **cputest_leaves(const nnc_graph *g, unsigned positive, int classes) {
  void **leaves = calloc((size_t)g->nnodes, sizeof *leaves);
  int nth = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (!(nnc_ops[n->op].flags & NNC_OPF_LEAF)) continue;
    int64_t count = nnc_node_numel(n);
    leaves[id] = malloc(sizeof(float) * (size_t)(count ? count : 1));
    for (int64_t i = 0; i < count; i++) {
      float u = nnc_rng_uniform(1234, (uint32_t)id, (uint64_t)i);
      if (n->dtype == NNC_I32)
        ((int32_t *)leaves[id])[i] = (int32_t)(u * (float)classes) % classes;
      else if (n->rank == 0)
        ((float *)leaves[id])[i] = 0.01f;
      else
        ((float *)leaves[id])[i] = positive >> nth & 1 ? u + 0.05f : 2 * u - 1;
    }
    nth++;
  }
  return leaves;
}

void cputest_leaves_free(const nnc_graph *g, void **leaves) {
  for (int32_t id = 0; id < g->nnodes; id++) free(leaves[id]);
  free(leaves);
}

nnc_exec *cputest_run(const nnc_backend *b, const nnc_graph *g, void **leaves, const nnc_run_opts *opts) {
  nnc_status st = {0};
  nnc_exec *e = b->prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e != NULL, "%s: %s", b->name, st.msg);
  ck_assert_msg(b->run(e, leaves, opts, &st) == 0, "%s: %s", b->name, st.msg);
  return e;
}

void cputest_expect_close(const char *what, const float *got, const float *want, int64_t count, double tol) {
  for (int64_t i = 0; i < count; i++) {
    int ok = isnan(want[i]) ? isnan(got[i]) != 0
             : isinf(want[i]) ? got[i] == want[i]
                              : fabs((double)got[i] - want[i]) <= tol * (fabs(want[i]) + 1);
    ck_assert_msg(ok, "%s: element %lld is %.9g, the interpreter's is %.9g", what, (long long)i, got[i], want[i]);
  }
}

void cputest_start_model(nnc_model *m, const nnc_backend *b, const nnc_graph *g, const nnc_optimizer *opt,
                         uint64_t seed, uint64_t weight_seed, float scale) {
  nnc_model_init(m, seed);
  m->opts = *nnc_test_options(); /* NNC_CPU_POISON, as tests/cpu/main.c sets it */
  m->backend = b;
  m->spec.loss = NNC_LOSS_SPARSE_XENT;
  m->spec.accuracy = 1;
  m->spec.optimizer = *opt;
  m->has_spec = 1;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->op != NNC_OP_PARAM) continue;
    nnc_status st = {0};
    nnc_weight *w = nnc_weights_add(&m->weights, n->name, n->rank, n->shape, &st);
    ck_assert_msg(w != NULL, "%s", st.msg);
    for (int64_t i = 0; i < nnc_weight_numel(w); i++)
      w->data[i] = scale * (2 * nnc_rng_uniform(weight_seed, nnc_rng_stream_of(n->name), (uint64_t)i) - 1);
  }
}
