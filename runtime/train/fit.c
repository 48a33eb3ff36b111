/* fit / evaluate / predict with Keras's semantics (MODEL_SCRIPTS.md):
 * the validation split takes the last rows before shuffling, the rest is
 * reshuffled every epoch, the last batch may be partial, shown training
 * metrics are running means weighted by batch size, and validation runs
 * after each epoch with dropout off. A loss that is not finite does not end
 * training, as in Keras: the bar shows nan and one warning names the first
 * value that went bad (runtime/train/nan_trace.c). Everything else a user hooks in (EarlyStopping,
 * schedules, loggers, the history itself) is a callback. */
#include "runtime/train/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/op.h"
#include "runtime/train/finite.h"
#include "runtime/train/progress.h"
#include "runtime/rng.h"

const char *const nnc_fit_event_names[NNC_FIT_EVENTS] = {
    "on_train_begin",       "on_train_end",       "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin",  "on_test_end",
};

int nnc_split_validation(const nnc_dataset *all, double split, nnc_dataset *train, nnc_dataset *val,
                         nnc_status *st) {
  if (!(split >= 0 && split < 1)) return nnc_fail(st, "validation_split must be in [0, 1), got %g", split);
  int64_t val_rows = (int64_t)ceil((double)all->rows * split);
  *train = *all;
  *val = *all;
  train->rows = all->rows - val_rows;
  val->rows = val_rows;
  val->x = all->x + train->rows * all->x_row;
  val->y = (const char *)all->y + 4 * train->rows * all->y_row;
  if (train->rows < 1) return nnc_fail(st, "fit has no training rows left after the validation split");
  return 0;
}

static int array_start_epoch(void *ctx, int epoch, nnc_status *st) {
  (void)st;
  nnc_array_source *s = ctx;
  /* Epoch e of seed s is the same permutation on every backend. */
  if (s->shuffle) nnc_rng_shuffle(s->order, s->data.rows, s->seed, nnc_rng_stream_of("fit/shuffle"), (uint64_t)epoch);
  return 0;
}

/* In order, a batch is a view of the arrays; shuffled, its rows are gathered. */
static int array_next(void *ctx, int64_t step, nnc_batch *out, nnc_status *st) {
  (void)st;
  nnc_array_source *s = ctx;
  const nnc_dataset *d = &s->data;
  int64_t first = step * s->batch_size;
  if (first >= d->rows) return 1;
  out->rows = d->rows - first < s->batch_size ? d->rows - first : s->batch_size;
  if (!s->shuffle) {
    out->x = d->x + first * d->x_row;
    out->y = (const char *)d->y + 4 * first * d->y_row;
    return 0;
  }
  for (int64_t r = 0; r < out->rows; r++) {
    int64_t row = s->order[first + r];
    memcpy(s->x + r * d->x_row, d->x + row * d->x_row, sizeof(float) * (size_t)d->x_row);
    memcpy((char *)s->y + 4 * r * d->y_row, (const char *)d->y + 4 * row * d->y_row, 4 * (size_t)d->y_row);
  }
  out->x = s->x;
  out->y = s->y;
  return 0;
}

int nnc_array_source_init(nnc_array_source *s, const nnc_dataset *d, int64_t batch_size, int shuffle, uint64_t seed,
                          nnc_status *st) {
  memset(s, 0, sizeof *s);
  if (batch_size < 1) return nnc_fail(st, "batch_size must be positive, got %lld", (long long)batch_size);
  if (d->rows < 1) return nnc_fail(st, "fit needs at least one training row");
  s->data = *d;
  s->batch_size = batch_size;
  s->shuffle = shuffle;
  s->seed = seed;
  s->base = (nnc_batch_source){s, (d->rows + batch_size - 1) / batch_size, array_start_epoch, array_next, 0};
  if (!shuffle) return 0;
  /* A batch larger than the data holds all of it, as in Keras. */
  int64_t rows = batch_size < d->rows ? batch_size : d->rows;
  s->order = malloc(sizeof *s->order * (size_t)d->rows);
  s->x = malloc(sizeof(float) * (size_t)(rows * d->x_row));
  s->y = malloc(4 * (size_t)(rows * d->y_row));
  if (!s->order || !s->x || !s->y) {
    nnc_array_source_free(s);
    return nnc_fail(st, "out of memory for a batch of %lld rows of %lld values", (long long)rows,
                    (long long)d->x_row);
  }
  return 0;
}

