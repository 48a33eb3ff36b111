/* Predicted kernel times (runtime/cuda/cuda_predict.h describes the model). The
 * constants below are the model's; the GPUs' figures are NVIDIA's data
 * sheets (SXM parts, dense peaks), the overheads first estimates to be
 * calibrated against nnc bench --backend cuda --predict on the GPU. */
#include "runtime/cuda/cuda_predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/nvrtc.h"
#include "ir/op.h"
#include "passes/train.h"
#include "runtime/cuda/cuda_layout.h"

static const nnc_gpu_spec gpus[] = {
    {"h100", "H100 SXM", 132, 1.98, 66.9, 494.7, 3.35, 65536, 233472, 2048, 32, 1.2, 4.0, 8.0, 8.0},
    {"h200", "H200 SXM", 132, 1.98, 66.9, 494.7, 4.80, 65536, 233472, 2048, 32, 1.2, 4.0, 8.0, 8.0},
};

enum { WARP = 32, REG_UNIT = 256, ASSUMED_REGISTERS = 64 };
#define PREDICTED_ARCH "sm_90" /* both GPUs: kernels are generated and compiled for it, whatever --arch says */
/* Of the TF32 peak: a warp's mma.sync (1,024 FMAs, about 2 cycles of an
 * SM's tensor cores) takes 3 shared-memory loads for its fragments and 1
 * store for staging, each a cycle of the SM's 128 bytes per cycle: a half;
 * a quarter with no double buffering to overlap the staging's global loads. */
static const double TF32_GEMM_CEILING = 0.5;
static const double FMA_PIPES = 4, ISSUE_PER_CYCLE = 4; /* warp instructions per SM and cycle */
/* Instructions of a view element's index math (an im2col read: six
 * divisions by constants, the bounds checks, the address), in 64-bit
 * integers and in 32-bit ones: first estimates. */
static const double VIEW_ISSUES_64 = 32, VIEW_ISSUES_32 = 16;
static const double LATENCY_WARPS = 8;         /* resident warps per SM that hide an FMA pipeline's latency */
static const double OTHER_COMPUTE = 0.5;       /* of the FP32 peak, for kernels that are not GEMMs */
static const double LIBRARY_COMPUTE = 0.7;     /* of the FP32 peak, for cuBLAS and cuDNN */
static const double HBM_EFFICIENCY = 0.85;     /* of the data sheet's bandwidth, at best */
static const double WARP_BYTES_IN_FLIGHT = 512; /* per resident warp */
static const double MEMORY_LATENCY_NS = 700;
static const double SERIAL_STEP_CYCLES = 8;

const nnc_gpu_spec *nnc_gpu_spec_find(const char *name, nnc_status *st) {
  for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++)
    if (!strcmp(gpus[i].name, name)) return &gpus[i];
  nnc_fail(st, "--predict: unknown GPU '%s' (choose h100 or h200)", name);
  return NULL;
}

static int64_t node_bytes(const nnc_node *n) { return nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype); }

/* The second kernel of a split pair (skip: the anchor its first computed)
 * adds the workspace's partial results; both move them through memory. */
static void work_of(const nnc_graph *g, const nnc_cuda_kernel *k, int32_t skip, nnc_kernel_prediction *kp, int *gemm) {
  *gemm = 0;
  if (k->split) kp->bytes += (double)k->workspace * sizeof(float);
  for (int i = 0; i < k->nnodes; i++) {
    const nnc_node *n = &g->nodes[k->nodes[i]];
    if (k->nodes[i] == skip) {
      kp->flops += (double)(k->workspace - nnc_node_numel(n));
      continue;
    }
    nnc_cost c = {0, 0};
    nnc_ops[n->op].cost(g, n, &c);
    kp->flops += c.flops;
    *gemm |= (nnc_ops[n->op].flags & NNC_OPF_CONTRACTION) != 0;
  }
  for (int i = 0; i < k->nargs; i++)
    if (k->args[i].node >= 0) kp->bytes += (double)node_bytes(&g->nodes[k->args[i].node]);
}

/* Of the peak, what a GEMM's inner loop allows (cuda_predict.h). */
static double gemm_ceiling(const nnc_cuda_kernel *k) {
  const nnc_cuda_gemm_loop *l = &k->gemm;
  if (k->tf32) return TF32_GEMM_CEILING * (l->stages >= 2 ? 1.0 : 0.5);
  if (l->fmas <= 0) return 0.5; /* unreachable: every GEMM says its loop */
  double view = l->index_bits == 32 ? VIEW_ISSUES_32 : VIEW_ISSUES_64;
  double busy = fmax((l->fmas + l->issues + l->views * view) / ISSUE_PER_CYCLE, l->wavefronts);
  return l->fmas / FMA_PIPES / busy;
}

