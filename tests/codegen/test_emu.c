/* cuda-emu's barriers, on kernels written here rather than generated: a
 * block's threads exchange values through __shared__ memory between
 * __syncthreads, several times, in blocks of a size that is no power of two,
 * with both ways of switching threads (the x86-64 switch and swapcontext,
 * chosen with -DNNC_EMU_UCONTEXT through NNC_CC); and threads that disagree
 * about a barrier, or overrun their stacks, stop the process with a message
 * instead of hanging or corrupting memory unseen.
 * Under ASan the swapcontext case prints ASan's one-line notice that it
 * does not fully support swapcontext; the false reports it warns of would
 * come from instrumented code on a fiber's stack, and only the kernel's
 * object, built without sanitizers, runs there. */
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cuda.h"
#include "codegen/host_cc.h"
#include "ir/text.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

typedef void emu_launch_fn(void *const *args, unsigned grid, unsigned block, unsigned first, unsigned last);

enum { BLOCK = 200, GRID = 5, ROUNDS = 3 };

/* Each round, thread t reads what threads n-1-t and t+1 wrote: wrong unless
 * every thread of the block has written before any reads. */
static const char exchange_kernel[] =
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  __shared__ float s[256];\n"
    "  const unsigned t = threadIdx.x, n = blockDim.x;\n"
    "  float mine = x[blockIdx.x * n + t];\n"
    "  for (int round = 0; round < 3; round++) {\n"
    "    s[t] = mine;\n"
    "    __syncthreads();\n"
    "    mine = s[n - 1 - t] + 0.5f * s[(t + 1) % n];\n"
    "    __syncthreads();\n"
    "  }\n"
    "  out[blockIdx.x * n + t] = mine;\n"
    "}\n";

/* Thread 0 leaves while the others wait. */
static const char disagreeing_kernel[] =
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  if (threadIdx.x == 0) return;\n"
    "  __syncthreads();\n"
    "  out[threadIdx.x] = x[threadIdx.x];\n"
    "}\n";

/* Thread 1 needs more than its 64 KiB stack; thread 0 has returned, so
 * only its dead stack is overwritten. The frame is a function of its own so
 * that the other threads do not reserve it too (host only). */
static const char overrunning_kernel[] =
    "__attribute__((noinline)) static float nnc_test_deep(float v) {\n"
    "  volatile char big[66000];\n"
    "  for (int i = 0; i < 66000; i++) big[i] = (char)i;\n"
    "  return v + big[7];\n"
    "}\n"
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  if (threadIdx.x == 1) out[0] = nnc_test_deep(x[0]);\n"
    "}\n";

static void expected(const float *x, float *out) {
  for (int b = 0; b < GRID; b++) {
    float v[BLOCK], s[BLOCK];
    memcpy(v, x + b * BLOCK, sizeof v);
    for (int r = 0; r < ROUNDS; r++) {
      memcpy(s, v, sizeof s);
      for (int t = 0; t < BLOCK; t++) v[t] = s[BLOCK - 1 - t] + 0.5f * s[(t + 1) % BLOCK];
    }
    memcpy(out + b * BLOCK, v, sizeof v);
  }
}

/* Compiles kernel k with `extra` added to the host compiler's words and
 * returns its launcher; *so is the object to dlclose. */