void nnc_array_source_free(nnc_array_source *s) {
  free(s->order);
  free(s->x);
  free(s->y);
  s->order = NULL, s->x = NULL, s->y = NULL;
}

typedef struct sums {
  double loss, correct;
  int64_t seen;
} sums;

/* Floats per row of leaf id of c (its batch dimension is c->batch). */
static int64_t row_size(const nnc_compiled *c, int32_t id) {
  return id < 0 ? 0 : nnc_node_numel(&c->g->nodes[id]) / c->batch;
}

/* Whether batch b (from a source whose data was not checked before fit, as
 * a generator's) holds a value that is not finite in x or in float labels,
 * with a warning if so: one read of the batch, small beside the step. */
static int warn_batch(const nnc_model *m, const nnc_compiled *c, const nnc_batch *b) {
  int f32_labels = c->labels >= 0 && c->g->nodes[c->labels].dtype == NNC_F32;
  const float *data[2] = {b->x, f32_labels ? b->y : NULL};
  const int32_t leaf[2] = {c->input, c->labels};
  for (int k = 0; k < 2; k++) {
    int64_t row = row_size(c, leaf[k]), at = data[k] ? nnc_first_non_finite(data[k], b->rows * row) : -1;
    if (at < 0) continue;
    fprintf(stderr,
            "warning: the batch of step %lld from fit's generator holds %s in %s at row %lld, element %lld (1-based, "
            "in the batch); training goes on as Keras does, but the loss or the weights will likely become nan\n",
            (long long)m->steps + 1, nnc_non_finite_name(data[k][at]), k ? "y" : "x", (long long)(at / row) + 1,
            (long long)(at % row) + 1);
    return 1;
  }
  return 0;
}

/* Runs b (a global batch: this rank's rows of it when sharded) and adds
 * its loss and hits to s, summed over ranks. warned: NULL when b's data was
 * checked before, else whether a batch was found to hold a value that is
 * not finite in this fit. */
static int run_batch(nnc_model *m, const nnc_graph *forward, nnc_graph_kind kind, const nnc_batch *b, sums *s,
                     int *warned, nnc_status *st) {
  int64_t first, rows;
  if (nnc_shard_split(m->shard, b->rows, &first, &rows, st)) return -1;
  nnc_compiled *c = nnc_model_compiled(m, forward, kind, rows, st);
  if (!c) return -1;
  if (warned && !*warned) *warned = warn_batch(m, c, b);
  const float *x = b->x + first * row_size(c, c->input);
  const void *y = b->y ? (const char *)b->y + 4 * first * row_size(c, c->labels) : NULL;
  if (nnc_model_run(m, c, x, y, st)) return -1;
  double part[3] = {nnc_model_scalar(m, c, c->loss) * (double)rows, 0, (double)rows};
  if (c->correct >= 0) part[1] = nnc_model_scalar(m, c, c->correct);
  if (m->shard && nnc_comm_sum_doubles(m->shard->comm, part, 3, "the sum of the batch's loss", st)) return -1;
  s->loss += part[0];
  s->correct += part[1];
  s->seen += b->rows;
  return 0;
}

int nnc_fit_log_names(const nnc_model *m, int validation, const char **names) {
  static const char *const metric[][2] = {{"accuracy", "val_accuracy"}, {"acc", "val_acc"}};
  int k = strcmp(m->metric, "acc") == 0, n = 0;
  names[n++] = "loss";
  if (m->spec.accuracy) names[n++] = metric[k][0];
  if (validation) {
    names[n++] = "val_loss";
    if (m->spec.accuracy) names[n++] = metric[k][1];
  }
  return n;
}

/* The running means as logs named loss and the metric. */
static void logs_of(const nnc_model *m, const sums *s, nnc_logs *logs) {
  logs->n = nnc_fit_log_names(m, 0, logs->names);
  logs->values[0] = s->loss / (double)s->seen;
  if (logs->n > 1) logs->values[1] = s->correct / (double)s->seen;
}

static int is_terminal(FILE *out) { return isatty(fileno(out)); }

/* One pass over the rows of d in batches, without updates. */
static int evaluate_rows(nnc_model *m, const nnc_graph *forward, const nnc_dataset *d, int64_t batch_size,
                         nnc_progress *progress, nnc_logs *logs, nnc_status *st) {
  sums s = {0};
  for (int64_t first = 0, step = 1; first < d->rows; first += batch_size, step++) {
    nnc_batch b = {d->x + first * d->x_row, (const char *)d->y + 4 * first * d->y_row,
                   d->rows - first < batch_size ? d->rows - first : batch_size};
    if (run_batch(m, forward, NNC_KIND_EVAL, &b, &s, NULL, st)) return -1;
    logs_of(m, &s, logs);
    if (progress) nnc_progress_update(progress, step, logs->names, logs->values, logs->n, nnc_now());
  }
  return 0;
}

