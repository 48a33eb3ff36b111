/* A model at run time: its forward graph, its weights, how it trains, and
 * the graphs compiled from it (predict, evaluate, train step) per batch size. */
#ifndef NNC_MODEL_H
#define NNC_MODEL_H

#include "passes/pass.h"
#include "passes/train.h"
#include "runtime/backend.h"
#include "runtime/collective.h"
#include "runtime/store/weights.h"

typedef enum nnc_graph_kind { NNC_KIND_PREDICT, NNC_KIND_EVAL, NNC_KIND_TRAIN } nnc_graph_kind;

/* One graph specialised to a batch size and prepared on the backend. */
typedef struct nnc_compiled {
  nnc_graph_kind kind;
  int64_t batch;
  uint64_t source_hash; /* the forward graph it came from */
  nnc_graph *g;
  nnc_exec *exec;
  void **leaves;
  int32_t input, labels, scalar;   /* leaves the step fills, or -1 */
  int32_t output, loss, correct;   /* outputs, or -1 */
} nnc_compiled;

#define NNC_MODEL_CACHE 6

typedef struct nnc_model {
  nnc_weights weights;
  nnc_train_spec spec;
  int has_spec;
  const nnc_backend *backend;
  /* The run's settings: fusion, lowering, dumps, NNC_DEBUG's level and nan
   * check (every value of every step is checked, not the loss alone), and
   * what the backend is prepared with. */
  nnc_options opts;
  uint64_t seed;
  int64_t steps; /* optimizer steps taken: Adam's t, and every dropout counter */
  int keep_grads; /* train steps also output "grad:W" (nnc check) */
  char metric[16]; /* the accuracy metric as the user named it: "accuracy" or "acc" (Keras logs that name) */
  int nan_warned;  /* the non-finite-loss warning was printed (once per fit, or once for custom loops) */
  double *profile; /* when set, per-node seconds of the graph being run (nnc bench) */
  nnc_compiled cache[NNC_MODEL_CACHE];
  int ncache;
  /* The host weights' version, bumped whenever they change on the host
   * (nnc_run_opts.params_version), and the compiled graph whose backend
   * holds newer weights than the host's, or NULL (keep_updates). */
  uint64_t weights_version;
  nnc_compiled *holder;
  /* This rank's part of a data-parallel run, or NULL for one process:
   * fit, evaluate and predict split each batch by it (runtime/train/fit.c). */
  nnc_shard *shard;
  int64_t bucket_bytes; /* of the all-reduce's buckets (--bucket-mb); 0 for NNC_BUCKET_BYTES */
} nnc_model;

void nnc_model_init(nnc_model *m, uint64_t seed);
void nnc_model_free(nnc_model *m);

/* The graph of `kind` for this batch size, compiled on first use. */
nnc_compiled *nnc_model_compiled(nnc_model *m, const nnc_graph *forward, nnc_graph_kind kind, int64_t batch,
                                 nnc_status *st);

/* Runs one batch. x has batch rows of the input's row size; y is i32 or f32
 * labels (NULL for predict). For TRAIN the weights are updated in place. */
int nnc_model_run(nnc_model *m, nnc_compiled *c, const float *x, const void *y, nnc_status *st);

/* The host weights, current: a backend that kept a train step's updates
 * on its device hands them back first. Call before reading m->weights. */
nnc_weights *nnc_model_weights(nnc_model *m);
/* After writing m->weights on the host, so that backends copy them in again. */
void nnc_model_weights_changed(nnc_model *m);

/* Copies each "update:W" output of e's last run of g into W, once the whole
 * step has run. */
void nnc_weights_take_updates(nnc_weights *w, const nnc_graph *g, const nnc_backend *b, nnc_exec *e);

/* Scalar results of the last run. */
double nnc_model_scalar(nnc_model *m, nnc_compiled *c, int32_t node);

#endif