static emu_launch_fn *load_kernel(const nnc_cuda_kernel *k, const char *extra, void **so) {
  const nnc_cuda_kernel *ks = k;
  nnc_strbuf src;
  nnc_strbuf_init(&src);
  nnc_cuda_render_unit(&ks, 1, &src);
  nnc_cuda_render_host_launcher(k, &src);

  const char *cc = getenv("NNC_CC");
  if (!cc || !*cc) cc = getenv("CC");
  if (!cc || !*cc) cc = "cc";
  char *saved = getenv("NNC_CC") ? strdup(getenv("NNC_CC")) : NULL;
  char words[512];
  snprintf(words, sizeof words, "%s %s", cc, extra);
  setenv("NNC_CC", words, 1);
  nnc_status st = {0};
  nnc_host_so obj;
  int rc = nnc_host_compile(nnc_test_options(), "barrier-test", nnc_strbuf_str(&src), &obj, &st);
  if (saved) setenv("NNC_CC", saved, 1);
  else unsetenv("NNC_CC");
  free(saved);
  nnc_strbuf_free(&src);
  ck_assert_msg(rc == 0, "%s", st.msg);
  *so = dlopen(obj.path, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(*so, "%s", dlerror());
  nnc_host_so_cleanup(&obj);
  char sym[256];
  snprintf(sym, sizeof sym, "%s_emu", k->name);
  emu_launch_fn *fn;
  *(void **)&fn = dlsym(*so, sym);
  ck_assert_ptr_nonnull(fn);
  return fn;
}

/* A cooperative nnc_test_exchange(float *out, const float *x). */
static emu_launch_fn *load(const char *kernel, const char *extra, void **so) {
  nnc_cuda_kernel k = {.name = "nnc_test_exchange", .source = (char *)kernel, .nargs = 2, .cooperative = 1};
  k.args[0] = (nnc_cuda_arg){NNC_CUDA_ARG_OUT, 0};
  k.args[1] = (nnc_cuda_arg){NNC_CUDA_ARG_IN, 1};
  return load_kernel(&k, extra, so);
}

static void run_exchange(const char *extra) {
  static float x[GRID * BLOCK], out[GRID * BLOCK], want[GRID * BLOCK];
  for (int i = 0; i < GRID * BLOCK; i++) x[i] = (float)((i * 37) % 101) - 50.0f;
  memset(out, 0, sizeof out);
  expected(x, want);
  void *so;
  emu_launch_fn *fn = load(exchange_kernel, extra, &so);
  float *po = out;
  const float *px = x;
  void *args[2] = {&po, &px};
  /* Two slices of the grid, as two host threads would take them. */
  fn(args, GRID, BLOCK, 0, 2);
  fn(args, GRID, BLOCK, 2, GRID);
  dlclose(so);
  for (int i = 0; i < GRID * BLOCK; i++)
    ck_assert_msg(out[i] == want[i], "NNC_CC +%s: element %d is %g, want %g", extra, i, (double)out[i], (double)want[i]);
}

START_TEST(test_barrier_exchange) { run_exchange(""); }
END_TEST

START_TEST(test_barrier_exchange_ucontext) { run_exchange("-DNNC_EMU_UCONTEXT"); }
END_TEST

/* Runs one block of `threads` threads of `kernel` in a child process, which
 * must abort with `message` on stderr. */
static void expect_abort(const char *kernel, unsigned threads, const char *message) {
  void *so;
  emu_launch_fn *fn = load(kernel, "", &so);
  char log[] = "/tmp/nnc-barrier-XXXXXX";
  int fd = mkstemp(log);
  ck_assert_int_ge(fd, 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fd, 2);
    static float x[8], out[8];
    float *po = out;
    const float *px = x;
    void *args[2] = {&po, &px};
    fn(args, 1, threads, 0, 1);
    _exit(0);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  char text[512] = "";
  ssize_t got = pread(fd, text, sizeof text - 1, 0);
  text[got > 0 ? got : 0] = 0;
  close(fd);
  remove(log);
  dlclose(so);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d, stderr: %s", status, text);
  ck_assert_msg(strstr(text, message), "stderr: %s", text);
}

START_TEST(test_barrier_disagreement_aborts) {
  expect_abort(disagreeing_kernel, 8, "thread 1 waits at __syncthreads but thread 0 returned");
}
END_TEST

START_TEST(test_stack_overrun_aborts) { expect_abort(overrunning_kernel, 4, "thread 1 of block 0 overran its"); }
END_TEST

/* ---- TF32 tensor-core instructions ------------------------------------- */

enum { ROUNDED = 4096 };

/* Thread 0 rounds every value. */
static const char rounding_kernel[] =
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  if (threadIdx.x == 0) for (int i = 0; i < 4096; i++) out[i] = nnc_tf32(x[i]);\n"
    "  __syncthreads();\n"
    "}\n";

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* cvt.rna.tf32.f32 as cuda-emu runs it, bit for bit against the scalar
 * reference, on ties (which round away from zero: truncation and
 * round-to-even both fail them), carries into the exponent and past the
 * largest float, subnormals, infinities and NaN, and random bit patterns. */
START_TEST(test_tf32_rounding_exact) {
  static float x[ROUNDED], out[ROUNDED];
  static const struct { float in, want; } known[] = {
      {1.0f + 0x1p-11f, 1.0f + 0x1p-10f},   /* a tie: away from zero (even and truncation: 1) */
      {-1.0f - 0x1p-11f, -1.0f - 0x1p-10f}, /* the same below zero */
      {1.0f + 0x1p-11f - 0x1p-23f, 1.0f},   /* just under the tie */
      {1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-9f}, /* a tie from an odd last bit */
      {2.0f - 0x1p-23f, 2.0f},              /* carries into the exponent */
      {0x1.fffffep127f, INFINITY},           /* past the largest float */
      {1.0f + 0x1p-10f, 1.0f + 0x1p-10f},   /* already TF32 */
      {0x1p-149f, 0.0f},                     /* the smallest subnormal */
      {0x1p-137f, 0x1p-136f},                /* a subnormal tie */
  };
  int nknown = (int)(sizeof known / sizeof known[0]);
  for (int i = 0; i < nknown; i++) x[i] = known[i].in;
  x[nknown] = INFINITY, x[nknown + 1] = -INFINITY, x[nknown + 2] = NAN, x[nknown + 3] = -0.0f;
  uint32_t state = 12345;
  for (int i = nknown + 4; i < ROUNDED; i++) {
    state = state * 1664525u + 1013904223u;
    /* the low bits near the rounding point: ties and near-ties are common */
    uint32_t u = state ^ (i % 3 == 0 ? 0 : (state >> 7) & 0x1fffu);
    if (i % 5 == 0) u = (u & 0xffffe000u) | 0x1000u; /* an exact tie */
    x[i] = from_bits(u);
  }
  void *so;
  emu_launch_fn *fn = load(rounding_kernel, "", &so);
  float *po = out;
  const float *px = x;
  void *args[2] = {&po, &px};
  fn(args, 1, 32, 0, 1);
  dlclose(so);
  for (int i = 0; i < nknown; i++)
    ck_assert_msg(bits_of(out[i]) == bits_of(known[i].want), "tf32(%a) = %a, want %a", (double)known[i].in,
                  (double)out[i], (double)known[i].want);
  for (int i = 0; i < ROUNDED; i++) {
    float want = harness_tf32(x[i]);
    if (isnan(want)) ck_assert_msg(isnan(out[i]), "tf32(NaN) = %a", (double)out[i]);
    else
      ck_assert_msg(bits_of(out[i]) == bits_of(want), "tf32(%a) [%08x] = %a, want %a", (double)x[i], bits_of(x[i]),
                    (double)out[i], (double)want);
    if (!isnan(want)) ck_assert_msg((bits_of(out[i]) & 0x1fffu) == 0, "tf32(%a) keeps low bits", (double)x[i]);
  }
}
END_TEST

enum { MMA_WARPS = 3, MMA_CALLS = 3, MMA_IN = 16 * 8 + 8 * 8, MMA_OUT = 16 * 8 };

/* Each warp (the third part-filled would not be valid CUDA, so three full
 * ones) chains three m16n8k8 mma.sync: D = A3 B3 + (A2 B2 + (A1 B1 + C)),
 * each A (16x8, row major) and B (8x8, row major) its own part of x, read
 * in the fragment layout; C is x's first 128 values. */
static const char mma_kernel[] =
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  const int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;\n"
    "  float d[4];\n"
    "  for (int q = 0; q < 4; q++) d[q] = x[(g + 8 * (q / 2)) * 8 + 2 * t + q % 2];\n"
    "  for (int call = 0; call < 3; call++) {\n"
    "    const float *a = x + 128 + (warp * 3 + call) * 192, *b = a + 128;\n"
    "    float fa[4] = {a[g * 8 + t], a[(g + 8) * 8 + t], a[g * 8 + t + 4], a[(g + 8) * 8 + t + 4]};\n"
    "    float fb[2] = {b[t * 8 + g], b[(t + 4) * 8 + g]};\n"
    "    for (int i = 0; i < 4; i++) fa[i] = nnc_tf32(fa[i]);\n"
    "    for (int i = 0; i < 2; i++) fb[i] = nnc_tf32(fb[i]);\n"
    "    nnc_mma_tf32(d, fa, fb);\n"
    "  }\n"
    "  for (int q = 0; q < 4; q++) out[warp * 128 + (g + 8 * (q / 2)) * 8 + 2 * t + q % 2] = d[q];\n"
    "  __syncthreads();\n"
    "}\n";

/* The warp's fragments meet where the PTX ISA puts them: every element of
 * every warp's D against the chained products of TF32-rounded operands,
 * summed in double. The sums are of exact products, so only their float
 * additions differ from the double: 1e-6 of the magnitude; a lane's
 * fragment in the wrong place, or unrounded operands, is far off. */
START_TEST(test_mma_fragments) {
  static float x[128 + MMA_WARPS * MMA_CALLS * MMA_IN], out[MMA_WARPS * MMA_OUT];
  uint32_t state = 777;
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
    state = state * 1664525u + 1013904223u;
    x[i] = (float)((double)(state >> 8) / 8388608.0 - 1.0);
  }
  void *so;
  emu_launch_fn *fn = load(mma_kernel, "", &so);
  float *po = out;
  const float *px = x;
  void *args[2] = {&po, &px};
  fn(args, 1, 32 * MMA_WARPS, 0, 1);
  dlclose(so);
  for (int w = 0; w < MMA_WARPS; w++)
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < 8; j++) {
        double want = x[i * 8 + j], size = fabs(want);
        for (int call = 0; call < MMA_CALLS; call++) {
          const float *a = x + 128 + (w * MMA_CALLS + call) * MMA_IN, *b = a + 128;
          for (int k = 0; k < 8; k++) {
            double p = (double)harness_tf32(a[i * 8 + k]) * harness_tf32(b[k * 8 + j]);
            want += p, size += fabs(p);
          }
        }
        double got = out[w * MMA_OUT + i * 8 + j];
        ck_assert_msg(fabs(got - want) <= 1e-6 * size, "warp %d D[%d][%d] = %.9g, want %.9g", w, i, j, got, want);
      }
}
END_TEST

