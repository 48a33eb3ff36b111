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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cuda.h"
#include "codegen/host_cc.h"
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

/* Compiles the kernel with `extra` added to the host compiler's words and
 * returns its launcher; *so is the object to dlclose. */
static emu_launch_fn *load(const char *kernel, const char *extra, void **so) {
  nnc_cuda_kernel k = {.name = "nnc_test_exchange", .source = (char *)kernel, .nargs = 2, .cooperative = 1};
  k.args[0] = (nnc_cuda_arg){NNC_CUDA_ARG_OUT, 0};
  k.args[1] = (nnc_cuda_arg){NNC_CUDA_ARG_IN, 1};
  const nnc_cuda_kernel *ks = &k;
  nnc_strbuf src;
  nnc_strbuf_init(&src);
  nnc_cuda_render_unit(&ks, 1, &src);
  nnc_cuda_render_host_launcher(&k, &src);

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
  emu_launch_fn *fn;
  *(void **)&fn = dlsym(*so, "nnc_test_exchange_emu");
  ck_assert_ptr_nonnull(fn);
  return fn;
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

TCase *tcase_emu_barriers(void) {
  TCase *tc = tcase_create("emu_barriers");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_barrier_exchange);
  tcase_add_test(tc, test_barrier_exchange_ucontext);
  tcase_add_test(tc, test_barrier_disagreement_aborts);
  tcase_add_test(tc, test_stack_overrun_aborts);
  return tc;
}
