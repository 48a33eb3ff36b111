/* fit / evaluate / predict with Keras's semantics (MODEL_SCRIPTS.md):
 * the validation split takes the last rows before shuffling, the rest is
 * reshuffled every epoch, the last batch may be partial, shown training
 * metrics are running means weighted by batch size, and validation runs
 * after each epoch with dropout off. */
#include "runtime/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/op.h"
#include "runtime/early_stopping.h"
#include "runtime/progress.h"
#include "runtime/rng.h"

void nnc_history_free(nnc_history *h) {
  for (int k = 0; k < h->nmetrics; k++) free(h->values[k]);
  memset(h, 0, sizeof *h);
}

/* Batch buffers big enough for the largest batch. */
typedef struct batch_buf {
  float *x;
  void *y;
} batch_buf;

static int batch_alloc(batch_buf *b, const nnc_dataset *d, int64_t batch, nnc_status *st) {
  b->x = malloc(sizeof(float) * (size_t)(batch * d->x_row));
  b->y = malloc(4 * (size_t)(batch * d->y_row));
  if (!b->x || !b->y) return nnc_fail(st, "out of memory for a batch of %lld rows", (long long)batch);
  return 0;
}

static void batch_free(batch_buf *b) {
  free(b->x);
  free(b->y);
}

/* Copies rows order[first .. first+count) of d into the batch buffers. */
static void gather(const nnc_dataset *d, const int64_t *order, int64_t first, int64_t count, batch_buf *b) {
  for (int64_t r = 0; r < count; r++) {
    int64_t row = order ? order[first + r] : first + r;
    memcpy(b->x + r * d->x_row, d->x + row * d->x_row, sizeof(float) * (size_t)d->x_row);
    memcpy((char *)b->y + 4 * r * d->y_row, (const char *)d->y + 4 * row * d->y_row, 4 * (size_t)d->y_row);
  }
}

/* Fisher-Yates from the counter-based generator: epoch e of seed s is the
 * same permutation on every backend. */