/* Lane 3 leaves while its warp waits at a warp-wide instruction. */
static const char mma_disagreeing_kernel[] =
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  if (threadIdx.x == 3) return;\n"
    "  float d[4] = {0}, a[4] = {x[0], x[1], x[2], x[3]}, b[2] = {x[4], x[5]};\n"
    "  nnc_mma_tf32(d, a, b);\n"
    "  out[threadIdx.x] = d[0];\n"
    "  __syncthreads();\n"
    "}\n";

START_TEST(test_mma_disagreement_aborts) {
  expect_abort(mma_disagreeing_kernel, 32, "thread 3 returned but thread 0 waits at a warp-wide instruction");
}
END_TEST

/* cp.async as the PTX ISA has it: a copy's destination is undefined until
 * a wait_group covers its group (the emulation shows NaN), wait_group 1
 * leaves the newest group pending, a short copy zero-fills the rest, and
 * another thread's copies are seen after its wait and a barrier. */
static const char async_kernel[] =
    "NNC_KERNEL void nnc_test_exchange(float *NNC_RESTRICT out, const float *NNC_RESTRICT x) {\n"
    "  __shared__ NNC_ALIGN16 float s[40];\n"
    "  const int t = (int)threadIdx.x;\n"
    "  nnc_cp_async16(&s[4 * t], x + 4 * t, 16);\n"
    "  nnc_cp_async_commit();\n"
    "  nnc_cp_async16(&s[16 + 4 * t], x + 16 + 4 * t, 8);\n"
    "  nnc_cp_async4(&s[32 + t], x, 0);\n"
    "  nnc_cp_async_commit();\n"
    "  out[t] = s[4 * t];\n"
    "  nnc_cp_async_wait(1);\n"
    "  out[4 + t] = s[4 * t + 3];\n"
    "  out[8 + t] = s[16 + 4 * t];\n"
    "  nnc_cp_async_wait(0);\n"
    "  for (int i = 0; i < 4; i++) out[12 + 4 * t + i] = s[16 + 4 * t + i];\n"
    "  out[28 + t] = s[32 + t];\n"
    "  __syncthreads();\n"
    "  out[32 + t] = s[4 * ((t + 1) % 4) + 1];\n"
    "}\n";

