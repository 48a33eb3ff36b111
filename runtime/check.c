#include "runtime/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/fit.h"
#include "runtime/rng.h"

/* A model like m's, with its own copy of the weights, on backend b. */
static int clone(nnc_model *out, nnc_model *m, const nnc_backend *b, nnc_status *st) {
  nnc_model_init(out, m->seed);
  out->backend = b;
  out->spec = m->spec;
  out->has_spec = m->has_spec;
  out->no_fuse = m->no_fuse;
  out->steps = m->steps;
  return nnc_weights_copy(&out->weights, nnc_model_weights(m), st);
}

/* Step s's batch: inputs uniform in [0, 1), labels that fit the loss. */
static int make_batch(const nnc_compiled *c, const nnc_train_spec *spec, int step, float **x, void **y,
                      nnc_status *st) {
  const uint32_t xs = nnc_rng_stream_of("check/x"), ys = nnc_rng_stream_of("check/y");
  const nnc_node *in = &c->g->nodes[c->input], *lab = &c->g->nodes[c->labels];
  int64_t count = nnc_node_numel(in), n = nnc_node_numel(lab);
  const nnc_node *out = &c->g->nodes[c->output];
  int64_t classes = out->rank ? out->shape[out->rank - 1] : 1;
  *x = malloc(sizeof(float) * (size_t)(count ? count : 1));
  *y = calloc((size_t)(n ? n : 1), 4);
  if (!*x || !*y) return nnc_fail(st, "out of memory");
  uint64_t base = (uint64_t)step << 32;
  for (int64_t i = 0; i < count; i++) (*x)[i] = nnc_rng_uniform(7, xs, base + (uint64_t)i);
  for (int64_t i = 0; i < n; i++) {
    int64_t row = lab->dtype == NNC_I32 ? i : i / classes;
    int32_t label = (int32_t)(nnc_rng_uniform(7, ys, base + (uint64_t)row) * (float)classes);
    if (lab->dtype == NNC_I32) ((int32_t *)*y)[i] = label;
    else if (spec->loss == NNC_LOSS_MSE) ((float *)*y)[i] = nnc_rng_uniform(7, ys + 1, base + (uint64_t)i);
    else ((float *)*y)[i] = i % classes == label ? 1.0f : 0.0f;
  }
  return 0;
}

/* Step s's batch from the data, rows s*batch.. wrapping around. */
static int data_batch(const nnc_dataset *d, int64_t batch, int step, float **x, void **y, nnc_status *st) {
  *x = malloc(sizeof(float) * (size_t)(batch * d->x_row));
  *y = malloc(4 * (size_t)(batch * d->y_row));
  if (!*x || !*y) return nnc_fail(st, "out of memory");
  for (int64_t r = 0; r < batch; r++) {
    int64_t row = ((int64_t)step * batch + r) % d->rows;
    memcpy(*x + r * d->x_row, d->x + row * d->x_row, sizeof(float) * (size_t)d->x_row);
    memcpy((char *)*y + 4 * r * d->y_row, (const char *)d->y + 4 * row * d->y_row, 4 * (size_t)d->y_row);
  }
  return 0;
}

/* max|a - b| / max|b| over one tensor. */
static double tensor_diff(const float *a, const float *b, int64_t count) {
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < count; i++) {
    if (isnan(a[i]) != isnan(b[i])) return INFINITY;
    double d = fabs((double)a[i] - b[i]);
    if (d > worst) worst = d;
    if (fabs(b[i]) > scale) scale = fabs(b[i]);
  }
  return worst == 0 ? 0 : scale > 0 ? worst / scale : INFINITY;
}

static int run_steps(nnc_model *ref, nnc_model *test, const nnc_graph *forward, const nnc_check_opts *o,
                     nnc_check_result *r, nnc_status *st) {
  for (int s = 0; s < o->steps; s++) {
    nnc_compiled *a = nnc_model_compiled(ref, forward, NNC_KIND_TRAIN, o->batch, st);
    if (!a) return nnc_fail_prefix(st, "interp: ");
    nnc_compiled *b = nnc_model_compiled(test, forward, NNC_KIND_TRAIN, o->batch, st);
    if (!b) return nnc_fail_prefix(st, "%s: ", test->backend->name);
    float *x;
    void *y;
    int rc = o->data ? data_batch(o->data, o->batch, s, &x, &y, st) : make_batch(a, &ref->spec, s, &x, &y, st);
    if (rc == 0 && nnc_model_run(ref, a, x, y, st)) rc = nnc_fail_prefix(st, "interp: ");
    if (rc == 0 && nnc_model_run(test, b, x, y, st)) rc = nnc_fail_prefix(st, "%s: ", test->backend->name);
    free(x);
    free(y);
    if (rc) return -1;
    double la = nnc_model_scalar(ref, a, a->loss), lb = nnc_model_scalar(test, b, b->loss);
    double d = la == lb ? 0 : fabs(lb - la) / fabs(la);
    if (!(d <= r->loss_diff)) r->loss_diff = d, r->worst_step = s + 1;
    fprintf(o->out, "step %d: loss %.9g on %s, %.9g on interp: relative difference %.3g\n", s + 1, lb,
            test->backend->name, la, d);
  }
  nnc_model_weights(ref);
  for (int i = 0; i < ref->weights.count; i++) {
    const nnc_weight *w = &ref->weights.items[i], *v = nnc_weights_find(nnc_model_weights(test), w->name);
    double d = v ? tensor_diff(v->data, w->data, nnc_weight_numel(w)) : INFINITY;
    if (!(d <= r->weight_diff)) r->weight_diff = d, snprintf(r->worst_weight, sizeof r->worst_weight, "%s", w->name);
  }
  return 0;
}

int nnc_check(nnc_model *m, const nnc_graph *forward, const nnc_check_opts *o, nnc_check_result *r,
              nnc_status *st) {
  memset(r, 0, sizeof *r);
  if (!m->has_spec) return nnc_fail(st, "nnc check trains the model: compile it (model:compile) first");
  nnc_model ref, test;
  int rc = clone(&ref, m, &nnc_backend_interp, st);
  if (rc == 0) rc = clone(&test, m, o->backend, st);
  else nnc_model_init(&test, m->seed);
  if (rc == 0) {
    fprintf(o->out, "check: %s against interp, %d train steps of batch %lld from seed %llu on %s, %s\n",
            o->backend->name, o->steps, (long long)o->batch, (unsigned long long)m->seed,
            o->data ? "the script's training data" : "synthetic data", m->no_fuse ? "unfused" : "fused");
    rc = run_steps(&ref, &test, forward, o, r, st);
  }
  if (rc == 0) {
    char step[32] = "";
    if (r->worst_step) snprintf(step, sizeof step, " (step %d)", r->worst_step);
    fprintf(o->out, "largest relative difference: loss %.3g%s, weights %.3g%s%s%s\n", r->loss_diff, step,
            r->weight_diff, r->worst_weight[0] ? " (" : "", r->worst_weight, r->worst_weight[0] ? ")" : "");
    fprintf(o->out, "CHECK %s %d %.3g %.3g\n", o->backend->name, o->steps, r->loss_diff, r->weight_diff);
    if (!(r->loss_diff <= o->tolerance && r->weight_diff <= o->tolerance))
      rc = nnc_fail(st, "%s differs from interp beyond the tolerance %g: loss by %.3g%s, weights by %.3g (%s)",
                    o->backend->name, o->tolerance, r->loss_diff, step, r->weight_diff, r->worst_weight);
  }
  nnc_model_free(&ref);
  nnc_model_free(&test);
  return rc;
}
