/* Whole runs under `mpirun -np 2` (oversubscribed: CI has 2 cores) against
 * one process: models/cnn.lua's model on 256 rows of Fashion-MNIST at
 * global batch 32, with dropout. The losses, evaluate, predict and the
 * saved weights agree up to the order of summation (the all-reduce adds
 * two half-batch gradients where one process sums one batch); only rank 0
 * prints and writes. A rank that dies or stops ends the job in seconds
 * with a message. Skips, saying why, without mpirun or the data set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/store/safetensors.h"
#include "tests/testutil.h"

/* Relative agreement of losses and weights: float sums in another order
 * over one epoch of Adam drift by a few ulps a step. */
#define TOLERANCE 1e-4

static int can_run(void) {
  if (system("command -v mpirun >/dev/null 2>&1") != 0) {
    printf("mpi: skipped: mpirun is not installed (openmpi-bin)\n");
    return 0;
  }
  if (access("/usr/share/datasets/fashion-mnist", F_OK) != 0 && !getenv("NNC_DATA")) {
    printf("mpi: skipped: Fashion-MNIST is not installed\n");
    return 0;
  }
  return 1;
}

static char *dir_path(const char *name) {
  static char paths[16][512];
  static int slot;
  static char dir[256];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/nnc-mpi-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
  }
  char *p = paths[slot++ % 16];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

