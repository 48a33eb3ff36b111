/* The training loop with Keras's semantics: fit, evaluate and predict over
 * whole data sets, progress output, history and EarlyStopping. */
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

typedef struct nnc_early_stop_opts {
  int enabled;
  const char *monitor; /* "val_loss", "accuracy", ... */
  int patience;
  double min_delta;
  const char *mode; /* "auto", "min", "max" */
  int restore_best_weights;
} nnc_early_stop_opts;

typedef struct nnc_fit_opts {
  int epochs;
  int64_t batch_size;
  double validation_split; /* the last ceil(rows * split) rows, taken before shuffling */
  const nnc_dataset *validation_data; /* used instead of the split when set */
  int shuffle;
  int verbose; /* 0 silent, 1 progress bar, 2 one line per epoch */
  nnc_early_stop_opts early_stopping;
  FILE *out;
} nnc_fit_opts;

/* The per-epoch metrics, as Keras's History: names like "loss", "val_accuracy". */
#define NNC_MAX_METRICS 4
typedef struct nnc_history {
  int epochs;
  int nmetrics;
  const char *names[NNC_MAX_METRICS];
  double *values[NNC_MAX_METRICS]; /* values[k][epoch] */
} nnc_history;

void nnc_history_free(nnc_history *h);

int nnc_fit(nnc_model *m, const nnc_graph *forward, const nnc_dataset *train, const nnc_fit_opts *opts,
            nnc_history *history, nnc_status *st);

/* Mean loss and accuracy over the data set, dropout off. */
int nnc_evaluate(nnc_model *m, const nnc_graph *forward, const nnc_dataset *data, int64_t batch_size, int verbose,
                 FILE *out, double *loss, double *accuracy, nnc_status *st);

/* Outputs for every row of x into out (rows * output row size floats). */
int nnc_predict(nnc_model *m, const nnc_graph *forward, const float *x, int64_t rows, int64_t x_row,
                int64_t batch_size, float *out, nnc_status *st);

#endif
