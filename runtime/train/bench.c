#include "runtime/train/bench.h"

#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cuda/cuda_predict.h"
#include "runtime/rng.h"

/* Random inputs and labels that fit the compiled graph. */
typedef struct bench_data {
  float *x;
  void *y;
} bench_data;

static int make_data(const nnc_compiled *c, bench_data *d, nnc_status *st) {
  const nnc_node *in = &c->g->nodes[c->input];
  int64_t count = nnc_node_numel(in);
  d->x = malloc(sizeof(float) * (size_t)count);
  if (!d->x) return nnc_fail(st, "out of memory");
  for (int64_t i = 0; i < count; i++) d->x[i] = nnc_rng_uniform(7, 1, (uint64_t)i);
  d->y = NULL;
  if (c->labels < 0) return 0;
  const nnc_node *lab = &c->g->nodes[c->labels];
  int64_t n = nnc_node_numel(lab), classes = c->g->nodes[c->output].shape[c->g->nodes[c->output].rank - 1];
  d->y = calloc((size_t)n, 4);
  if (!d->y) return nnc_fail(st, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    int32_t label = (int32_t)(nnc_rng_uniform(7, 2, (uint64_t)i) * (float)classes);
    if (lab->dtype == NNC_I32) ((int32_t *)d->y)[i] = label;
    else ((float *)d->y)[i] = (i % classes) == label ? 1.0f : 0.0f;
  }
  return 0;
}

static double step_flops(const nnc_graph *g) {
  double flops = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    nnc_cost c = {0, 0};
    if (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF) continue;
    nnc_ops[g->nodes[id].op].cost(g, &g->nodes[id], &c);
    flops += c.flops;
  }
  return flops;
}

/* What the backend launches, where it can say; else one kernel per fused
 * group and per computed node outside a group. */
static int kernel_count(const nnc_model *m, const nnc_compiled *c) {
  if (m->backend->launches) return m->backend->launches(c->exec);
  const nnc_graph *g = c->g;
  int count = g->ngroups;
  for (int32_t id = 0; id < g->nnodes; id++)
    count += g->nodes[id].group < 0 && !(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF);
  return count;
}

typedef struct hot {
  int32_t node; /* the group's last member, or a lone node */
  double seconds;
} hot;

static int by_time(const void *a, const void *b) {
  double x = ((const hot *)a)->seconds, y = ((const hot *)b)->seconds;
  return (x < y) - (x > y);
}

static int is_contraction(const nnc_node *n) { return (nnc_ops[n->op].flags & NNC_OPF_CONTRACTION) != 0; }

/* The `top` most expensive kernels of a profiled run, after the time spent
 * in GEMM kernels: what fusion cannot remove, and so the most that fusing
 * every other op away could gain. Profiled steps time each kernel, which
 * costs a little, so their total exceeds the unprofiled ms/step. */
static void print_hot(FILE *out, const nnc_graph *g, const double *seconds, int steps, int top) {
  hot *h = calloc((size_t)g->nnodes + 1, sizeof *h);
  if (!h) return;
  int n = 0;
  double total = 0, gemm = 0;
  for (int32_t id = 0; id < g->nnodes; id++) total += seconds[id];
  for (int32_t id = 0; id < g->nnodes; id++) {
    int grp = g->nodes[id].group;
    int last = grp < 0 || g->groups[grp].members[g->groups[grp].nmembers - 1] == id;
    if (!last || (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)) continue;
    double sum = seconds[id];
    int contraction = is_contraction(&g->nodes[id]);
    if (grp >= 0) {
      sum = 0;
      for (int k = 0; k < g->groups[grp].nmembers; k++) {
        sum += seconds[g->groups[grp].members[k]];
        contraction |= is_contraction(&g->nodes[g->groups[grp].members[k]]);
      }
    }
    if (contraction) gemm += sum;
    h[n++] = (hot){id, sum};
  }
  if (gemm > 0)
    fprintf(out,
            "  GEMM kernels %.3f ms of %.3f ms profiled (%.1f%%): "
            "removing all other work would give at most %.2fx\n",
            1e3 * gemm / steps, 1e3 * total / steps, 100 * gemm / total, total / gemm);
  qsort(h, (size_t)n, sizeof *h, by_time);
  for (int i = 0; i < n && i < top; i++) {
    const nnc_node *node = &g->nodes[h[i].node];
    char where[256];
    const char *what = node->group >= 0 ? g->groups[node->group].rule : nnc_ops[node->op].name;
    fprintf(out, "  %5.1f%%  %8.3f ms  %-22s %s\n", total > 0 ? 100 * h[i].seconds / total : 0,
            1e3 * h[i].seconds / steps, what, nnc_node_where(g, h[i].node, where, sizeof where));
  }
  free(h);
}

