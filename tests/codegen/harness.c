#include "tests/codegen/harness.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "codegen/nvrtc.h"
#include "ir/op.h"
#include "runtime/rng.h"
#include "tests/testutil.h"

void harness_fill(void *data, int64_t count, int64_t width, data_kind kind, uint32_t seed) {
  float *f = data;
  int32_t *ints = data;
  for (int64_t i = 0; i < count; i++) {
    float u = nnc_rng_uniform(1234, seed, (uint64_t)i);
    switch (kind) {
    case DATA_RANDOM: f[i] = 2.0f * u - 1.0f; break;
    case DATA_POSITIVE: f[i] = u + 0.01f; break;
    case DATA_UNIT: f[i] = 0.02f + 0.96f * u; break;
    case DATA_TIES: f[i] = floorf(u * 3.0f) - 1.0f; break;
    case DATA_CLASSES: ints[i] = (int32_t)(u * (float)width); break;
    case DATA_BINARY: f[i] = u < 0.5f ? 0.0f : 1.0f; break;
    case DATA_ONEHOT:
    case DATA_PROBS: f[i] = 0; break;
    }
  }
  if (kind == DATA_ONEHOT)
    for (int64_t r = 0; r < count / width; r++)
      f[r * width + (int64_t)(nnc_rng_uniform(1234, seed + 1, (uint64_t)r) * (float)width)] = 1.0f;
  if (kind == DATA_PROBS)
    for (int64_t r = 0; r < count / width; r++) {
      double sum = 0;
      for (int64_t j = 0; j < width; j++) {
        float u = nnc_rng_uniform(1234, seed, (uint64_t)(r * width + j));
        f[r * width + j] = j == r % width ? 0.0f : u; /* one zero per row, below the clip */
        sum += f[r * width + j];
      }
      for (int64_t j = 0; j < width; j++) f[r * width + j] = (float)(f[r * width + j] / sum);
    }
}

void harness_run(const nnc_backend *b, const nnc_graph *g, void *const *leaves, const nnc_run_opts *opts,
                 const int32_t *nodes, int count, float **out) {
  nnc_status st = {0};
  nnc_exec *e = b->prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e, "%s: %s", b->name, st.msg);
  ck_assert_msg(b->run(e, leaves, opts, &st) == 0, "%s: %s", b->name, st.msg);
  for (int i = 0; i < count; i++) {
    const void *v = b->value(e, nodes[i]);
    ck_assert_msg(v, "%s kept no value for %%%d", b->name, (int)nodes[i]);
    size_t bytes = (size_t)nnc_node_numel(&g->nodes[nodes[i]]) * sizeof(float);
    out[i] = malloc(bytes ? bytes : 1);
    memcpy(out[i], v, bytes);
  }
  b->release(e);
}

double harness_rel_error(const float *got, const float *want, int64_t count, double floor) {
  double scale = floor, worst = 0;
  for (int64_t i = 0; i < count; i++)
    if (fabs(want[i]) > scale) scale = fabs(want[i]);
  for (int64_t i = 0; i < count; i++) {
    if (isnan(got[i]) != isnan(want[i])) return INFINITY;
    if (isnan(want[i])) continue;
    double d = fabs((double)got[i] - want[i]) / scale;
    if (d > worst) worst = d;
  }
  return worst;
}

float harness_tf32(float x) {
  if (!isfinite(x) || x == 0) return isnan(x) ? NAN : x;
  if (fabsf(x) < 0x1p-126f) return (float)(round((double)x * 0x1p136) * 0x1p-136); /* subnormal: a fixed step */
  int e;
  double m = frexp((double)x, &e);
  return (float)ldexp(round(ldexp(m, 11)), e - 11);
}

void harness_set_precision(const char *precision) {
  if (precision) setenv("NNC_PRECISION", precision, 1);
  else unsetenv("NNC_PRECISION");
}

void harness_fp32_gemms(void) { harness_set_precision("fp32"); }

void harness_default_precision(void) { harness_set_precision(NULL); }

int harness_nvrtc_ready(void) {
  static int said;
  nnc_status st = {0};
  int major, minor;
  if (nnc_nvrtc_open(nnc_test_options(), &major, &minor, &st) == 0) return 1;
  if (!said++) printf("codegen: skipping NVRTC compilation: %s\n", st.msg);
  return 0;
}

void harness_nvrtc_compile_all(const nnc_graph *g) {
  if (!harness_nvrtc_ready()) return;
  nnc_status st = {0};
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  for (int i = 0; i < p.count; i++) {
    const nnc_cuda_kernel *k = &p.kernels[i];
    if (k->lib != NNC_LOWER_NNC) continue; /* a library step: nothing to compile */
    nnc_strbuf unit;
    nnc_strbuf_init(&unit);
    nnc_cuda_render_unit(&k, 1, &unit);
    /* To CUBIN, with ptxas's report: its figures go to the test log, and a
     * spill fails the test. */
    nnc_ptxas_report r;
    int rc = nnc_nvrtc_report(nnc_test_options(), k->name, nnc_strbuf_str(&unit), NNC_CUDA_DEFAULT_ARCH, &r, &st);
    nnc_strbuf_free(&unit);
    ck_assert_msg(rc == 0, "%s", st.msg);
    printf("ptxas %s %s: %d registers, %d bytes smem, %d bytes stack, %d bytes spilled\n", NNC_CUDA_DEFAULT_ARCH,
           k->name, r.registers, r.shared_bytes, r.stack_bytes, r.spill_bytes);
    ck_assert_msg(r.registers > 0, "no register count for %s", k->name);
    ck_assert_msg(r.spill_bytes == 0, "%s spills %d bytes on %s", k->name, r.spill_bytes, NNC_CUDA_DEFAULT_ARCH);
  }
  nnc_cuda_program_free(&p);
}

void harness_one_kernel_per_group(const nnc_graph *g) {
  nnc_cuda_program p;
  nnc_status st = {0};
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  int *kernel_of = malloc(sizeof *kernel_of * ((size_t)g->ngroups + 1));
  ck_assert_ptr_nonnull(kernel_of);
  for (int i = 0; i < g->ngroups; i++) kernel_of[i] = -1;
  for (int k = 0; k < p.count; k++) {
    /* A split unit's first kernel: the second, right after, is the group's. */
    if (p.kernels[k].split == 1) {
      ck_assert_msg(k + 1 < p.count && p.kernels[k + 1].split == 2, "%s has no second kernel", p.kernels[k].name);
      continue;
    }
    int32_t grp = g->nodes[p.kernels[k].nodes[0]].group;
    for (int i = 0; i < p.kernels[k].nnodes; i++)
      ck_assert_msg(g->nodes[p.kernels[k].nodes[i]].group == grp, "kernel %s mixes groups", p.kernels[k].name);
    if (grp < 0) continue;
    ck_assert_msg(kernel_of[grp] < 0, "group \"%s\" is split across kernels %s and %s", g->groups[grp].rule,
                  p.kernels[kernel_of[grp]].name, p.kernels[k].name);
    kernel_of[grp] = k;
    ck_assert_int_eq(p.kernels[k].nnodes, g->groups[grp].nmembers);
  }
  free(kernel_of);
  nnc_cuda_program_free(&p);
}