int nnc_evaluate(nnc_model *m, const nnc_graph *forward, const nnc_dataset *data, int64_t batch_size, int verbose,
                 FILE *out, double *loss, double *accuracy, nnc_status *st) {
  if (data->rows < 1) return nnc_fail(st, "evaluate needs at least one row");
  if (batch_size < 1) return nnc_fail(st, "batch_size must be positive, got %lld", (long long)batch_size);
  int64_t steps = (data->rows + batch_size - 1) / batch_size;
  nnc_progress *p = verbose ? nnc_progress_new(out, steps, verbose, is_terminal(out), nnc_now()) : NULL;
  nnc_logs logs = {0};
  int rc = evaluate_rows(m, forward, data, batch_size, p, &logs, st);
  if (p && rc == 0) nnc_progress_finish(p, logs.names, logs.values, logs.n, nnc_now());
  nnc_progress_free(p);
  *loss = rc == 0 ? logs.values[0] : NAN;
  *accuracy = rc == 0 && logs.n > 1 ? logs.values[1] : NAN;
  return rc;
}

static int on_batch(nnc_model *m, const nnc_graph *forward, nnc_graph_kind kind, const nnc_batch *b, double *loss,
                    double *accuracy, nnc_status *st) {
  if (b->rows < 1) return nnc_fail(st, "a batch needs at least one row");
  sums s = {0};
  if (run_batch(m, forward, kind, b, &s, NULL, st)) return -1;
  *loss = s.loss / (double)s.seen;
  *accuracy = m->spec.accuracy ? s.correct / (double)s.seen : NAN;
  return 0;
}

int nnc_train_on_batch(nnc_model *m, const nnc_graph *forward, const nnc_batch *b, double *loss, double *accuracy,
                       nnc_status *st) {
  return on_batch(m, forward, NNC_KIND_TRAIN, b, loss, accuracy, st);
}

int nnc_test_on_batch(nnc_model *m, const nnc_graph *forward, const nnc_batch *b, double *loss, double *accuracy,
                      nnc_status *st) {
  return on_batch(m, forward, NNC_KIND_EVAL, b, loss, accuracy, st);
}

/* Hands an event to the callbacks that asked for it: 1 to stop, 0, or -1. */
static int deliver(const nnc_fit_opts *o, nnc_fit_event ev, int64_t index, const nnc_logs *logs, nnc_status *st) {
  const nnc_callbacks *cb = o->callbacks;
  if (!cb || !(cb->wanted & (1u << ev))) return 0;
  return cb->event(cb->ctx, ev, index, logs, st);
}

typedef struct fit_run {
  nnc_model *m;
  const nnc_graph *forward;
  nnc_batch_source *src;
  const nnc_fit_opts *o;
  int batch_warned; /* a batch held a value that is not finite (sources not checked before fit) */
} fit_run;

/* The training batches of one epoch; their running means into logs.
 * Returns 1 when a callback stopped training, 0, or -1. */
static int train_batches(fit_run *f, int epoch, nnc_progress *p, nnc_logs *logs, nnc_status *st) {
  nnc_batch_source *src = f->src;
  sums s = {0};
  int stop = 0;
  if (src->start_epoch && src->start_epoch(src->ctx, epoch, st)) return -1;
  for (int64_t step = 0; !stop && (src->steps == 0 || step < src->steps); step++) {
    if (deliver(f->o, NNC_ON_TRAIN_BATCH_BEGIN, step, NULL, st) < 0) return -1;
    nnc_batch b;
    int rc = src->next(src->ctx, step, &b, st);
    if (rc < 0) return -1;
    if (rc > 0) break;
    if (run_batch(f->m, f->forward, NNC_KIND_TRAIN, &b, &s, src->checked ? NULL : &f->batch_warned, st))
      return nnc_fail_prefix(st, "epoch %d, step %lld: ", epoch + 1, (long long)step + 1);
    logs_of(f->m, &s, logs);
    if (p) nnc_progress_update(p, step + 1, logs->names, logs->values, logs->n, nnc_now());
    stop = deliver(f->o, NNC_ON_TRAIN_BATCH_END, step, logs, st);
    if (stop < 0) return -1;
  }
  if (s.seen == 0) return nnc_fail(st, "epoch %d: the training data gave no batch", epoch + 1);
  return stop;
}

