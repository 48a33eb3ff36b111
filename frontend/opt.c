/* `nnc opt FILE.ir --passes a,b [--gpu] [--lower SPEC] [--split-input-file]`:
 * runs passes over text IR and prints the result, as LLVM's opt and
 * mlir-opt do, so that a pass is tested by writing IR and FileCheck lines
 * (the .ir files in tests/passes) rather than C string literals. With
 * --split-input-file the file is cut at lines "// -----" into cases that
 * run on their own; a case that fails prints its error and the others go
 * on, and the exit status is 1 if any failed. The schedule pass plans for
 * the cpu backend, or with --gpu for the CUDA ones. */
#include "frontend/opt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/options.h"
#include "ir/strbuf.h"
#include "ir/text.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "runtime/backend.h"

#define OPT_USAGE "usage: nnc opt FILE.ir --passes P1,P2,... [--gpu] [--lower SPEC] [--split-input-file]"
#define MAX_PASSES 16
#define SPLIT_MARK "// -----"

typedef struct opt_args {
  const char *path;
  const nnc_pass *passes[MAX_PASSES];
  int npasses;
  int gpu, split;
  nnc_options opts;
} opt_args;

static int parse_passes(const char *list, opt_args *a, nnc_status *st) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    const nnc_pass *p = nnc_pass_find(name);
    if (!p) return nnc_fail(st, "nnc opt: no pass is named '%s'", name);
    if (a->npasses == MAX_PASSES) return nnc_fail(st, "nnc opt: at most %d passes", MAX_PASSES);
    a->passes[a->npasses++] = p;
  }
  return a->npasses ? 0 : nnc_fail(st, "nnc opt: --passes names no pass");
}

static int parse_opt_args(int argc, char **argv, opt_args *a, nnc_status *st) {
  memset(a, 0, sizeof *a);
  /* The environment as for a run (NNC_DEBUG=1: plan-memory's report), but
   * lowering only as --lower says, so that a .ir test means one thing
   * whatever $NNC_LOWER the caller has. */
  nnc_status ignored = {0};
  nnc_options_from_env(&a->opts, &ignored);
  memset(a->opts.lower, 0, sizeof a->opts.lower);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--gpu")) a->gpu = 1;
    else if (!strcmp(arg, "--split-input-file")) a->split = 1;
    else if (!strcmp(arg, "--passes") || !strcmp(arg, "--lower")) {
      if (i + 1 >= argc) return nnc_fail(st, "%s needs a value", arg);
      if (arg[2] == 'p' ? parse_passes(argv[++i], a, st) : nnc_lower_parse(argv[++i], a->opts.lower, st)) return -1;
    } else if (arg[0] == '-' && arg[1]) return nnc_fail(st, "nnc opt: unknown option '%s'\n%s", arg, OPT_USAGE);
    else if (a->path) return nnc_fail(st, "nnc opt: one input file, got '%s' and '%s'", a->path, arg);
    else a->path = arg;
  }
  if (!a->path || !a->npasses) return nnc_fail(st, "%s", OPT_USAGE);
  return 0;
}

static char *read_input(const char *path, nnc_status *st) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    nnc_fail(st, "cannot read %s", path);
    return NULL;
  }
  nnc_strbuf b;
  nnc_strbuf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) nnc_strbuf_appendn(&b, chunk, n);
  if (f != stdin) fclose(f);
  return nnc_strbuf_take(&b);
}

/* One case: parse, run the passes, print. Leading newlines stand for the
 * lines of earlier cases, so that messages cite the file's own lines. */
static int run_case(const opt_args *a, const char *text, int first_line) {
  fflush(stdout);
  nnc_strbuf src;
  nnc_strbuf_init(&src);
  for (int i = 1; i < first_line; i++) nnc_strbuf_appendc(&src, '\n');
  nnc_strbuf_append(&src, text);
  nnc_status st = {0};
  /* The schedule is the cpu backend's, or with --gpu the CUDA backends'. */
  nnc_pass_ctx ctx = {.opts = &a->opts, .batch = NNC_DIM_ANY,
                      .caps = a->gpu ? nnc_backend_cuda.caps : nnc_backend_cpu.caps};
  nnc_graph *g = nnc_graph_parse(nnc_strbuf_str(&src), a->path, &st);
  int rc = g ? nnc_pass_run(&g, a->passes, a->npasses, &ctx, NULL, &st) : -1;
  if (rc == 0) nnc_graph_print(g, stdout);
  else if (!strncmp(st.msg, a->path, strlen(a->path))) fprintf(stderr, "%s\n", st.msg); /* it has its place */
  else fprintf(stderr, "%s: error: %s\n", a->path, st.msg);
  /* In order with the other cases' errors when both go to one pipe. */
  fflush(stdout);
  fflush(stderr);
  if (g) nnc_graph_free(g);
  nnc_strbuf_free(&src);
  return rc;
}

/* The start of the next "// -----" line at or after p, or NULL. */
static char *next_mark(char *p) {
  for (char *line = p; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (!strncmp(line, SPLIT_MARK, strlen(SPLIT_MARK))) return line;
  return NULL;
}

static int count_lines(const char *from, const char *to) {
  int n = 0;
  for (const char *p = from; p < to; p++) n += *p == '\n';
  return n;
}

int nnc_opt_main(int argc, char **argv) {
  opt_args a;
  nnc_status st = {0};
  if (parse_opt_args(argc, argv, &a, &st)) {
    fprintf(stderr, "nnc: error: %s\n", st.msg);
    return 2;
  }
  char *text = read_input(a.path, &st);
  if (!text) {
    fprintf(stderr, "nnc: error: %s\n", st.msg);
    return 1;
  }
  int failed = 0, line = 1;
  for (char *start = text;;) {
    char *mark = a.split ? next_mark(start) : NULL;
    if (mark) *mark = '\0';
    if (start != text) puts(SPLIT_MARK);
    failed |= run_case(&a, start, line) != 0;
    if (!mark) break;
    line += count_lines(start, mark);
    *mark = '/';
    start = strchr(mark, '\n');
    if (!start) break;
    start++, line++;
  }
  free(text);
  return failed;
}
