/* The nnc command line. Only this file exits; everything else returns a status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/nvrtc.h"
#include "frontend/opt.h"
#include "frontend/options.h"
#include "frontend/script.h"
#include "ir/atomic_file.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "runtime/backend.h"
#include "runtime/comm.h"
#include "runtime/cuda/cuda_predict.h"
#include "runtime/cuda/nccl.h"

#define BENCH_USAGE "nnc bench SCRIPT [--batch N] [--infer-batch N] [--steps N] [--top N] [--predict h100|h200] [--no-fuse]"
#define CHECK_USAGE "nnc check SCRIPT [--backend NAME] [--steps N] [--batch N] [--tol X] [--grad-tol X] [--no-fuse]"

static const char usage[] =
    "usage: nnc SCRIPT [--name value ...]   run a model script\n"
    "       " BENCH_USAGE "\n"
    "                                      time the script's model: train step and inference\n"
    "       " CHECK_USAGE "\n"
    "                                      train the script's model on a backend (default cuda)\n"
    "                                      and on interp from one seed; compare each step's loss,\n"
    "                                      gradients and weight update\n"
    "       nnc opt FILE.ir --passes P1,P2 [--gpu] [--lower SPEC] [--split-input-file]\n"
    "                                      run passes over text IR and print the result\n"
    "       nnc --help | --version\n"
    "\n"
    "Options read by nnc itself (the rest go to nnc.option in the script):\n"
    "  --dump-ir          print the IR after every pass\n"
    "  --dump-ir=PASS     print the IR after one pass\n"
    "  --dump-dir DIR     write IR dumps to files in DIR (made if missing) instead of stdout\n"
    "  --dump-graph DIR   write each pass's graph to DIR as Graphviz DOT (and SVG where dot is installed)\n"
    "  --seed N           the seed of every random draw (default 1)\n"
    "  --no-fuse          run every op on its own (results agree either way)\n"
    "  --backend NAME     where models run: cpu (default), interp (the reference), cuda, cuda-emu\n"
    "  --arch SM          CUDA target of generated kernels, e.g. sm_90 (default: the GPU's)\n"
    "  --precision P      GEMMs on cuda/cuda-emu: tf32 (tensor cores, the default on sm_80\n"
    "                     and newer) or fp32 (float products; also $NNC_PRECISION)\n"
    "  --dump-kernels DIR write each generated CUDA kernel to DIR/<graph>/<kernel>.cu\n"
    "  --lower SPEC       on cuda/cuda-emu, run op kinds as library calls:\n"
    "                     conv=cudnn, matmul=cublas, or both comma-separated\n"
    "                     (default: nnc's own kernels; also $NNC_LOWER)\n"
    "  --dry-run          build and check the models and print their summaries,\n"
    "                     but train, evaluate and predict nothing\n"
    "  --collective-timeout S  under mpirun, seconds a rank waits for the others in\n"
    "                     an all-reduce before it ends the job (default 60)\n"
    "  --bucket-mb X      under mpirun, megabytes of gradients per all-reduce (default 25)\n"
    "\n"
    "Environment: NNC_DATA (data set folder), NNC_DEBUG=1.. (more detail; ,nan checks\n"
    "every value of every step and names the first that is not finite),\n"
    "NNC_NOCACHE=1 (compile kernels afresh), NNC_CC (cuda-emu's C compiler).\n";

static int known_pass(const char *name) { return nnc_pass_find(name) != NULL; }

/* Splits nnc's own flags from the script's options. */
static int parse_count(const char *flag, const char *text, long long *out, nnc_status *st) {
  char *end;
  *out = strtoll(text, &end, 10);
  if (*end || !*text || *out < 1) return nnc_fail(st, "%s expects a positive integer, got '%s'", flag, text);
  return 0;
}