static const char *const kind_names[] = {"inference", "evaluation", "train step"};

/* --predict: the graph's kernels on the GPU named, with what the profile
 * measured beside them when the backend is a real GPU; *seconds: the step. */
static int print_prediction(const nnc_model *m, const nnc_compiled *c, nnc_graph_kind kind, int64_t batch,
                            const nnc_bench_opts *o, const double *profile, double *seconds, nnc_status *st) {
  const nnc_gpu_spec *gpu = nnc_gpu_spec_find(o->predict, st);
  nnc_step_prediction p;
  if (!gpu || nnc_cuda_predict(&m->opts, c->g, gpu, kind == NNC_KIND_PREDICT ? 0 : 2, &p, st)) return -1;
  int real = !strcmp(m->backend->name, "cuda");
  fprintf(o->out,
          "  predicted on %s (%d SMs at %.2f GHz, FP32 %.1f TFLOP/s, TF32 %.1f TFLOP/s, HBM %.2f TB/s), %s, batch %lld%s:\n",
          gpu->title, gpu->sms, gpu->clock_ghz, gpu->fp32_tflops, gpu->tf32_tflops, gpu->hbm_tbs, kind_names[kind],
          (long long)batch,
          real ? ", measured beside" : "");
  nnc_cuda_prediction_print(o->out, c->g, &p, real ? profile : NULL, o->steps, o->top);
  *seconds = p.seconds;
  nnc_cuda_prediction_free(&p);
  return 0;
}

/* Under mpirun: the all-reduce's share of a train step, and how much of
 * it ran while the rank did other work (backward, earlier updates). */
static void print_collective(char *out, size_t size, const nnc_model *m, const nnc_compiled *c, int steps) {
  const nnc_shard *s = m->shard;
  int buckets = 0;
  for (int32_t id = 0; id < c->g->nnodes; id++)
    if (c->g->nodes[id].op == NNC_OP_ALLREDUCE && c->g->nodes[id].attrs.bucket + 1 > buckets)
      buckets = c->g->nodes[id].attrs.bucket + 1;
  double flight = s->reduce_seconds / steps, waited = s->waited_seconds / steps;
  snprintf(out, size,
           "  all-reduce: %d ranks, %d bucket%s, %.2f MB/step; %.3f ms/step in flight, %.3f ms/step waited for "
           "(%.0f%% overlapped)\n",
           s->ranks, buckets, buckets == 1 ? "" : "s", (double)s->reduce_bytes / steps / 1e6, 1e3 * flight,
           1e3 * waited, flight > 0 ? 100 * (flight - waited) / flight : 0);
}

static void reset_collective(nnc_shard *s) {
  if (s) s->reduce_seconds = s->waited_seconds = 0, s->reduce_bytes = 0;
}

/* Times o->steps runs of c, then profiles as many, and prints both. */
static int measure(nnc_model *m, nnc_compiled *c, nnc_graph_kind kind, int64_t batch, const nnc_bench_opts *o,
                   double *profile, nnc_status *st) {
  bench_data d = {0};
  if (make_data(c, &d, st)) return -1;
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) rc = nnc_model_run(m, c, d.x, d.y, st); /* warm-up */
  reset_collective(m->shard);
  double start = nnc_now();
  for (int i = 0; i < o->steps && rc == 0; i++) rc = nnc_model_run(m, c, d.x, d.y, st);
  double seconds = nnc_now() - start;
  char collective[256] = "";
  if (rc == 0 && m->shard && kind == NNC_KIND_TRAIN) print_collective(collective, sizeof collective, m, c, o->steps);
  m->profile = profile;
  for (int i = 0; i < o->steps && rc == 0; i++) rc = nnc_model_run(m, c, d.x, d.y, st);
  m->profile = NULL;
  if (rc == 0) {
    double per_step = seconds / o->steps;
    /* The arena the backend runs in, and the plan's for comparison. */
    int64_t arena = m->backend->arena_bytes(c->exec);
    char used[64] = "none";
    if (arena >= 0) snprintf(used, sizeof used, "%.1f MB", (double)arena / 1e6);
    fprintf(o->out,
            "%-9s batch %4lld: %9.1f img/s  %8.2f ms/step  %7.1f GFLOP/s  %4d kernels/step  arena %s "
            "(plan %.1f MB, intermediates %.1f MB)\n",
            kind == NNC_KIND_TRAIN ? "train" : "inference", (long long)batch, (double)batch / per_step,
            1e3 * per_step, step_flops(c->g) / per_step / 1e9, kernel_count(m, c), used,
            (double)c->g->arena_bytes / 1e6, (double)c->g->intermediate_bytes / 1e6);
    fputs(collective, o->out);
    fprintf(o->out, "  where the time goes (%s):\n", kind == NNC_KIND_TRAIN ? "train step" : "inference");
    print_hot(o->out, c->g, profile, o->steps, o->top);
  }
  free(d.x);
  free(d.y);
  return rc;
}