START_TEST(test_cp_async_semantics) {
  float x[32], out[36];
  for (int i = 0; i < 32; i++) x[i] = (float)i + 0.5f;
  void *so;
  emu_launch_fn *fn = load(async_kernel, "", &so);
  float *po = out;
  const float *px = x;
  void *args[2] = {&po, &px};
  fn(args, 1, 4, 0, 1);
  dlclose(so);
  for (int t = 0; t < 4; t++) {
    ck_assert_msg(isnan(out[t]), "thread %d read %g before its wait", t, out[t]);
    ck_assert_float_eq(out[4 + t], x[4 * t + 3]);
    ck_assert_msg(isnan(out[8 + t]), "thread %d read %g from a group wait_group 1 left pending", t, out[8 + t]);
    ck_assert_float_eq(out[12 + 4 * t], x[16 + 4 * t]);
    ck_assert_float_eq(out[13 + 4 * t], x[17 + 4 * t]);
    ck_assert_float_eq(out[14 + 4 * t], 0.0f);
    ck_assert_float_eq(out[15 + 4 * t], 0.0f);
    ck_assert_float_eq(out[28 + t], 0.0f);
    ck_assert_float_eq(out[32 + t], x[4 * ((t + 1) % 4) + 1]);
  }
}
END_TEST

