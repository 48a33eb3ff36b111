/* One rank's view of a data-parallel run, and the all-reduce of gradient
 * buckets that backends run for the allreduce op (ir/ops_collective.c).
 *
 * A bucket's members are consecutive allreduce nodes (passes/allreduce.c
 * places them right after the bucket's last gradient). Each member's input
 * is scaled by this rank's share of the batch and packed into the bucket's
 * buffer as it runs; the last member starts one nonblocking sum of the
 * buffer across ranks. The members' outputs are written when the sum is
 * finished: at once on a backend that waits (the interpreter), or when a
 * later step first reads one on a backend that overlaps (cpu), so that the
 * reduction of one bucket runs while the rest of backward does. */
#ifndef NNC_COLLECTIVE_H
#define NNC_COLLECTIVE_H

#include "runtime/comm.h"
#include "runtime/interp/interp.h"

typedef struct nnc_bucket nnc_bucket;
struct nnc_nccl;

typedef struct nnc_shard {
  nnc_comm *comm;
  int rank, ranks;
  struct nnc_nccl *nccl; /* the cuda backend's communicator, made at its first all-reduce */
  /* The current step: this rank's first row in the global batch, its
   * rows, and the global batch's rows. */
  int64_t first_row, rows, global_rows;
  /* The buckets of the run in progress. */
  nnc_bucket *buckets;
  int nbuckets;
  /* The first error of a collective inside a run (kernels return no
   * status); the run fails with it. */
  int failed;
  nnc_status error;
  /* Seconds spent in all-reduces, and of those the part that did not
   * delay the rank (the sum finished while other work ran), over the
   * shard's life: nnc bench reports both. */
  double reduce_seconds, waited_seconds;
  int64_t reduce_bytes;
} nnc_shard;

void nnc_shard_free(nnc_shard *s);

/* This rank's rows of a global batch of `rows`: an even split in rank
 * order, so row r of the global batch is the same sample (and draws the
 * same dropout mask) whatever the number of ranks. Sets the shard's
 * current step. A NULL shard takes every row. */
int nnc_shard_split(nnc_shard *s, int64_t rows, int64_t *first, int64_t *count, nnc_status *st);

/* The weight of this rank's gradients in the sum: its rows over the global
 * batch's, since each rank's gradient is the mean over its own rows. */
float nnc_shard_share(const nnc_shard *s);

/* Member n of its bucket: packs in (scaled by the rank's share) and, at
 * the bucket's last member, starts the sum. out is written when the
 * bucket finishes. */
void nnc_collective_member(nnc_shard *s, const nnc_graph *g, const nnc_node *n, const float *in, float *out);
/* Waits for every started bucket and writes its members' outputs. */
void nnc_collective_finish(nnc_shard *s);
/* Lets MPI advance the buckets in flight, without waiting. */
void nnc_collective_progress(nnc_shard *s);
/* After a run: 0, or -1 with the collective's error (and the state reset). */
int nnc_collective_status(nnc_shard *s, nnc_status *st);

#endif