/* nnc bench's own flags; returns 1 when argv[i] was one (and its value). */
static int parse_bench_flag(int argc, char **argv, int *i, nnc_run_config *c, nnc_status *st, int *rc) {
  const char *a = argv[*i];
  long long value;
  int known = !strcmp(a, "--batch") || !strcmp(a, "--infer-batch") || !strcmp(a, "--steps") || !strcmp(a, "--top") ||
              !strcmp(a, "--predict");
  if (!c->bench.enabled || !known) return 0;
  if (*i + 1 >= argc) return *rc = nnc_fail(st, "%s needs a value", a), 1;
  if (!strcmp(a, "--predict")) {
    c->bench.predict = argv[++*i];
    if (!nnc_gpu_spec_find(c->bench.predict, st)) *rc = -1;
    return 1;
  }
  if ((*rc = parse_count(a, argv[++*i], &value, st))) return 1;
  if (!strcmp(a, "--batch")) c->bench.batch = value;
  else if (!strcmp(a, "--infer-batch")) c->bench.infer_batch = value;
  else if (!strcmp(a, "--top")) c->bench.top = value > 100000 ? 100000 : (int)value;
  else c->bench.steps = (int)value;
  return 1;
}

/* nnc check's own flags; returns 1 when argv[i] was one (and its value). */
static int parse_check_flag(int argc, char **argv, int *i, nnc_run_config *c, nnc_status *st, int *rc) {
  const char *a = argv[*i];
  long long value;
  int known = !strcmp(a, "--backend") || !strcmp(a, "--steps") || !strcmp(a, "--batch") || !strcmp(a, "--tol") ||
              !strcmp(a, "--grad-tol");
  if (!c->check.enabled || !known) return 0;
  if (*i + 1 >= argc) return *rc = nnc_fail(st, "%s needs a value", a), 1;
  const char *v = argv[++*i];
  if (!strcmp(a, "--backend")) {
    c->check.backend = v;
    if (!nnc_backend_find(v, st)) *rc = -1;
  } else if (!strcmp(a, "--tol") || !strcmp(a, "--grad-tol")) {
    char *end;
    double *tol = !strcmp(a, "--grad-tol") ? &c->check.grad_tolerance : &c->check.tolerance;
    *tol = strtod(v, &end);
    if (*end || !*v || !(*tol >= 0)) *rc = nnc_fail(st, "%s expects a non-negative number, got '%s'", a, v);
  } else if ((*rc = parse_count(a, v, &value, st)) == 0) {
    if (!strcmp(a, "--steps")) c->check.steps = (int)value;
    else c->check.batch = value;
  }
  return 1;
}

/* Status of a bad --lower or $NNC_LOWER: a usage error. */
enum { BAD_LOWER = 2 };

/* `nnc bench` and `nnc check`: their defaults, and argv moved past the word. */
static int parse_subcommand(int *argc, char ***argv, nnc_run_config *c, nnc_status *st) {
  int bench = !strcmp((*argv)[1], "bench"), check = !strcmp((*argv)[1], "check");
  if (!bench && !check) return 0;
  if (*argc < 3) return nnc_fail(st, "usage: %s", bench ? BENCH_USAGE : CHECK_USAGE);
  if (bench) {
    c->bench.enabled = 1;
    c->bench.batch = 32;
    c->bench.infer_batch = 256;
    c->bench.steps = 10;
    c->bench.top = 10;
  } else {
    c->check.enabled = 1;
    c->check.backend = "cuda";
    c->check.steps = 5;
    c->check.batch = 32;
    c->check.tolerance = -1; /* the backend's: runtime/train/check.h */
    c->check.grad_tolerance = -1;
  }
  c->dry_run = 1;
  (*argv)++, (*argc)--;
  return 0;
}

