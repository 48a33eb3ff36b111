/* The passes that turn a model's forward graph into the graphs a backend
 * runs: `loss` adds the labels, the loss and the accuracy metric (used for
 * evaluation and training); `autodiff` adds the gradient of the loss wrt
 * every parameter; `optimizer` adds the parameter updates; `dce` drops what
 * no output needs. */
#ifndef NNC_TRAIN_H
#define NNC_TRAIN_H

#include "ir/graph.h"
#include "passes/pass.h"

typedef enum nnc_loss_kind { NNC_LOSS_SPARSE_XENT, NNC_LOSS_XENT, NNC_LOSS_MSE } nnc_loss_kind;
typedef enum nnc_optimizer_kind { NNC_OPT_SGD, NNC_OPT_ADAM, NNC_OPT_RMSPROP } nnc_optimizer_kind;

typedef struct nnc_optimizer {
  nnc_optimizer_kind kind;
  double learning_rate;
  double beta_1, beta_2; /* Adam */
  double rho;            /* RMSprop */
  double momentum;       /* SGD, RMSprop */
  int nesterov;          /* SGD */
  double epsilon;        /* Adam, RMSprop */
  int amsgrad;           /* Adam: divide by the running maximum of v */
  int centered;          /* RMSprop: divide by the variance of g, not its second moment */
} nnc_optimizer;

typedef struct nnc_train_spec {
  nnc_loss_kind loss;
  int accuracy; /* add the "correct" output */
  nnc_optimizer optimizer;
} nnc_train_spec;

/* Names the runtime binds each step. */
#define NNC_LABELS "labels"
#define NNC_LR "lr"                 /* the learning rate, f32[] */
#define NNC_ADAM_LR_T "adam/lr_t"   /* lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), f32[] */
#define NNC_UPDATE_PREFIX "update:" /* output "update:W" is W's new value */
#define NNC_GRAD_PREFIX "grad:"     /* output "grad:W" is the loss's gradient with respect to W */

/* The W of an output named prefix + W, or NULL for another output. */
const char *nnc_output_weight(const char *output, const char *prefix);

/* Passes; each reads ctx->train. */
extern const nnc_pass nnc_pass_loss;
extern const nnc_pass nnc_pass_autodiff;
extern const nnc_pass nnc_pass_optimizer;
extern const nnc_pass nnc_pass_dce;

/* The f32[] scalar the train step at step t (1-based) is fed: the learning
 * rate Adam applies then (Keras's formula), else the learning rate. */
double nnc_optimizer_scalar(const nnc_optimizer *opt, int64_t t);

#endif