/* Resident blocks per SM, from the block's threads, registers and shared memory. */
static int blocks_per_sm(const nnc_gpu_spec *gpu, unsigned block, int registers, int shared) {
  int warps = (int)((block + WARP - 1) / WARP);
  int regs_per_warp = (registers * WARP + REG_UNIT - 1) / REG_UNIT * REG_UNIT;
  int by_threads = gpu->threads_per_sm / (warps * WARP);
  int by_regs = regs_per_warp ? gpu->regs_per_sm / (regs_per_warp * warps) : gpu->blocks_per_sm;
  int by_shared = shared > 0 ? gpu->smem_per_sm / shared : gpu->blocks_per_sm;
  int n = gpu->blocks_per_sm;
  if (by_threads < n) n = by_threads;
  if (by_regs < n) n = by_regs;
  if (by_shared < n) n = by_shared;
  return n;
}

static void predict_kernel(const nnc_graph *g, const nnc_gpu_spec *gpu, const nnc_cuda_kernel *k, int32_t skip,
                           nnc_kernel_prediction *kp) {
  int gemm;
  work_of(g, k, skip, kp, &gemm);
  double sm_peak = (k->tf32 ? gpu->tf32_tflops : gpu->fp32_tflops) * 1e12 / gpu->sms, node = gpu->graph_node_us * 1e-6;
  if (k->lib != NNC_LOWER_NNC) {
    kp->bound = "library";
    kp->seconds = k->launches * node + kp->flops / (gpu->fp32_tflops * 1e12 * LIBRARY_COMPUTE) +
                  kp->bytes / (gpu->hbm_tbs * 1e12 * HBM_EFFICIENCY);
    return;
  }
  int registers = kp->registers > 0 ? kp->registers : ASSUMED_REGISTERS;
  int bps = blocks_per_sm(gpu, k->block, registers, kp->shared_bytes > 0 ? kp->shared_bytes : 0);
  if (bps < 1) bps = 1;
  kp->blocks_per_sm = bps;
  double warps_per_block = ceil(k->block / (double)WARP);
  double per_sm = fmin(bps, ceil(k->grid / (double)gpu->sms)); /* blocks an SM holds at once */
  double resident_warps = per_sm * warps_per_block;
  kp->occupancy = resident_warps * WARP / gpu->threads_per_sm;
  double waves = ceil(k->grid / ((double)gpu->sms * bps));
  double compute;
  if (gemm && k->cooperative) {
    double eff = gemm_ceiling(k) * fmin(1.0, resident_warps / LATENCY_WARPS);
    compute = waves * per_sm * (kp->flops / k->grid) / (sm_peak * eff);
  } else {
    compute = kp->flops / (sm_peak * fmin(gpu->sms, k->grid) * OTHER_COMPUTE);
  }
  double warps_total = fmin(k->grid * warps_per_block, gpu->sms * bps * warps_per_block);
  double bandwidth = fmin(gpu->hbm_tbs * 1e12 * HBM_EFFICIENCY, warps_total * WARP_BYTES_IN_FLIGHT / (MEMORY_LATENCY_NS * 1e-9));
  double memory = kp->bytes / bandwidth;
  /* A thread's own loop: its items, each costing the item's FLOPs in steps. */
  double threads = k->cooperative ? (double)k->grid : (double)k->grid * k->block;
  double items = ceil((double)k->work / threads);
  double serial = k->work > 0 ? items * (kp->flops / (double)k->work) * SERIAL_STEP_CYCLES / (gpu->clock_ghz * 1e9) : 0;
  if (k->cooperative) serial /= k->block; /* a block shares its item */
  if (gemm && k->cooperative) serial = 0;  /* its threads' FMAs are independent: the compute term */
  kp->bound = compute >= memory && compute >= serial ? "compute" : memory >= serial ? "memory" : "serial";
  double busy = fmax(compute, fmax(memory, serial));
  if (busy < node) kp->bound = "launch";
  kp->seconds = busy + node;
}

static void ptxas_figures(const nnc_options *o, const nnc_cuda_kernel *k, nnc_kernel_prediction *kp, int *reported) {
  kp->registers = kp->shared_bytes = kp->spill_bytes = -1;
  if (!k->source) return;
  nnc_strbuf unit;
  nnc_strbuf_init(&unit);
  nnc_cuda_render_unit(&k, 1, &unit);
  nnc_ptxas_report r;
  nnc_status st = {0};
  if (nnc_nvrtc_report(o, k->name, nnc_strbuf_str(&unit), PREDICTED_ARCH, &r, &st) == 0) {
    kp->registers = r.registers, kp->shared_bytes = r.shared_bytes, kp->spill_bytes = r.spill_bytes;
    ++*reported;
  }
  nnc_strbuf_free(&unit);
}