static int parse_args(int argc, char **argv, nnc_script_args *args, const char **script_opts, double *timeout_s,
                      nnc_status *st) {
  nnc_options *o = &args->config.opts;
  if (nnc_options_from_env(o, st)) return BAD_LOWER;
  if (parse_subcommand(&argc, &argv, &args->config, st)) return -1;
  args->path = argv[1];
  args->config.seed = 1;
  o->backend = "cpu";
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    int rc = 0;
    if (parse_bench_flag(argc, argv, &i, &args->config, st, &rc) ||
        parse_check_flag(argc, argv, &i, &args->config, st, &rc)) {
      if (rc) return rc;
    } else if (!strcmp(a, "--arch") || !strcmp(a, "--dump-kernels")) {
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      const char *v = argv[++i];
      if (a[2] == 'd') o->dump_kernels = v;
      else if (!nnc_nvrtc_valid_arch(v))
        return nnc_fail(st, "--arch expects a CUDA target such as sm_90 or compute_90, got '%s'", v);
      else o->arch = v;
    } else if (!strcmp(a, "--precision")) {
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      if (nnc_cuda_check_precision(argv[++i], st)) return -1;
      o->precision = argv[i];
    } else if (!strcmp(a, "--lower")) {
      if (i + 1 >= argc) return nnc_fail(st, "--lower needs a value, e.g. conv=cudnn,matmul=cublas"), BAD_LOWER;
      memset(o->lower, 0, sizeof o->lower); /* the command line wins over $NNC_LOWER */
      if (nnc_lower_parse(argv[++i], o->lower, st)) return BAD_LOWER;
    } else if (!strcmp(a, "--dry-run")) {
      args->config.dry_run = 1;
    } else if (!strcmp(a, "--no-fuse")) {
      o->no_fuse = 1;
    } else if (!strcmp(a, "--dump-ir")) {
      o->dump.enabled = 1;
    } else if (!strncmp(a, "--dump-ir=", 10)) {
      if (!known_pass(a + 10)) return nnc_fail(st, "--dump-ir: no pass is named '%s'", a + 10);
      o->dump.enabled = 1;
      o->dump.only_pass = a + 10;
    } else if (!strcmp(a, "--backend")) {
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      args->config.backend_asked = argv[i + 1];
      const nnc_backend *b = nnc_backend_select(argv[++i], o, stderr, st);
      if (!b) return -1;
      o->backend = b->name; /* cpu in place of a cuda that cannot run here */
    } else if (!strcmp(a, "--dump-graph")) {
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      o->dump.graph_dir = argv[++i];
    } else if (!strcmp(a, "--collective-timeout")) {
      char *end;
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      *timeout_s = strtod(argv[++i], &end);
      if (*end || !*argv[i] || !(*timeout_s > 0))
        return nnc_fail(st, "--collective-timeout expects a positive number of seconds, got '%s'", argv[i]);
    } else if (!strcmp(a, "--bucket-mb")) {
      char *end;
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      double mb = strtod(argv[++i], &end);
      if (*end || !*argv[i] || !(mb > 0 && mb < 1e6))
        return nnc_fail(st, "--bucket-mb expects a positive number of megabytes, got '%s'", argv[i]);
      args->config.bucket_bytes = (long long)(mb * 1024 * 1024);
    } else if (!strcmp(a, "--dump-dir") || !strcmp(a, "--seed")) {
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", a);
      if (a[2] == 'd') o->dump.dir = argv[++i], o->dump.enabled = 1;
      else {
        char *end;
        args->config.seed = strtoull(argv[++i], &end, 10);
        if (*end || !*argv[i]) return nnc_fail(st, "--seed expects a non-negative integer, got '%s'", argv[i]);
      }
    } else {
      script_opts[args->nopts++] = a;
    }
  }
  args->opts = script_opts;
  /* Dump folders are made up front, as mkdir -p, so a bad one fails at once. */
  const char *dirs[][2] = {{"--dump-dir", o->dump.dir}, {"--dump-graph", o->dump.graph_dir}};
  for (int k = 0; k < 2; k++)
    if (dirs[k][1] && nnc_make_dirs(dirs[k][1], st)) return nnc_fail_prefix(st, "%s: ", dirs[k][0]);
  return 0;
}

/* Under `mpirun -np N` (N > 1; Open MPI says so in the environment) every
 * rank trains its shard of each batch; rank 0 alone prints progress and
 * writes files, so the others' standard output goes nowhere. */