/* A generated FP32 GEMM (sm_90: cp.async for both operands, 16 bytes at a
 * time for B) matches a direct product; the same kernel with its
 * cp.async.wait_group taken out reads slabs before they land, and the
 * emulation shows it. */
static void run_gemm(const nnc_cuda_kernel *k, const float *a, const float *b, float *out) {
  void *so;
  emu_launch_fn *fn = load_kernel(k, "", &so);
  const float *bufs[3] = {out, a, b};
  void *values[3], *args[3];
  for (int i = 0; i < k->nargs; i++) values[i] = (void *)bufs[k->args[i].kind == NNC_CUDA_ARG_OUT ? 0 : 1 + k->args[i].node];
  for (int i = 0; i < k->nargs; i++) args[i] = &values[i];
  fn(args, k->grid, k->block, 0, k->grid);
  dlclose(so);
}

START_TEST(test_generated_gemm_needs_its_wait) {
  enum { M = 70, K = 40, N = 68 };
  const char *text = "graph {\n  %0 = input() {name=\"a\"} : f32[70,40]\n  %1 = input() {name=\"b\"} : f32[40,68]\n"
                     "  %2 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[70,68]\n  output \"out\" = %2\n}\n";
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  harness_set_precision("fp32");
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate_for(nnc_test_options(), "sm_90", g, &p, &st) == 0, "%s", st.msg);
  harness_set_precision(NULL);
  ck_assert_int_eq(p.count, 1);
  nnc_cuda_kernel *k = &p.kernels[0];
  ck_assert_ptr_nonnull(strstr(k->source, "nnc_cp_async16("));
  static float a[M * K], b[K * N], out[M * N];
  for (int i = 0; i < M * K; i++) a[i] = (float)((i * 37) % 23) - 11.0f;
  for (int i = 0; i < K * N; i++) b[i] = (float)((i * 11) % 19) - 9.0f;
  run_gemm(k, a, b, out);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float want = 0; /* small integers: exact in any order */
      for (int q = 0; q < K; q++) want += a[i * K + q] * b[q * N + j];
      ck_assert_msg(out[i * N + j] == want, "out[%d][%d] = %g, want %g", i, j, out[i * N + j], want);
    }
  char *wait = strstr(k->source, "nnc_cp_async_wait(0);");
  ck_assert_ptr_nonnull(wait);
  memset(wait, ' ', strlen("nnc_cp_async_wait(0);"));
  run_gemm(k, a, b, out);
  int nans = 0;
  for (int i = 0; i < M * N; i++) nans += isnan(out[i]);
  ck_assert_msg(nans > 0, "without its wait the GEMM still read every slab");
  nnc_cuda_program_free(&p);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_emu_barriers(void) {
  TCase *tc = tcase_create("emu_barriers");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_barrier_exchange);
  tcase_add_test(tc, test_barrier_exchange_ucontext);
  tcase_add_test(tc, test_barrier_disagreement_aborts);
  tcase_add_test(tc, test_stack_overrun_aborts);
  tcase_add_test(tc, test_tf32_rounding_exact);
  tcase_add_test(tc, test_mma_fragments);
  tcase_add_test(tc, test_mma_disagreement_aborts);
  tcase_add_test(tc, test_cp_async_semantics);
  tcase_add_test(tc, test_generated_gemm_needs_its_wait);
  return tc;
}
