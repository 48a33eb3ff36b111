/* The batch-norm pass, run on train steps only: each BatchNormalization
 * layer whose gamma trains leaves its inference form,
 *   scale_shift(x, bn_fold(moving_mean, moving_variance, gamma, beta)),
 * for its training form,
 *   batch_norm_train(x, stats = bn_stats(x), gamma, beta),
 * and the step gains the moving statistics' updates, outputs beside the
 * optimizer's:
 *   update:moving_mean     = bn_moving(moving_mean, stats) {momentum, row 0}
 *   update:moving_variance = bn_moving(moving_variance, stats) {momentum, row 1 or 2}
 * i.e. moving = moving * momentum + batch * (1 - momentum), once per step.
 *
 * Which variance feeds moving_variance follows Keras 2's own layer. On a 4-D
 * (or 5-D) input it takes the fused path, tf.compat.v1.nn.fused_batch_norm
 * with exponential_avg_factor = 1 - momentum, and TF's FusedBatchNorm kernel
 * averages the batch variance times n/(n-1) (Bessel's correction, n values
 * per channel) into the running variance; the layer's
 * _bessels_correction_test_only leaves it so. On any other rank it takes the
 * plain path, nn.moments, whose variance is the biased one. Both paths
 * normalize the batch with the biased variance. So row 2 of bn_stats (the
 * corrected variance) on rank 4 and 5, row 1 (biased) elsewhere.
 *
 * A layer whose gamma and beta are state leaves or constants (trainable=false)
 * keeps its inference form and its moving statistics, as Keras 2 runs a
 * frozen BatchNormalization in inference mode. One with neither weight has
 * nothing to freeze; the frontend refuses trainable=false on it. */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/batch_norm.h"
#include "passes/train.h"
#include "ir/status.h"

/* Whether node n is a BatchNormalization layer that trains: its gamma or
 * beta is a param, or it has neither (scale=false and center=false, both
 * constants), as Keras trains such a layer on the batch's statistics. */
static int trains(const nnc_graph *g, const nnc_node *n) {
  if (n->op != NNC_OP_SCALE_SHIFT) return 0;
  const nnc_node *fold = &g->nodes[n->src[1]];
  if (fold->op != NNC_OP_BN_FOLD) return 0;
  nnc_op gamma = g->nodes[fold->src[2]].op, beta = g->nodes[fold->src[3]].op;
  return gamma == NNC_OP_PARAM || beta == NNC_OP_PARAM || (gamma == NNC_OP_FILL && beta == NNC_OP_FILL);
}

/* The row of bn_stats that feeds moving_variance for an input of this rank. */
int nnc_bn_moving_variance_row(int rank) { return rank == 4 || rank == 5 ? 2 : 1; }

static int32_t copy_node(nnc_graph *out, const nnc_node *n, const int32_t *map, nnc_status *st) {
  nnc_node_spec spec = {n->op, n->nsrc, {0}, n->attrs, n->name, n->dtype, n->rank, {0}};
  for (int i = 0; i < n->nsrc; i++) spec.src[i] = map[n->src[i]];
  memcpy(spec.shape, n->shape, sizeof spec.shape);
  return nnc_graph_add(out, &spec, st);
}

/* The moving-statistics updates, added as outputs after the model's own. */
typedef struct updates {
  int count;
  int32_t *leaf, *node;
} updates;

static int add_moving_update(nnc_graph *out, updates *u, int32_t leaf, int32_t moving, int32_t stats,
                             const nnc_attrs *fold, int row, nnc_status *st) {
  nnc_attrs a = {0};
  a.alpha = fold->alpha;
  a.index = row;
  int32_t src[2] = {moving, stats};
  int32_t update = nnc_graph_op(out, NNC_OP_BN_MOVING, src, 2, &a, st);
  if (update < 0) return -1;
  u->leaf[u->count] = leaf, u->node[u->count++] = update;
  return 0;
}

/* Node id's training form in out, its value in map[id]. */
static int training_form(nnc_graph *out, const nnc_graph *g, int32_t id, int32_t *map, updates *u, nnc_status *st) {
  const nnc_node *n = &g->nodes[id], *fold = &g->nodes[n->src[1]];
  int32_t x = map[n->src[0]];
  int32_t stats = nnc_graph_op(out, NNC_OP_BN_STATS, &x, 1, NULL, st);
  if (stats < 0) return -1;
  nnc_attrs a = {0};
  a.eps = fold->attrs.eps;
  int32_t src[4] = {x, stats, map[fold->src[2]], map[fold->src[3]]};
  map[id] = nnc_graph_op(out, NNC_OP_BATCH_NORM_TRAIN, src, 4, &a, st);
  if (map[id] < 0) return -1;
  int row = nnc_bn_moving_variance_row(g->nodes[n->src[0]].rank);
  if (add_moving_update(out, u, fold->src[0], map[fold->src[0]], stats, &fold->attrs, 0, st)) return -1;
  return add_moving_update(out, u, fold->src[1], map[fold->src[1]], stats, &fold->attrs, row, st);
}

static int add_update_outputs(nnc_graph *out, const nnc_graph *g, const updates *u, nnc_status *st) {
  for (int i = 0; i < u->count; i++) {
    const char *name = g->nodes[u->leaf[i]].name;
    char *role = malloc(strlen(NNC_UPDATE_PREFIX) + strlen(name) + 1);
    if (!role) nnc_out_of_memory("the batch-norm pass");
    strcpy(role, NNC_UPDATE_PREFIX);
    strcat(role, name);
    int rc = nnc_graph_add_output(out, role, u->node[i], st);
    free(role);
    if (rc) return -1;
  }
  return 0;
}

static int run_batch_norm(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  (void)ctx;
  nnc_graph *g = *gp;
  int layers = 0;
  for (int32_t id = 0; id < g->nnodes; id++) layers += trains(g, &g->nodes[id]);
  if (!layers) return 0;
  nnc_graph *out = nnc_graph_new();
  int32_t *map = malloc(sizeof *map * ((size_t)g->nnodes + 1));
  updates u = {0, malloc(sizeof(int32_t) * 2 * (size_t)layers), malloc(sizeof(int32_t) * 2 * (size_t)layers)};
  if (!map || !u.leaf || !u.node) nnc_out_of_memory("the batch-norm pass");
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    const nnc_node *n = &g->nodes[id];
    nnc_graph_set_loc(out, n->loc.layer, n->loc.layer_type, n->loc.file, n->loc.line);
    if (trains(g, n)) {
      rc = training_form(out, g, id, map, &u, st);
    } else {
      map[id] = copy_node(out, n, map, st);
      rc = map[id] < 0 ? -1 : 0;
    }
  }
  out->loc = (nnc_loc){0};
  for (int i = 0; i < g->noutputs && rc == 0; i++)
    rc = nnc_graph_add_output(out, g->outputs[i].name, map[g->outputs[i].node], st);
  if (rc == 0) rc = add_update_outputs(out, g, &u, st);
  free(map), free(u.leaf), free(u.node);
  if (rc) {
    nnc_graph_free(out);
    return -1;
  }
  nnc_graph_free(g);
  *gp = out;
  return 0;
}

const nnc_pass nnc_pass_batch_norm = {"batch-norm", run_batch_norm};