/* Validation after an epoch, appended to the epoch's logs as val_*. */
static int validate(fit_run *f, nnc_logs *logs, nnc_status *st) {
  nnc_logs test = {0};
  if (deliver(f->o, NNC_ON_TEST_BEGIN, -1, NULL, st) < 0 ||
      evaluate_rows(f->m, f->forward, f->o->validation, f->o->batch_size, NULL, &test, st) ||
      deliver(f->o, NNC_ON_TEST_END, -1, &test, st) < 0)
    return -1;
  logs->n = nnc_fit_log_names(f->m, 1, logs->names);
  for (int k = 0; k < test.n; k++) logs->values[test.n + k] = test.values[k];
  return 0;
}

/* One epoch: batches, validation, the bar's last line, on_epoch_end.
 * Returns 1 when training is to stop, 0, or -1. */
static int fit_epoch(fit_run *f, int epoch, nnc_logs *logs, nnc_status *st) {
  const nnc_fit_opts *o = f->o;
  /* Keras's progress bar is its first callback: the header comes first. */
  if (o->verbose) nnc_progress_epoch_header(o->out, epoch, o->epochs);
  if (deliver(o, NNC_ON_EPOCH_BEGIN, epoch, NULL, st) < 0) return -1;
  nnc_progress *p =
      o->verbose ? nnc_progress_new(o->out, f->src->steps, o->verbose, is_terminal(o->out), nnc_now()) : NULL;
  int stop = train_batches(f, epoch, p, logs, st);
  if (stop >= 0 && o->validation && validate(f, logs, st))
    stop = nnc_fail_prefix(st, "validation after epoch %d: ", epoch + 1);
  if (stop >= 0 && p) nnc_progress_finish(p, logs->names, logs->values, logs->n, nnc_now());
  nnc_progress_free(p);
  if (stop < 0) return -1;
  int asked = deliver(o, NNC_ON_EPOCH_END, epoch, logs, st);
  return asked < 0 ? -1 : stop || asked;
}

int nnc_fit(nnc_model *m, const nnc_graph *forward, nnc_batch_source *train, const nnc_fit_opts *opts,
            nnc_status *st) {
  if (opts->validation && opts->batch_size < 1)
    return nnc_fail(st, "batch_size must be positive, got %lld", (long long)opts->batch_size);
  fit_run f = {m, forward, train, opts, 0};
  nnc_logs logs = {0};
  m->nan_warned = 0;
  if (deliver(opts, NNC_ON_TRAIN_BEGIN, -1, NULL, st) < 0) return -1;
  for (int epoch = 0; epoch < opts->epochs; epoch++) {
    int rc = fit_epoch(&f, epoch, &logs, st);
    if (rc < 0) return -1;
    if (rc) break;
  }
  return deliver(opts, NNC_ON_TRAIN_END, -1, &logs, st) < 0 ? -1 : 0;
}

/* Sharded, each rank predicts its rows of every batch and the outputs are
 * summed across ranks, the other rows being zero: every rank gets them all. */
int nnc_predict(nnc_model *m, const nnc_graph *forward, const float *x, int64_t rows, int64_t x_row,
                int64_t batch_size, float *out, nnc_status *st) {
  int64_t out_row = 0;
  for (int64_t begin = 0; begin < rows; begin += batch_size) {
    nnc_batch b = {x + begin * x_row, NULL, rows - begin < batch_size ? rows - begin : batch_size};
    int64_t first, count;
    if (nnc_shard_split(m->shard, b.rows, &first, &count, st)) return -1;
    nnc_compiled *c = nnc_model_compiled(m, forward, NNC_KIND_PREDICT, count, st);
    if (!c || nnc_model_run(m, c, b.x + first * x_row, NULL, st)) return -1;
    out_row = nnc_node_numel(&c->g->nodes[c->output]) / count;
    if (m->shard) memset(out + begin * out_row, 0, sizeof(float) * (size_t)(b.rows * out_row));
    memcpy(out + (begin + first) * out_row, m->backend->value(c->exec, c->output),
           sizeof(float) * (size_t)(count * out_row));
  }
  if (!m->shard) return 0;
  nnc_comm_request *r = nnc_comm_sum_start(m->shard->comm, out, rows * out_row, st);
  return r ? nnc_comm_wait(r, "the gather of predict's outputs", st) : -1;
}