static void shuffle(int64_t *order, int64_t n, uint64_t seed, int epoch) {
  for (int64_t i = 0; i < n; i++) order[i] = i;
  uint32_t stream = nnc_rng_stream_of("fit/shuffle");
  for (int64_t i = n - 1; i > 0; i--) {
    uint32_t r[4];
    nnc_philox(seed, stream, (uint64_t)epoch * (uint64_t)n + (uint64_t)i, r);
    int64_t j = (int64_t)(((uint64_t)r[0] * (uint64_t)(i + 1)) >> 32);
    int64_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

/* Names the first node whose value is not finite, for the NaN error. */
static void first_non_finite(nnc_model *m, nnc_compiled *c, char *buf, size_t size) {
  snprintf(buf, size, "no single node");
  for (int32_t id = 0; id < c->g->nnodes; id++) {
    const nnc_node *n = &c->g->nodes[id];
    const float *v = n->dtype == NNC_F32 ? m->backend->value(c->exec, id) : NULL;
    if (!v) continue;
    int64_t count = nnc_node_numel(n);
    for (int64_t i = 0; i < count; i++)
      if (!isfinite(v[i])) {
        char where[256];
        snprintf(buf, size, "%s (%%%d = %s%s%s%s, element %lld is %s)", nnc_node_where(c->g, id, where, sizeof where),
                 (int)id, nnc_ops[n->op].name, n->name ? " '" : "", n->name ? n->name : "", n->name ? "'" : "",
                 (long long)i, isnan(v[i]) ? "nan" : v[i] > 0 ? "inf" : "-inf");
        return;
      }
  }
}

typedef struct sums {
  double loss, correct;
  int64_t seen;
} sums;

static int run_batch(nnc_model *m, const nnc_graph *forward, nnc_graph_kind kind, const batch_buf *b, int64_t count,
                     sums *s, nnc_status *st) {
  nnc_compiled *c = nnc_model_compiled(m, forward, kind, count, st);
  if (!c || nnc_model_run(m, c, b->x, b->y, st)) return -1;
  double loss = nnc_model_scalar(m, c, c->loss);
  if (!isfinite(loss)) {
    char culprit[512];
    first_non_finite(m, c, culprit, sizeof culprit);
    return nnc_fail(st, "the loss became %s; the first value that is not finite is %s", isnan(loss) ? "nan" : "inf",
                    culprit);
  }
  s->loss += loss * (double)count;
  if (c->correct >= 0) s->correct += nnc_model_scalar(m, c, c->correct);
  s->seen += count;
  return 0;
}

static int metric_values(const sums *s, int accuracy, double *values) {
  values[0] = s->loss / (double)s->seen;
  if (accuracy) values[1] = s->correct / (double)s->seen;
  return accuracy ? 2 : 1;
}

static int is_terminal(FILE *out) { return isatty(fileno(out)); }

/* One pass over rows [0, rows) of d in batches, without updates. */
static int evaluate_rows(nnc_model *m, const nnc_graph *forward, const nnc_dataset *d, int64_t batch_size,
                         nnc_progress *progress, double *values, nnc_status *st) {
  batch_buf b = {0};
  sums s = {0};
  int rc = batch_alloc(&b, d, batch_size, st);
  const char *names[2] = {"loss", "accuracy"};
  int64_t steps = (d->rows + batch_size - 1) / batch_size;
  for (int64_t step = 0; step < steps && rc == 0; step++) {
    int64_t count = d->rows - step * batch_size < batch_size ? d->rows - step * batch_size : batch_size;
    gather(d, NULL, step * batch_size, count, &b);
    rc = run_batch(m, forward, NNC_KIND_EVAL, &b, count, &s, st);
    if (rc == 0 && progress) {
      double shown[2];
      int n = metric_values(&s, m->spec.accuracy, shown);
      nnc_progress_update(progress, step + 1, names, shown, n, nnc_now());
    }
  }
  if (rc == 0) metric_values(&s, m->spec.accuracy, values);
  batch_free(&b);
  return rc;
}

int nnc_evaluate(nnc_model *m, const nnc_graph *forward, const nnc_dataset *data, int64_t batch_size, int verbose,
                 FILE *out, double *loss, double *accuracy, nnc_status *st) {
  if (data->rows < 1) return nnc_fail(st, "evaluate needs at least one row");
  int64_t steps = (data->rows + batch_size - 1) / batch_size;
  nnc_progress *p = verbose ? nnc_progress_new(out, steps, verbose, is_terminal(out), nnc_now()) : NULL;
  double values[2] = {NAN, NAN};
  int rc = evaluate_rows(m, forward, data, batch_size, p, values, st);
  if (p && rc == 0) {
    const char *names[2] = {"loss", "accuracy"};
    nnc_progress_finish(p, names, values, m->spec.accuracy ? 2 : 1, nnc_now());
  }
  nnc_progress_free(p);
  *loss = values[0];
  *accuracy = values[1];
  return rc;
}

/* Sets up history columns: loss, accuracy, then their val_ twins. */
static void history_init(nnc_history *h, int accuracy, int validation, int epochs) {
  static const char *const names[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
  memset(h, 0, sizeof *h);
  for (int k = 0; k < 4; k++) {
    if ((k % 2 == 1 && !accuracy) || (k >= 2 && !validation)) continue;
    h->names[h->nmetrics] = names[k];
    h->values[h->nmetrics] = calloc((size_t)epochs, sizeof(double));
    if (!h->values[h->nmetrics]) abort();
    h->nmetrics++;
  }
}

static int monitored_column(const nnc_history *h, const char *monitor) {
  for (int k = 0; k < h->nmetrics; k++)
    if (!strcmp(h->names[k], monitor)) return k;
  return -1;
}

typedef struct fit_state {
  nnc_model *m;
  const nnc_graph *forward;
  nnc_dataset train, val;
  int validation;
  const nnc_fit_opts *opts;
  int64_t *order;
  batch_buf b;
} fit_state;

static int train_epoch(fit_state *f, int epoch, nnc_progress *p, double *values, nnc_status *st) {
  nnc_model *m = f->m;
  int64_t bs = f->opts->batch_size, n = f->train.rows;
  if (f->opts->shuffle) shuffle(f->order, n, m->seed, epoch);
  sums s = {0};
  const char *names[2] = {"loss", "accuracy"};
  int64_t steps = (n + bs - 1) / bs;
  for (int64_t step = 0; step < steps; step++) {
    int64_t count = n - step * bs < bs ? n - step * bs : bs;
    gather(&f->train, f->order, step * bs, count, &f->b);
    if (run_batch(m, f->forward, NNC_KIND_TRAIN, &f->b, count, &s, st))
      return nnc_fail_prefix(st, "epoch %d, step %lld: ", epoch + 1, (long long)step + 1);
    double shown[2];
    int k = metric_values(&s, m->spec.accuracy, shown);
    if (p) nnc_progress_update(p, step + 1, names, shown, k, nnc_now());
  }
  metric_values(&s, m->spec.accuracy, values);
  if (f->validation &&
      evaluate_rows(m, f->forward, &f->val, bs, NULL, values + (m->spec.accuracy ? 2 : 1), st))
    return nnc_fail_prefix(st, "validation after epoch %d: ", epoch + 1);
  return 0;
}

static int split_data(fit_state *f, const nnc_dataset *train, nnc_status *st) {
  const nnc_fit_opts *o = f->opts;
  f->train = *train;
  if (o->validation_data) {
    f->val = *o->validation_data;
    f->validation = 1;
  } else if (o->validation_split > 0) {
    if (o->validation_split >= 1) return nnc_fail(st, "validation_split must be in [0, 1), got %g", o->validation_split);
    int64_t val_rows = (int64_t)ceil((double)train->rows * o->validation_split);
    f->train.rows = train->rows - val_rows;
    f->val = *train;
    f->val.rows = val_rows;
    f->val.x = train->x + f->train.rows * train->x_row;
    f->val.y = (const char *)train->y + 4 * f->train.rows * train->y_row;
    f->validation = val_rows > 0;
  }
  if (f->train.rows < 1) return nnc_fail(st, "fit has no training rows left after the validation split");
  return 0;
}

static int fit_epochs(fit_state *f, nnc_history *h, nnc_early_stopping *es, nnc_weights *best, nnc_status *st) {
  const nnc_fit_opts *o = f->opts;
  int monitor = o->early_stopping.enabled ? monitored_column(h, o->early_stopping.monitor) : -1;
  for (int epoch = 0; epoch < o->epochs; epoch++) {
    int64_t steps = (f->train.rows + o->batch_size - 1) / o->batch_size;
    if (o->verbose) nnc_progress_epoch_header(o->out, epoch, o->epochs);
    nnc_progress *p = o->verbose ? nnc_progress_new(o->out, steps, o->verbose, is_terminal(o->out), nnc_now()) : NULL;
    double values[NNC_MAX_METRICS];
    int rc = train_epoch(f, epoch, p, values, st);
    if (rc == 0) {
      for (int k = 0; k < h->nmetrics; k++) h->values[k][epoch] = values[k];
      h->epochs = epoch + 1;
      if (p) nnc_progress_finish(p, h->names, values, h->nmetrics, nnc_now());
    }
    nnc_progress_free(p);
    if (rc) return -1;
    if (monitor < 0) continue;
    int stop = nnc_early_stopping_on_epoch(es, epoch, values[monitor], NULL);
    if (es->snapshot && nnc_weights_copy(best, nnc_model_weights(f->m), st)) return -1;
    if (es->restore) nnc_weights_restore(nnc_model_weights(f->m), best), nnc_model_weights_changed(f->m);
    if (stop) break;
  }
  return 0;
}

int nnc_fit(nnc_model *m, const nnc_graph *forward, const nnc_dataset *train, const nnc_fit_opts *opts,
            nnc_history *history, nnc_status *st) {
  fit_state f = {m, forward, {0}, {0}, 0, opts, NULL, {0}};
  memset(history, 0, sizeof *history);
  if (opts->batch_size < 1) return nnc_fail(st, "batch_size must be positive, got %lld", (long long)opts->batch_size);
  if (split_data(&f, train, st)) return -1;
  history_init(history, m->spec.accuracy, f.validation, opts->epochs > 0 ? opts->epochs : 1);
  nnc_early_stopping es;
  const nnc_early_stop_opts *eo = &opts->early_stopping;
  if (eo->enabled) {
    if (monitored_column(history, eo->monitor) < 0) {
      const char *names[NNC_MAX_METRICS + 1] = {0};
      memcpy(names, history->names, sizeof history->names[0] * (size_t)history->nmetrics);
      const char *near = nnc_closest_name(eo->monitor, names);
      return nnc_fail(st, "EarlyStopping monitors '%s', which fit does not produce%s%s%s", eo->monitor,
                      near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    }
    if (nnc_early_stopping_init(&es, eo->monitor, eo->patience, eo->min_delta, eo->mode, eo->restore_best_weights, st))
      return -1;
  }
  f.order = malloc(sizeof *f.order * (size_t)f.train.rows);
  int rc = f.order ? batch_alloc(&f.b, &f.train, opts->batch_size, st) : nnc_fail(st, "out of memory");
  if (rc == 0 && !opts->shuffle)
    for (int64_t i = 0; i < f.train.rows; i++) f.order[i] = i;
  nnc_weights best = {0};
  if (rc == 0) rc = fit_epochs(&f, history, &es, &best, st);
  nnc_weights_free(&best);
  batch_free(&f.b);
  free(f.order);
  return rc;
}

int nnc_predict(nnc_model *m, const nnc_graph *forward, const float *x, int64_t rows, int64_t x_row,
                int64_t batch_size, float *out, nnc_status *st) {
  int64_t out_row = 0;
  for (int64_t first = 0; first < rows; first += batch_size) {
    int64_t count = rows - first < batch_size ? rows - first : batch_size;
    nnc_compiled *c = nnc_model_compiled(m, forward, NNC_KIND_PREDICT, count, st);
    if (!c || nnc_model_run(m, c, x + first * x_row, NULL, st)) return -1;
    out_row = nnc_node_numel(&c->g->nodes[c->output]) / count;
    memcpy(out + first * out_row, m->backend->value(c->exec, c->output), sizeof(float) * (size_t)(count * out_row));
  }
  return 0;
}
