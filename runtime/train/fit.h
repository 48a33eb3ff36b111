/* The training loop with Keras's semantics: fit over a source of batches,
 * evaluate and predict over whole data sets, train/test/predict on one
 * batch, progress output and Keras's callback events. */
#ifndef NNC_FIT_H
#define NNC_FIT_H

#include <stdio.h>

#include "runtime/model.h"

/* A data set: rows of x (f32) and y (i32 class indices or f32 rows). */
typedef struct nnc_dataset {
  const float *x;
  int64_t rows, x_row; /* x_row: floats per row */
  const void *y;
  nnc_dtype y_dtype;
  int64_t y_row; /* labels per row: 1 for indices */
} nnc_dataset;

/* Keras's validation_split: the last ceil(rows * split) rows, taken before
 * any shuffling, become val; train keeps the rest. */
int nnc_split_validation(const nnc_dataset *all, double split, nnc_dataset *train, nnc_dataset *val,
                         nnc_status *st);

/* One batch handed out by a source: rows of x and y that stay valid until
 * the source's next call. */
typedef struct nnc_batch {
  const float *x;
  const void *y;
  int64_t rows;
} nnc_batch;

/* Where fit's training batches come from: arrays in memory
 * (nnc_array_source), or a generator that makes them on the fly. */
typedef struct nnc_batch_source {
  void *ctx;
  int64_t steps; /* batches per epoch; 0 when unknown until the source runs dry */
  /* Before each epoch's first batch (a reshuffle). Optional. */
  int (*start_epoch)(void *ctx, int epoch, nnc_status *st);
  /* Batch `step` (0-based) of the current epoch into *out. Returns 1 when
   * the source has no more batches this epoch, 0 with a batch, -1 with st
   * set on error. */
  int (*next)(void *ctx, int64_t step, nnc_batch *out, nnc_status *st);
  /* 1 when the caller checked all of the source's data for values that are
   * not finite before fit (arrays: nnc_warn_non_finite_data); otherwise fit
   * checks each batch. */
  int checked;
} nnc_batch_source;

/* Batches of batch_size rows in order, or reshuffled every epoch from the
 * counter-based generator (the same permutation on every backend); the
 * last batch may be partial. */
typedef struct nnc_array_source {
  nnc_batch_source base;
  nnc_dataset data;
  int64_t batch_size;
  int shuffle;
  uint64_t seed;
  int64_t *order;
  float *x;
  void *y;
} nnc_array_source;

int nnc_array_source_init(nnc_array_source *s, const nnc_dataset *d, int64_t batch_size, int shuffle, uint64_t seed,
                          nnc_status *st);
void nnc_array_source_free(nnc_array_source *s);

/* Keras's callback events, in the order of its method names. */
typedef enum nnc_fit_event {
  NNC_ON_TRAIN_BEGIN,
  NNC_ON_TRAIN_END,
  NNC_ON_EPOCH_BEGIN,
  NNC_ON_EPOCH_END,
  NNC_ON_TRAIN_BATCH_BEGIN,
  NNC_ON_TRAIN_BATCH_END,
  NNC_ON_TEST_BEGIN,
  NNC_ON_TEST_END,
  NNC_FIT_EVENTS
} nnc_fit_event;

/* "on_train_begin", ...: the method a callback defines for each event. */
extern const char *const nnc_fit_event_names[NNC_FIT_EVENTS];

/* The logs Keras passes to a callback: metric names and values. */
#define NNC_MAX_LOGS 4
typedef struct nnc_logs {
  int n;
  const char *names[NNC_MAX_LOGS];
  double values[NNC_MAX_LOGS];
} nnc_logs;

/* The callbacks of one fit, behind one entry point. */
typedef struct nnc_callbacks {
  void *ctx;
  /* Bit 1u << event for each event some callback handles: only those are
   * delivered, since a batch event would otherwise cost a call per step. */
  unsigned wanted;
  /* Delivers one event: index is the epoch or batch (0-based), -1 for the
   * others. Returns 1 when training is to stop (model.stop_training), 0 to
   * go on, -1 with st set when a callback failed. */
  int (*event)(void *ctx, nnc_fit_event ev, int64_t index, const nnc_logs *logs, nnc_status *st);
} nnc_callbacks;

typedef struct nnc_fit_opts {
  int epochs;
  int64_t batch_size;             /* of the validation passes */
  const nnc_dataset *validation; /* evaluated after every epoch, or NULL */
  int verbose;                    /* 0 silent, 1 progress bar, 2 one line per epoch */
  FILE *out;
  const nnc_callbacks *callbacks; /* or NULL */
} nnc_fit_opts;

/* Trains on `train` for opts->epochs epochs. The epoch's metrics reach the
 * callbacks' on_epoch_end, which is where a history is kept. */
int nnc_fit(nnc_model *m, const nnc_graph *forward, nnc_batch_source *train, const nnc_fit_opts *opts,
            nnc_status *st);

/* The names fit logs, in order: loss, the metric, val_loss, val_<metric>;
 * returns how many (validation: whether the val_ names are included). */
int nnc_fit_log_names(const nnc_model *m, int validation, const char **names);

/* Mean loss and accuracy over the data set, dropout off. */
int nnc_evaluate(nnc_model *m, const nnc_graph *forward, const nnc_dataset *data, int64_t batch_size, int verbose,
                 FILE *out, double *loss, double *accuracy, nnc_status *st);

/* Keras's train_on_batch and test_on_batch: one step on these rows (updating
 * the weights for train), with the same compiled graphs as fit; the loss and
 * accuracy of this batch alone. */
int nnc_train_on_batch(nnc_model *m, const nnc_graph *forward, const nnc_batch *b, double *loss, double *accuracy,
                       nnc_status *st);
int nnc_test_on_batch(nnc_model *m, const nnc_graph *forward, const nnc_batch *b, double *loss, double *accuracy,
                      nnc_status *st);

/* Outputs for every row of x into out (rows * output row size floats). */
int nnc_predict(nnc_model *m, const nnc_graph *forward, const float *x, int64_t rows, int64_t x_row,
                int64_t batch_size, float *out, nnc_status *st);

#endif
