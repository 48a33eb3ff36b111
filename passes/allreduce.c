/* The allreduce pass: in a data-parallel run each rank's gradients are
 * summed across ranks (weighted by each rank's share of the batch, see
 * ir/ops_collective.c) between autodiff and the optimizer, which reads the
 * "grad:W" outputs and so updates every rank's weights alike.
 *
 * Gradients are grouped into buckets of about ctx->bucket_bytes in the
 * order backward produces them (the last layers' first), as PyTorch's DDP
 * does: one message per bucket amortises each collective's latency, and a
 * bucket's reduction can start as soon as its last gradient exists, while
 * backward computes the earlier layers' gradients. So the graph is rebuilt
 * with each bucket's allreduce nodes placed right after that gradient; a
 * backend that overlaps starts the bucket there and waits only where an
 * update first reads it. */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/train.h"
#include "ir/status.h"

typedef struct grad {
  int output;   /* index in g->outputs */
  int32_t node; /* the gradient */
  int32_t bucket;
} grad;

static int by_node(const void *a, const void *b) {
  const grad *x = a, *y = b;
  return (x->node > y->node) - (x->node < y->node);
}

/* Gradients in production order, each with its bucket. */
static int assign_buckets(const nnc_graph *g, int64_t bucket_bytes, grad *grads) {
  int n = 0;
  for (int i = 0; i < g->noutputs; i++)
    if (nnc_output_weight(g->outputs[i].name, NNC_GRAD_PREFIX)) grads[n++] = (grad){i, g->outputs[i].node, 0};
  qsort(grads, (size_t)n, sizeof *grads, by_node);
  int32_t bucket = 0;
  int64_t filled = 0;
  for (int i = 0; i < n; i++) {
    int64_t bytes = 4 * nnc_node_numel(&g->nodes[grads[i].node]);
    if (filled > 0 && filled + bytes > bucket_bytes) bucket++, filled = 0;
    grads[i].bucket = bucket;
    filled += bytes;
  }
  return n;
}

/* The allreduce nodes of the bucket that grads[*next] starts, after `last`. */
static int add_bucket(nnc_graph *out, const nnc_graph *g, const grad *grads, int n, int *next, const int32_t *map,
                      int32_t *reduced, nnc_status *st) {
  int32_t bucket = grads[*next].bucket;
  for (; *next < n && grads[*next].bucket == bucket; (*next)++) {
    const grad *gr = &grads[*next];
    const char *weight = nnc_output_weight(g->outputs[gr->output].name, NNC_GRAD_PREFIX);
    int32_t w = nnc_graph_find_leaf(g, NNC_OP_PARAM, weight);
    const nnc_loc *loc = w >= 0 ? &g->nodes[w].loc : &g->nodes[gr->node].loc;
    nnc_graph_set_loc(out, loc->layer, loc->layer_type, loc->file, loc->line);
    nnc_attrs a;
    memset(&a, 0, sizeof a);
    a.bucket = bucket;
    int32_t src = map[gr->node];
    reduced[gr->output] = nnc_graph_op(out, NNC_OP_ALLREDUCE, &src, 1, &a, st);
    if (reduced[gr->output] < 0) return -1;
  }
  return 0;
}

static int copy_node(nnc_graph *out, const nnc_node *n, const int32_t *map, nnc_status *st) {
  nnc_node_spec spec = {n->op, n->nsrc, {0}, n->attrs, n->name, n->dtype, n->rank, {0}};
  for (int i = 0; i < n->nsrc; i++) spec.src[i] = map[n->src[i]];
  memcpy(spec.shape, n->shape, sizeof spec.shape);
  nnc_graph_set_loc(out, n->loc.layer, n->loc.layer_type, n->loc.file, n->loc.line);
  return nnc_graph_add(out, &spec, st);
}

static int rebuild(const nnc_graph *g, nnc_graph *out, const grad *grads, int n, nnc_status *st) {
  int32_t *map = malloc(sizeof *map * ((size_t)g->nnodes + 1));
  int32_t *reduced = malloc(sizeof *reduced * ((size_t)g->noutputs + 1));
  if (!map || !reduced) nnc_out_of_memory("the allreduce pass");
  int rc = 0, next = 0;
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    map[id] = copy_node(out, &g->nodes[id], map, st);
    if (map[id] < 0) rc = -1;
    /* A bucket starts once its last (highest) gradient exists. */
    while (rc == 0 && next < n) {
      int end = next;
      while (end + 1 < n && grads[end + 1].bucket == grads[next].bucket) end++;
      if (grads[end].node != id) break;
      rc = add_bucket(out, g, grads, n, &next, map, reduced, st);
    }
  }
  for (int i = 0; i < g->noutputs && rc == 0; i++) {
    int is_grad = nnc_output_weight(g->outputs[i].name, NNC_GRAD_PREFIX) != NULL;
    rc = nnc_graph_add_output(out, g->outputs[i].name, is_grad ? reduced[i] : map[g->outputs[i].node], st);
  }
  out->loc = (nnc_loc){0};
  free(map);
  free(reduced);
  return rc;
}

static int run_allreduce(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *g = *gp;
  if (ctx->ranks < 2) return 0;
  grad *grads = malloc(sizeof *grads * ((size_t)g->noutputs + 1));
  if (!grads) nnc_out_of_memory("the allreduce pass");
  int64_t bucket_bytes = ctx->bucket_bytes > 0 ? ctx->bucket_bytes : NNC_BUCKET_BYTES;
  int n = assign_buckets(g, bucket_bytes, grads);
  nnc_graph *out = nnc_graph_new();
  int rc = rebuild(g, out, grads, n, st);
  free(grads);
  if (rc) {
    nnc_graph_free(out);
    return -1;
  }
  nnc_graph_free(g);
  *gp = out;
  return 0;
}

const nnc_pass nnc_pass_allreduce = {"allreduce", run_allreduce};