/* batch is the global batch: under mpirun each rank runs its share. */
static int bench_kind(nnc_model *m, const nnc_graph *forward, nnc_graph_kind kind, int64_t batch,
                      const nnc_bench_opts *o, double *predicted, nnc_status *st) {
  int64_t first, rows;
  if (nnc_shard_split(m->shard, batch, &first, &rows, st)) return -1;
  nnc_compiled *c = nnc_model_compiled(m, forward, kind, rows, st);
  if (!c) return -1;
  double *profile = calloc((size_t)c->g->nnodes + 1, sizeof *profile);
  if (!profile) return nnc_fail(st, "out of memory");
  /* The host's times say nothing of a GPU's: a prediction on cuda-emu
   * compiles the kernels (so they are the ones that would run) and times none. */
  int timed = !(o->predict && !strcmp(m->backend->name, "cuda-emu"));
  int rc = 0;
  if (timed) rc = measure(m, c, kind, batch, o, profile, st);
  else fprintf(o->out, "%-9s batch %4lld: not timed (cuda-emu, predicting)\n", kind == NNC_KIND_TRAIN ? "train" : "inference",
               (long long)batch);
  if (rc == 0 && o->predict) rc = print_prediction(m, c, kind, batch, o, timed ? profile : NULL, predicted, st);
  free(profile);
  return rc;
}

/* The epoch --predict gives: Fashion-MNIST's 60,000 training images split
 * as models/vgg_fashion.lua's fit splits them (validation_split 0.25). */
enum { EPOCH_TRAIN_IMAGES = 45000, EPOCH_VALIDATION_IMAGES = 15000 };

/* An epoch at the train batch: its train steps, then validation, each step
 * an evaluation graph (loss and metrics) at that batch. */
static int print_epoch(nnc_model *m, const nnc_graph *forward, const nnc_bench_opts *o, double train, nnc_status *st) {
  nnc_compiled *c = nnc_model_compiled(m, forward, NNC_KIND_EVAL, o->batch, st);
  const nnc_gpu_spec *gpu = nnc_gpu_spec_find(o->predict, st);
  nnc_step_prediction p;
  if (!c || !gpu || nnc_cuda_predict(&m->opts, c->g, gpu, 2, &p, st)) return -1;
  long long steps = (EPOCH_TRAIN_IMAGES + o->batch - 1) / o->batch,
            checks = (EPOCH_VALIDATION_IMAGES + o->batch - 1) / o->batch;
  fprintf(o->out,
          "predicted epoch on %s: %.2f s = %lld train steps x %.3f ms + %lld validation steps x %.3f ms "
          "(batch %lld; %d images, validation_split 0.25)\n",
          gpu->title, steps * train + checks * p.seconds, steps, 1e3 * train, checks, 1e3 * p.seconds,
          (long long)o->batch, EPOCH_TRAIN_IMAGES + EPOCH_VALIDATION_IMAGES);
  nnc_cuda_prediction_free(&p);
  return 0;
}

int nnc_bench(nnc_model *m, const nnc_graph *forward, const nnc_bench_opts *o, nnc_status *st) {
  if (o->predict && !strcmp(m->backend->name, "cuda-emu"))
    fprintf(o->out, "backend %s, %s, predicting for %s (nothing timed)\n", m->backend->name,
            m->opts.no_fuse ? "unfused" : "fused", o->predict);
  else
    fprintf(o->out, "backend %s, %s, %d timed steps%s\n", m->backend->name, m->opts.no_fuse ? "unfused" : "fused", o->steps,
            m->shard ? ", split between the ranks (GFLOP/s per rank)" : "");
  double train = 0, infer = 0;
  if (m->has_spec && bench_kind(m, forward, NNC_KIND_TRAIN, o->batch, o, &train, st)) return -1;
  if (bench_kind(m, forward, NNC_KIND_PREDICT, o->infer_batch, o, &infer, st)) return -1;
  return o->predict && m->has_spec ? print_epoch(m, forward, o, train, st) : 0;
}