int nnc_cuda_predict(const nnc_options *o, const nnc_graph *g, const nnc_gpu_spec *gpu, int reads,
                     nnc_step_prediction *p, nnc_status *st) {
  memset(p, 0, sizeof *p);
  if (nnc_cuda_generate_for(o, PREDICTED_ARCH, g, &p->program, st)) return -1;
  p->kernels = calloc((size_t)p->program.count + 1, sizeof *p->kernels);
  if (!p->kernels) return nnc_fail(st, "out of memory");
  for (int k = 0; k < p->program.count; k++) {
    nnc_kernel_prediction *kp = &p->kernels[k];
    kp->kernel = k;
    ptxas_figures(o, &p->program.kernels[k], kp, &p->reported);
    const nnc_cuda_kernel *kn = &p->program.kernels[k];
    predict_kernel(g, gpu, kn, kn->split == 2 ? p->program.kernels[k - 1].nodes[0] : -1, kp);
    p->kernel_seconds += kp->seconds;
  }
  /* The optimizer's results not written in place are copied over the weights. */
  for (int i = 0; i < g->noutputs; i++) {
    const char *weight = nnc_output_weight(g->outputs[i].name, NNC_UPDATE_PREFIX);
    int32_t param = weight ? nnc_graph_find_leaf(g, NNC_OP_PARAM, weight) : -1;
    if (param < 0 || nnc_cuda_update_in_place(g, &p->program, param, g->outputs[i].node)) continue;
    p->update_copies++;
    p->copy_seconds += gpu->graph_node_us * 1e-6 +
                       2.0 * (double)node_bytes(&g->nodes[g->outputs[i].node]) / (gpu->hbm_tbs * 1e12 * HBM_EFFICIENCY);
  }
  p->overhead_seconds = (gpu->graph_launch_us + gpu->copy_in_us + reads * gpu->read_back_us) * 1e-6;
  p->seconds = p->kernel_seconds + p->copy_seconds + p->overhead_seconds;
  return 0;
}

void nnc_cuda_prediction_free(nnc_step_prediction *p) {
  nnc_cuda_program_free(&p->program);
  free(p->kernels);
  memset(p, 0, sizeof *p);
}

static int by_seconds(const void *a, const void *b) {
  double x = ((const nnc_kernel_prediction *)a)->seconds, y = ((const nnc_kernel_prediction *)b)->seconds;
  return (x < y) - (x > y);
}

void nnc_cuda_prediction_print(FILE *out, const nnc_graph *g, const nnc_step_prediction *p, const double *measured,
                               int steps, int top) {
  int n = p->program.count;
  nnc_kernel_prediction *sorted = malloc(sizeof *sorted * ((size_t)n + 1));
  if (!sorted) return;
  memcpy(sorted, p->kernels, sizeof *sorted * (size_t)n);
  qsort(sorted, (size_t)n, sizeof *sorted, by_seconds);
  fprintf(out, "  %-44s %11s %4s %6s %5s %9s %8s %-8s %9s%s\n", "kernel", "grid x blk", "regs", "smem", "occ",
          "MFLOP", "MB", "bound", "predicted", measured ? "  measured" : "");
  for (int i = 0; i < n && i < top; i++) {
    const nnc_kernel_prediction *kp = &sorted[i];
    const nnc_cuda_kernel *k = &p->program.kernels[kp->kernel];
    char grid[32], regs[16], smem[16], seen[32] = "";
    snprintf(grid, sizeof grid, "%ux%u", k->grid, k->block);
    snprintf(regs, sizeof regs, kp->registers >= 0 ? "%d" : "-", kp->registers);
    snprintf(smem, sizeof smem, kp->shared_bytes >= 0 ? "%d" : "-", kp->shared_bytes);
    if (measured) snprintf(seen, sizeof seen, "  %7.1f us", 1e6 * measured[k->nodes[k->nnodes - 1]] / steps);
    fprintf(out, "  %-44.44s %11s %4s %6s %4.0f%% %9.2f %8.2f %-8s %6.1f us%s\n", k->name, grid, regs, smem,
            100 * kp->occupancy, kp->flops / 1e6, kp->bytes / 1e6, kp->bound, 1e6 * kp->seconds, seen);
  }
  (void)g;
  int tf32 = 0;
  for (int i = 0; i < n; i++) tf32 += p->program.kernels[i].tf32;
  free(sorted);
  fprintf(out,
          "  step: %.3f ms predicted = %d kernels %.3f ms + %d weight copies %.3f ms + graph launch, input copy "
          "and read-backs %.3f ms (ptxas reports for %d of %d kernels; %d GEMMs on TF32 tensor cores)\n",
          1e3 * p->seconds, n, 1e3 * p->kernel_seconds, p->update_copies, 1e3 * p->copy_seconds,
          1e3 * p->overhead_seconds, p->reported, n, tf32);
}