static int open_ranks(nnc_run_config *config, double timeout_s, nnc_status *st) {
  const char *size = getenv("OMPI_COMM_WORLD_SIZE");
  if (!size || atoi(size) < 2) return 0;
  config->comm = nnc_comm_open(atoi(size), timeout_s, st);
  if (!config->comm) return -1;
  if (nnc_comm_rank(config->comm) != 0 && !freopen("/dev/null", "w", stdout))
    return nnc_fail(st, "rank %d: cannot quiet its standard output", nnc_comm_rank(config->comm));
  return 0;
}

/* Data-parallel training on GPUs sums the gradients with NCCL, one GPU per
 * rank. Its bootstrap (loading it, rank 0's unique id, the broadcast) runs
 * wherever cuda was asked for, so that a machine without GPUs still shows
 * that much works; where no rank has a GPU the ranks train on cpu, and
 * where NCCL or a rank's GPU is missing, rank 0 says why and trains alone.
 * Returns 1 on a rank that has nothing to do, with config->comm cleared on
 * rank 0 when it trains alone. */
static int check_gpu_ranks(nnc_run_config *config, nnc_status *st) {
  nnc_comm *c = config->comm;
  if (!c || !config->backend_asked || strcmp(config->backend_asked, "cuda")) return 0;
  int rank = nnc_comm_rank(c), ranks = nnc_comm_size(c);
  char done[160] = "";
  nnc_status why = {0};
  double have[2] = {nnc_nccl_bootstrap(c, &config->opts, done, sizeof done, &why) == 0, !strcmp(config->opts.backend, "cuda")};
  if (nnc_comm_sum_doubles(c, have, 2, "checking the ranks' NCCL and GPUs", st)) return -1;
  if (have[1] == 0) {
    if (rank == 0)
      fprintf(stderr, "nnc: %s; no GPU to make its communicator on, so the %d ranks train on cpu\n",
              why.failed ? why.msg : done, ranks);
    return 0;
  }
  if (have[0] == ranks && have[1] == ranks) return 0;
  if (rank == 0) {
    char missing[96];
    snprintf(missing, sizeof missing, "%d of the %d ranks have a GPU", (int)have[1], ranks);
    fprintf(stderr, "nnc: data-parallel training on cuda needs NCCL and one GPU per rank (%s): rank 0 trains alone\n",
            have[0] < ranks && why.failed ? why.msg : missing);
  }
  config->comm = NULL;
  return rank != 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("nnc %s\n", NNC_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "opt")) return nnc_opt_main(argc - 1, argv + 1);
  if (argv[1][0] == '-' && strcmp(argv[1], "-")) {
    fprintf(stderr, "nnc: unknown option '%s'\n%s", argv[1], usage);
    return 1;
  }
  nnc_script_args args = {0};
  const char **script_opts = calloc((size_t)argc, sizeof *script_opts);
  nnc_status st = {0};
  double timeout_s = 60;
  int rc = parse_args(argc, argv, &args, script_opts, &timeout_s, &st);
  if (rc == 0) rc = open_ranks(&args.config, timeout_s, &st);
  nnc_comm *comm = args.config.comm;
  int idle = rc == 0 ? check_gpu_ranks(&args.config, &st) : 0;
  if (idle < 0) rc = -1;
  if (rc == 0 && !idle) rc = nnc_script_run(&args, &st);
  free(script_opts);
  fflush(stdout);
  if (rc && comm) {
    /* One message, from the rank that failed; the others end with it. */
    fprintf(stderr, "nnc: error: rank %d of %d: %s\n", nnc_comm_rank(comm), nnc_comm_size(comm), st.msg);
    nnc_comm_abort(comm, 1);
  }
  if (rc) fprintf(stderr, "nnc: error: %s\n", st.msg);
  nnc_comm_close(comm);
  return rc == BAD_LOWER ? BAD_LOWER : rc ? 1 : 0;
}
