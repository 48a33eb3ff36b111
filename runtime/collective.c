/* Gradient buckets summed across ranks (runtime/collective.h), and the
 * allreduce op's reference kernel on top of them. */
#include "runtime/collective.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/cuda/nccl.h"
#include "ir/status.h"

typedef struct member {
  float *out;
  int64_t offset, count;
} member;

struct nnc_bucket {
  int32_t id;
  float *buf;
  int64_t count, capacity, packed;
  member *members;
  int nmembers, arrived;
  nnc_comm_request *request;
  double started, done_at; /* done_at: when a poll first saw the sum finished, else 0 */
};

uint64_t nnc_dropout_counter(const nnc_run_opts *opts, const nnc_node *n) {
  uint64_t rows = n->rank > 0 && n->shape[0] > 0 ? (uint64_t)n->shape[0] : 1;
  uint64_t row = (uint64_t)nnc_node_numel(n) / rows;
  const nnc_shard *s = opts->shard;
  uint64_t global_rows = s && s->global_rows > 0 ? (uint64_t)s->global_rows : rows;
  uint64_t first = s ? (uint64_t)s->first_row : 0;
  return (opts->step * global_rows + first) * row;
}

int nnc_shard_split(nnc_shard *s, int64_t rows, int64_t *first, int64_t *count, nnc_status *st) {
  *first = 0, *count = rows;
  if (!s) return 0;
  if (rows < s->ranks)
    return nnc_fail(st, "a batch of %lld rows cannot be split over %d ranks (each needs a row): make batch_size and "
                        "the number of rows modulo batch_size at least %d",
                    (long long)rows, s->ranks, s->ranks);
  *first = rows * s->rank / s->ranks;
  *count = rows * (s->rank + 1) / s->ranks - *first;
  s->first_row = *first, s->rows = *count, s->global_rows = rows;
  return 0;
}

static int fail(nnc_shard *s, const nnc_status *st) {
  if (!s->failed) s->failed = 1, s->error = *st;
  return -1;
}

void nnc_shard_free(nnc_shard *s) {
  for (int i = 0; i < s->nbuckets; i++) {
    free(s->buckets[i].buf);
    free(s->buckets[i].members);
    free(s->buckets[i].request); /* only after a failed run; MPI is ending then */
  }
  free(s->buckets);
  s->buckets = NULL, s->nbuckets = 0;
  nnc_nccl_close(s->nccl);
  s->nccl = NULL;
}

static nnc_bucket *bucket_of(nnc_shard *s, int32_t id) {
  for (int i = 0; i < s->nbuckets; i++)
    if (s->buckets[i].id == id) return &s->buckets[i];
  nnc_bucket *more = realloc(s->buckets, sizeof *more * (size_t)(s->nbuckets + 1));
  if (!more) nnc_out_of_memory("an all-reduce bucket");
  s->buckets = more;
  nnc_bucket *b = &s->buckets[s->nbuckets++];
  memset(b, 0, sizeof *b);
  b->id = id;
  return b;
}

/* At a bucket's first member in a run: its members and size, from the graph. */
static void bucket_open(nnc_bucket *b, const nnc_graph *g) {
  int n = 0;
  int64_t count = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *m = &g->nodes[id];
    if (m->op == NNC_OP_ALLREDUCE && m->attrs.bucket == b->id) n++, count += nnc_node_numel(m);
  }
  if (count > b->capacity) {
    free(b->buf);
    b->buf = malloc(sizeof(float) * (size_t)count);
    if (!b->buf) nnc_out_of_memory("an all-reduce bucket");
    b->capacity = count;
  }
  free(b->members);
  b->members = calloc((size_t)n, sizeof *b->members);
  if (!b->members) nnc_out_of_memory("an all-reduce bucket");
  b->nmembers = n, b->count = count, b->packed = 0, b->arrived = 0, b->done_at = 0;
}

float nnc_shard_share(const nnc_shard *s) { return (float)((double)s->rows / (double)s->global_rows); }

void nnc_collective_member(nnc_shard *s, const nnc_graph *g, const nnc_node *n, const float *in, float *out) {
  if (s->failed) return;
  nnc_bucket *b = bucket_of(s, n->attrs.bucket);
  if (b->arrived == 0 && !b->request) bucket_open(b, g);
  int64_t count = nnc_node_numel(n);
  if (b->arrived >= b->nmembers || b->packed + count > b->count) {
    nnc_status st;
    nnc_fail(&st, "allreduce bucket %d has more members than its graph", (int)b->id);
    fail(s, &st);
    return;
  }
  float share = nnc_shard_share(s);
  float *to = b->buf + b->packed;
  for (int64_t i = 0; i < count; i++) to[i] = in[i] * share;
  b->members[b->arrived++] = (member){out, b->packed, count};
  b->packed += count;
  if (b->arrived < b->nmembers) return;
  nnc_status st = {0};
  b->started = nnc_now();
  b->request = nnc_comm_sum_start(s->comm, b->buf, b->count, &st);
  if (!b->request) fail(s, &st);
  s->reduce_bytes += 4 * b->count;
}

void nnc_collective_progress(nnc_shard *s) {
  for (int i = 0; i < s->nbuckets; i++) {
    nnc_bucket *b = &s->buckets[i];
    if (b->request && !b->done_at && nnc_comm_test(b->request)) b->done_at = nnc_now();
  }
}

static void bucket_finish(nnc_shard *s, nnc_bucket *b) {
  char what[64];
  snprintf(what, sizeof what, "the all-reduce of gradient bucket %d", (int)b->id);
  nnc_status st = {0};
  double before = nnc_now();
  int rc = nnc_comm_wait(b->request, what, &st);
  b->request = NULL;
  double end = b->done_at ? b->done_at : nnc_now();
  s->reduce_seconds += end - b->started;
  s->waited_seconds += b->done_at ? 0 : end - before;
  if (rc) {
    fail(s, &st);
    return;
  }
  for (int i = 0; i < b->nmembers; i++)
    memcpy(b->members[i].out, b->buf + b->members[i].offset, sizeof(float) * (size_t)b->members[i].count);
  b->arrived = 0;
}

void nnc_collective_finish(nnc_shard *s) {
  for (int i = 0; i < s->nbuckets; i++)
    if (s->buckets[i].request) bucket_finish(s, &s->buckets[i]);
}

int nnc_collective_status(nnc_shard *s, nnc_status *st) {
  if (!s->failed) {
    for (int i = 0; i < s->nbuckets; i++)
      if (s->buckets[i].arrived) s->buckets[i].arrived = 0; /* a run that ended early */
    return 0;
  }
  *st = s->error;
  s->failed = 0;
  return -1;
}

/* The interpreter's (and any backend's without its own) allreduce: the
 * bucket's sum is waited for at its last member. */
void nnc_ref_allreduce(const nnc_kernel_args *k) {
  nnc_shard *s = k->opts ? k->opts->shard : NULL;
  int64_t count = nnc_node_numel(k->n);
  if (!s || s->ranks < 2) {
    memcpy(k->out, k->in[0], sizeof(float) * (size_t)count);
    return;
  }
  nnc_collective_member(s, k->g, k->n, k->in[0], k->out);
  nnc_collective_finish(s);
}
