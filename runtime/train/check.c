#include "runtime/train/check.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/train/check_update.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/train/fit.h"
#include "runtime/rng.h"

/* A model like m's, with its own copy of the weights, on backend b. */
static int clone(nnc_model *out, nnc_model *m, const nnc_backend *b, nnc_status *st) {
  nnc_model_init(out, m->seed);
  out->backend = b;
  out->spec = m->spec;
  out->has_spec = m->has_spec;
  out->opts = m->opts;
  out->keep_grads = 1;
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

/* max|a - b| over the step's change, max|b - before|, plus the float
 * rounding of the values themselves. A step moves a weight by a small part
 * of its size, so measured against the weight a wrong update would pass. */
static double update_diff(const float *a, const float *b, const float *before, int64_t count) {
  double worst = 0, change = 0, size = 0;
  for (int64_t i = 0; i < count; i++) {
    if (isnan(a[i]) != isnan(b[i])) return INFINITY;
    worst = fmax(worst, fabs((double)a[i] - b[i]));
    change = fmax(change, fabs((double)b[i] - before[i]));
    size = fmax(size, fabs((double)b[i]));
  }
  double scale = change + FLT_EPSILON * size;
  return worst == 0 ? 0 : scale > 0 ? worst / scale : INFINITY;
}

/* Keeps the larger of *worst and d, naming what it came from. */
static void note_worst(double d, const char *what, double *worst, char *name, size_t size) {
  if (!(d <= *worst)) *worst = d, snprintf(name, size, "%s", what);
}

/* ||g_test - g_interp|| / ||g_interp|| over all of the step's gradients
 * together, naming the tensor with the largest share of the difference. A
 * bias gradient sums thousands of terms that mostly cancel, so its own
 * relative error is large in float32 whichever order it is summed in. */
static void compare_grads(nnc_model *ref, nnc_compiled *a, nnc_model *test, nnc_compiled *b, double *diff,
                          char *worst, size_t size) {
  double num = 0, den = 0, most = -1;
  for (int i = 0; i < a->g->noutputs; i++) {
    const nnc_graph_output *o = &a->g->outputs[i];
    const char *weight = nnc_output_weight(o->name, NNC_GRAD_PREFIX);
    if (!weight) continue;
    int32_t other = nnc_graph_output_node(b->g, o->name);
    const float *want = ref->backend->value(a->exec, o->node);
    const float *got = other >= 0 ? test->backend->value(b->exec, other) : NULL;
    double share = 0;
    for (int64_t j = 0, n = nnc_node_numel(&a->g->nodes[o->node]); want && got && j < n; j++) {
      share += ((double)got[j] - want[j]) * ((double)got[j] - want[j]);
      den += (double)want[j] * want[j];
    }
    if (!want || !got || isnan(share)) share = INFINITY;
    num += share;
    if (!(share <= most)) most = share, snprintf(worst, size, "%s", weight);
  }
  *diff = num == 0 ? 0 : den > 0 ? sqrt(num / den) : INFINITY;
}

/* Whether the train step updates weight `name` other than by the
 * optimizer: a state leaf with an update output (BatchNormalization's moving
 * statistics, which follow the batch the forward pass saw). */
static int state_updated(const nnc_graph *g, const char *name) {
  if (nnc_graph_find_leaf(g, NNC_OP_STATE, name) < 0) return 0;
  for (int i = 0; i < g->noutputs; i++) {
    const char *w = nnc_output_weight(g->outputs[i].name, NNC_UPDATE_PREFIX);
    if (w && !strcmp(w, name)) return 1;
  }
  return 0;
}

/* The test's weights and slots against the interpreter's update made from
 * the test's own gradients (runtime/train/check_update.c); a state the step
 * updates against the interpreter's own step (ref_after), on the same batch
 * from the same weights. */
static int compare_update(nnc_model *test, nnc_compiled *b, const nnc_weights *before, const nnc_weights *ref_after,
                          int64_t step, double *diff, char *worst, size_t size, nnc_status *st) {
  nnc_check_step s = {b->g, test->backend, b->exec, &test->spec, step, before};
  nnc_weights want = {0};
  if (nnc_check_reference_update(&s, &want, st)) {
    nnc_weights_free(&want);
    return nnc_fail_prefix(st, "the reference update: ");
  }
  const nnc_weights *got = nnc_model_weights(test);
  for (int i = 0; i < want.count; i++) {
    const nnc_weight *w = &want.items[i], *v = nnc_weights_find(got, w->name), *b = nnc_weights_find(before, w->name);
    if (state_updated(s.train, w->name)) w = nnc_weights_find(ref_after, w->name);
    if (!w) w = &want.items[i];
    double d = v && b ? update_diff(v->data, w->data, b->data, nnc_weight_numel(w)) : INFINITY;
    note_worst(d, w->name, diff, worst, size);
  }
  nnc_weights_free(&want);
  return 0;
}

/* Runs step s on both models from the same weights and slots. */
static int run_both(nnc_model *ref, nnc_compiled *a, nnc_model *test, nnc_compiled *b, const nnc_check_opts *o,
                    int s, nnc_status *st) {
  float *x;
  void *y;
  int rc = o->data ? data_batch(o->data, o->batch, s, &x, &y, st) : make_batch(a, &ref->spec, s, &x, &y, st);
  if (rc == 0 && nnc_model_run(ref, a, x, y, st)) rc = nnc_fail_prefix(st, "interp: ");
  if (rc == 0 && nnc_model_run(test, b, x, y, st)) rc = nnc_fail_prefix(st, "%s: ", test->backend->name);
  free(x);
  free(y);
  return rc;
}

/* One step, both models starting from the interpreter's weights, so each
 * step's differences are its own and do not compound. */
static int check_step(nnc_model *ref, nnc_model *test, const nnc_graph *forward, const nnc_check_opts *o, int s,
                      nnc_check_result *r, nnc_status *st) {
  nnc_compiled *a = nnc_model_compiled(ref, forward, NNC_KIND_TRAIN, o->batch, st);
  if (!a) return nnc_fail_prefix(st, "interp: ");
  nnc_compiled *b = nnc_model_compiled(test, forward, NNC_KIND_TRAIN, o->batch, st);
  if (!b) return nnc_fail_prefix(st, "%s: ", test->backend->name);
  nnc_weights before = {0};
  if (nnc_weights_copy(&before, nnc_model_weights(ref), st)) {
    nnc_weights_free(&before);
    return -1;
  }
  nnc_weights_restore(nnc_model_weights(test), &before);
  nnc_model_weights_changed(test);
  int64_t step = test->steps + 1;
  nnc_check_result now = {.worst_grad = "none", .worst_weight = "none"};
  int rc = run_both(ref, a, test, b, o, s, st);
  if (rc == 0) {
    compare_grads(ref, a, test, b, &now.grad_diff, now.worst_grad, sizeof now.worst_grad);
    rc = compare_update(test, b, &before, nnc_model_weights(ref), step, &now.weight_diff, now.worst_weight,
                        sizeof now.worst_weight, st);
  }
  nnc_weights_free(&before);
  if (rc) return -1;
  double la = nnc_model_scalar(ref, a, a->loss), lb = nnc_model_scalar(test, b, b->loss);
  double d = la == lb ? 0 : fabs(lb - la) / fabs(la);
  if (!(d <= r->loss_diff)) r->loss_diff = d, r->worst_step = s + 1;
  fprintf(o->out, "step %d: loss %.9g on %s, %.9g on interp (%.3g); gradients %.3g (most in %s); update %.3g (%s)\n",
          s + 1, lb, test->backend->name, la, d, now.grad_diff, now.worst_grad, now.weight_diff, now.worst_weight);
  note_worst(now.grad_diff, now.worst_grad, &r->grad_diff, r->worst_grad, sizeof r->worst_grad);
  note_worst(now.weight_diff, now.worst_weight, &r->weight_diff, r->worst_weight, sizeof r->worst_weight);
  return 0;
}

static const double TOLERANCE = 1e-4, GRAD_TOLERANCE = 1e-3;
static const double TF32_TOLERANCE = 1e-2, TF32_GRAD_TOLERANCE = 1e-1;

void nnc_check_tolerances(const nnc_backend *b, const nnc_options *opts, double *tolerance, double *grad_tolerance) {
  int tf32 = nnc_cuda_backend_tf32(b, opts);
  *tolerance = tf32 ? TF32_TOLERANCE : TOLERANCE;
  *grad_tolerance = tf32 ? TF32_GRAD_TOLERANCE : GRAD_TOLERANCE;
}

int nnc_check(nnc_model *m, const nnc_graph *forward, const nnc_check_opts *given, nnc_check_result *r,
              nnc_status *st) {
  nnc_check_opts resolved = *given, *o = &resolved;
  double tol, grad_tol;
  nnc_check_tolerances(o->backend, &m->opts, &tol, &grad_tol);
  if (o->tolerance < 0) o->tolerance = tol;
  if (o->grad_tolerance < 0) o->grad_tolerance = grad_tol;
  *r = (nnc_check_result){.worst_grad = "none", .worst_weight = "none"};
  if (!m->has_spec) return nnc_fail(st, "nnc check trains the model: compile it (model:compile) first");
  nnc_model ref, test;
  int rc = clone(&ref, m, &nnc_backend_interp, st);
  if (rc == 0) rc = clone(&test, m, o->backend, st);
  else nnc_model_init(&test, m->seed);
  if (rc == 0) {
    fprintf(o->out, "check: %s against interp, %d train steps of batch %lld from seed %llu on %s, %s%s\n",
            o->backend->name, o->steps, (long long)o->batch, (unsigned long long)m->seed,
            o->data ? "the script's training data" : "synthetic data", m->opts.no_fuse ? "unfused" : "fused",
            nnc_cuda_backend_tf32(o->backend, &m->opts) ? ", GEMMs on TF32 tensor cores" : "");
    for (int s = 0; s < o->steps && rc == 0; s++) rc = check_step(&ref, &test, forward, o, s, r, st);
  }
  if (rc == 0) {
    char step[32] = "";
    if (r->worst_step) snprintf(step, sizeof step, " (step %d)", r->worst_step);
    fprintf(o->out, "largest relative difference: loss %.3g%s, gradients %.3g (most in %s), update %.3g (%s)\n",
            r->loss_diff, step, r->grad_diff, r->worst_grad, r->weight_diff, r->worst_weight);
    fprintf(o->out, "CHECK %s %d %.3g %.3g %.3g\n", o->backend->name, o->steps, r->loss_diff, r->grad_diff,
            r->weight_diff);
    int ok = r->loss_diff <= o->tolerance && r->weight_diff <= o->tolerance && r->grad_diff <= o->grad_tolerance;
    if (!ok)
      rc = nnc_fail(st,
                    "%s differs from interp: loss by %.3g%s, update by %.3g (%s) against the tolerance %g; "
                    "gradients by %.3g (most in %s) against %g",
                    o->backend->name, r->loss_diff, step, r->weight_diff, r->worst_weight, o->tolerance,
                    r->grad_diff, r->worst_grad, o->grad_tolerance);
  }
  nnc_model_free(&ref);
  nnc_model_free(&test);
  return rc;
}