/* Runs cmd in the source tree; its stdout and stderr, and the exit status. */
static int run(const char *cmd, char **out) {
  char full[4096];
  const char *path = dir_path("run.out");
  /* In the sanitizer tree, leak checking is off for the ranks: Open MPI
   * unloads its plugins at MPI_Finalize and leaves what they allocated,
   * which LeakSanitizer reports from unknown modules it cannot suppress.
   * Address and undefined-behaviour checks stay on. */
  snprintf(full, sizeof full, "cd '%s' && ASAN_OPTIONS=detect_leaks=0 %s >'%s' 2>&1 </dev/null", NNC_SOURCE_DIR, cmd,
           path);
  int status = system(full);
  *out = nnc_test_read_file(path);
  if (!*out) *out = calloc(1, 1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int count_of(const char *text, const char *key) {
  int n = 0;
  for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) n++;
  return n;
}

/* The last float of every line that starts with prefix. */
static int line_values(const char *text, const char *prefix, double *v, int max) {
  int n = 0;
  for (const char *p = text; *p && n < max;) {
    const char *eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    if (!strncmp(p, prefix, strlen(prefix))) {
      const char *last = eol;
      while (last > p && last[-1] != ' ') last--;
      v[n++] = strtod(last, NULL);
    }
    p = *eol ? eol + 1 : eol;
  }
  return n;
}

static void expect_close(const char *what, double got, double want) {
  ck_assert_msg(fabs(got - want) <= TOLERANCE * fmax(1.0, fabs(want)), "%s: 2 ranks %.9g, one process %.9g", what,
                got, want);
}

/* ||a - b|| / ||b|| over every weight of two files of one layout: Adam's
 * first steps move a weight by about the learning rate whatever the size
 * of its gradient, so where a gradient is near zero a change of summation
 * order can flip one weight's step; the norm shows whether the models
 * agree as a whole. */
static double weights_difference(const char *a, const char *b) {
  nnc_safetensors_index ia, ib;
  nnc_status st = {0};
  ck_assert_msg(nnc_safetensors_read_index(a, &ia, &st) == 0, "%s", st.msg);
  ck_assert_msg(nnc_safetensors_read_index(b, &ib, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(ia.count, ib.count);
  ck_assert_int_eq(ia.data_size, ib.data_size);
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  size_t n = (size_t)ia.data_size / 4;
  float *va = malloc(4 * n), *vb = malloc(4 * n);
  ck_assert(fseek(fa, (long)ia.data_start, SEEK_SET) == 0 && fread(va, 4, n, fa) == n);
  ck_assert(fseek(fb, (long)ib.data_start, SEEK_SET) == 0 && fread(vb, 4, n, fb) == n);
  double diff = 0, norm = 0, worst = 0;
  for (size_t i = 0; i < n; i++) {
    diff += (double)(va[i] - vb[i]) * (va[i] - vb[i]);
    norm += (double)vb[i] * vb[i];
    worst = fmax(worst, fabs(va[i] - vb[i]));
  }
  printf("mpi: weights: relative norm of the difference %.3g, largest difference %.3g\n", sqrt(diff / norm), worst);
  fclose(fa), fclose(fb), free(va), free(vb);
  nnc_safetensors_index_free(&ia), nnc_safetensors_index_free(&ib);
  return sqrt(diff / norm);
}

/* One process and two ranks on `backend` over `rows` rows (steps train
 * steps): the same losses, evaluate, predict and weights; rank 0 alone
 * prints and writes. */
static void compare_ranks(const char *backend, int rows, int steps) {
  char cmd[2048], *one, *two;
  const char *one_path = dir_path("one.safetensors");
  snprintf(cmd, sizeof cmd, "'%s' tests/mpi/cnn_subset.lua --out '%s' --backend %s --rows %d", NNC_BINARY, one_path,
           backend, rows);
  ck_assert_msg(run(cmd, &one) == 0, "%s", one);
  /* Each rank is given its own path: rank 0's must be written, rank 1's not. */
  const char *w0 = strdup(dir_path("w_0.safetensors")), *w1 = strdup(dir_path("w_1.safetensors"));
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s", w0);
  prefix[strlen(prefix) - strlen("0.safetensors")] = 0;
  snprintf(cmd, sizeof cmd,
           "mpirun --allow-run-as-root --oversubscribe -np 2 sh -c "
           "'exec \"$0\" tests/mpi/cnn_subset.lua --out %s$OMPI_COMM_WORLD_RANK.safetensors --backend %s --rows %d' '%s'",
           prefix, backend, rows, NNC_BINARY);
  ck_assert_msg(run(cmd, &two) == 0, "%s", two);
  double a[16], b[16];
  int n = line_values(one, "step ", a, 16);
  ck_assert_int_eq(n, steps);
  ck_assert_int_eq(line_values(two, "step ", b, 16), n);
  for (int i = 0; i < n; i++) expect_close("loss", b[i], a[i]);
  ck_assert_int_eq(line_values(one, "evaluate ", a, 1), 1);
  ck_assert_int_eq(line_values(two, "evaluate ", b, 1), 1);
  expect_close("evaluate's accuracy", b[0], a[0]);
  ck_assert_int_eq(line_values(one, "predict ", a, 1), 1);
  ck_assert_int_eq(line_values(two, "predict ", b, 1), 1);
  expect_close("predict", b[0], a[0]);
  /* Rank 0 alone prints: each line once. */
  ck_assert_int_eq(count_of(two, "evaluate loss"), 1);
  struct stat sb;
  ck_assert_msg(stat(w0, &sb) == 0, "rank 0 wrote no weights");
  ck_assert_msg(stat(w1, &sb) != 0, "rank 1 wrote weights");
  /* Every file writer, not only safetensors: the CSV log and HDF5 weights. */
  const char *suffix[] = {".csv", ".h5"};
  for (int i = 0; i < 2; i++) {
    char p0[600], p1[600];
    snprintf(p0, sizeof p0, "%s%s", w0, suffix[i]);
    snprintf(p1, sizeof p1, "%s%s", w1, suffix[i]);
    ck_assert_msg(stat(p0, &sb) == 0, "rank 0 wrote no %s", p0);
    ck_assert_msg(stat(p1, &sb) != 0, "rank 1 wrote %s", p1);
  }
  double diff = weights_difference(w0, one_path);
  ck_assert_msg(diff <= TOLERANCE, "weights differ by %g (relative norm)", diff);
  free(one), free(two), free((void *)w0), free((void *)w1);
}

START_TEST(two_ranks_match_one_process) {
  if (!can_run()) return;
  compare_ranks("cpu", 256, 7); /* 224 training rows at batch 32 */
}
END_TEST

/* The cuda backend's program with its allreduce as a NCCL step, run on the
 * host device, where MPI sums in NCCL's place: the generated kernels, the
 * dropout of the global sample and the step's place in the program are
 * what a GPU runs. */
START_TEST(two_ranks_on_cuda_emu_match_one_process) {
  if (!can_run()) return;
  compare_ranks("cuda-emu", 96, 3); /* 84 training rows at batch 32 */
}
END_TEST

/* NCCL's path as far as a machine without GPUs takes it: loaded, rank 0's
 * unique id broadcast, then no GPU to make the communicator on, said once,
 * and the ranks train on cpu. */
START_TEST(nccl_bootstrap_without_gpus) {
  if (!can_run()) return;
  if (system("nvidia-smi -L >/dev/null 2>&1") == 0) {
    printf("mpi: skipped: this machine has GPUs (the NCCL path runs in full there, not its no-GPU fallback)\n");
    return;
  }
  char cmd[1024], *out;
  snprintf(cmd, sizeof cmd,
           "mpirun --allow-run-as-root --oversubscribe -np 2 '%s' tests/mpi/cnn_subset.lua --backend cuda --rows 64",
           NNC_BINARY);
  ck_assert_msg(run(cmd, &out) == 0, "%s", out);
  ck_assert_int_eq(count_of(out, "no GPU to make its communicator on, so the 2 ranks train on cpu"), 1);
  if (strstr(out, "NCCL cannot be opened"))
    printf("mpi: NCCL is not installed: only its absence was exercised\n");
  else
    ck_assert_msg(strstr(out, "loaded, unique id shared by 2 ranks;"), "%s", out);
  ck_assert_int_eq(count_of(out, "evaluate loss"), 1);
  free(out);
}
END_TEST

static double ended_after(const char *out) {
  const char *p = strstr(out, "ended after ");
  ck_assert_msg(p != NULL, "%s", out);
  return strtod(p + strlen("ended after "), NULL);
}

START_TEST(killed_rank_ends_the_job) {
  if (!can_run()) return;
  char cmd[1024], *out;
  snprintf(cmd, sizeof cmd, "bash tests/mpi/kill_rank.sh KILL '%s'", NNC_BINARY);
  ck_assert_msg(run(cmd, &out) == 0, "%s", out);
  ck_assert_msg(ended_after(out) < 10, "%s", out);
  ck_assert_msg(strstr(out, "rc=0") == NULL, "%s", out);
  /* mpirun names the rank and the signal. */
  ck_assert_msg(strstr(out, "rank 1") && strstr(out, "signal 9"), "%s", out);
  free(out);
}
END_TEST

/* A rank that stops without dying: the others' all-reduce times out. */
START_TEST(stopped_rank_times_out) {
  if (!can_run()) return;
  char cmd[1024], *out;
  /* Long enough for two ranks sharing loaded cores to reach a step together. */
  snprintf(cmd, sizeof cmd, "bash tests/mpi/kill_rank.sh STOP '%s' --collective-timeout 10", NNC_BINARY);
  ck_assert_msg(run(cmd, &out) == 0, "%s", out);
  ck_assert_msg(ended_after(out) < 25, "%s", out);
  ck_assert_msg(strstr(out, "rc=0") == NULL, "%s", out);
  ck_assert_msg(strstr(out, "nnc: error: rank 0 of 2:") && strstr(out, "waited 10 s for the other ranks"), "%s", out);
  free(out);
}
END_TEST

/* nnc bench under mpirun: the global img/s and the all-reduce's share. */
START_TEST(bench_reports_the_all_reduce) {
  if (!can_run()) return;
  char cmd[1024], *out;
  snprintf(cmd, sizeof cmd,
           "mpirun --allow-run-as-root --oversubscribe -np 2 '%s' bench models/cnn.lua --steps 2 "
           "--bucket-mb 0.2",
           NNC_BINARY);
  ck_assert_msg(run(cmd, &out) == 0, "%s", out);
  ck_assert_msg(strstr(out, "timed steps, split between the ranks"), "%s", out);
  ck_assert_msg(strstr(out, "img/s"), "%s", out);
  /* 119,484 weights in buckets of 0.2 MiB: 0.48 MB a step, in 3 buckets. */
  ck_assert_msg(strstr(out, "all-reduce: 2 ranks, 3 buckets, 0.48 MB/step;"), "%s", out);
  ck_assert_msg(strstr(out, "% overlapped)"), "%s", out);
  ck_assert_int_eq(count_of(out, "all-reduce:"), 1); /* rank 0 alone prints */
  free(out);
}
END_TEST

/* NaN in row 4 of a batch of 4: rank 1, which holds rows 3 and 4, names it
 * by its row in the global batch (the matmul's element 3 is in its own
 * second row); rank 0 finds it in the weights the all-reduce gave it at the
 * next step; the data warning comes once. */
START_TEST(each_rank_traces_its_nan) {
  if (system("command -v mpirun >/dev/null 2>&1") != 0) return (void)printf("mpi: skipped: no mpirun\n");
  const char *script = nnc_test_write_temp(
      "nan.lua", "local m = nn.Sequential { nn.Dense { 2, activation = 'softmax', input_shape = { 3 } } }\n"
                 "m:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropy' }\n"
                 "local x = data.tensor { { 1, 2, 3 }, { 1, 1, 1 }, { 0, 1, 0 }, { 2, 0/0, 2 } }\n"
                 "local h = m:fit(x, data.tensor({ 0, 1, 0, 1 }, 'i32'), { epochs = 2, batch_size = 4, shuffle = "
                 "false, verbose = 0 })\n"
                 "print('epochs', #h.loss)\n");
  char cmd[1024], *out;
  snprintf(cmd, sizeof cmd, "mpirun --allow-run-as-root --oversubscribe -np 2 '%s' '%s'", NNC_BINARY, script);
  ck_assert_msg(run(cmd, &out) == 0, "%s", out);
  ck_assert_msg(strstr(out, "warning: the loss became nan at step 1 on rank 1; the first value that is not finite is "
                            "dense (Dense) at ") &&
                    strstr(out, " = matmul in the forward pass, element 3 is nan), computed from the batch's x, which "
                                "already held nan at row 4, element 2 (1-based, in the batch)\n"),
                "%s", out);
  ck_assert_msg(strstr(out, "warning: the loss became nan at step 2 on rank 0; the first value that is not finite is "
                            "dense (Dense) at ") &&
                    strstr(out, "computed from the weight 'dense/kernel', which already held nan before the step"),
                "%s", out);
  ck_assert_int_eq(count_of(out, "warning: fit's x holds nan at [4, 2]"), 1);
  ck_assert_int_eq(count_of(out, "warning:"), 3);
  free(out);
}
END_TEST

TCase *tcase_ranks(void) {
  TCase *tc = tcase_create("ranks");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, two_ranks_match_one_process);
  tcase_add_test(tc, two_ranks_on_cuda_emu_match_one_process);
  tcase_add_test(tc, nccl_bootstrap_without_gpus);
  tcase_add_test(tc, killed_rank_ends_the_job);
  tcase_add_test(tc, stopped_rank_times_out);
  tcase_add_test(tc, bench_reports_the_all_reduce);
  tcase_add_test(tc, each_rank_traces_its_nan);
  return tc;
}
