/* The pass manager: runs passes in order, verifies the graph after each one,
 * and dumps the IR after any pass the user asked to see. */
#ifndef NNC_PASS_H
#define NNC_PASS_H

#include "ir/graph.h"
#include "passes/options.h"

struct nnc_train_spec;
struct nnc_backend_caps;

typedef struct nnc_pass_ctx {
  const nnc_options *opts; /* NULL: the defaults (a zero nnc_options); read through nnc_pass_options */
  int64_t batch; /* concrete batch for infer-shapes, or NNC_DIM_ANY to keep it symbolic */
  const struct nnc_train_spec *train; /* loss and optimizer, for the training passes */
  /* What the backend can run (passes/schedule.h), for the fuse and
   * schedule passes: whether it honours opts->lower, which ops join a
   * kernel as epilogues; NULL: every node is a kernel of its own (the
   * interpreter). */
  const struct nnc_backend_caps *caps;
  /* The train step also outputs each gradient as "grad:W", for nnc check
   * to compare them before the optimizer. */
  int keep_grads;
  /* Ranks of a data-parallel run: above 1, the allreduce pass sums the
   * gradients across them in buckets of about bucket_bytes (0: the default). */
  int ranks;
  int64_t bucket_bytes;
} nnc_pass_ctx;

/* ctx->opts, or the defaults when it is NULL. */
const nnc_options *nnc_pass_options(const nnc_pass_ctx *ctx);

/* PyTorch DDP's default bucket: large enough to amortise a collective's
 * latency, small enough that the first bucket starts early in backward. */
#define NNC_BUCKET_BYTES (25 * 1024 * 1024)

/* A pass may replace *g (freeing the old graph) or annotate it in place. */
typedef int nnc_pass_fn(nnc_graph **g, const nnc_pass_ctx *ctx, nnc_status *st);

typedef struct nnc_pass {
  const char *name;
  nnc_pass_fn *run;
} nnc_pass;

extern const nnc_pass nnc_pass_verify;
extern const nnc_pass nnc_pass_infer_shapes;
extern const nnc_pass nnc_pass_fuse;        /* passes/fuse.c */
extern const nnc_pass nnc_pass_schedule;    /* passes/schedule.c */
extern const nnc_pass nnc_pass_plan_memory; /* passes/plan_memory.c */
extern const nnc_pass nnc_pass_allreduce;   /* passes/allreduce.c */

/* Runs the passes on *g. On failure the message names the pass. */
int nnc_pass_run(nnc_graph **g, const nnc_pass *const *passes, int npasses, const nnc_pass_ctx *ctx,
                 const nnc_dump_opts *dump, nnc_status *st);

/* The pass of that name, or NULL. */
const nnc_pass *nnc_pass_find(const char *name);

#endif
