#include "passes/pass.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"

const char *const nnc_pass_names[] = {"verify", "infer-shapes", "loss", "autodiff", "optimizer", "dce", "fuse", "plan-memory", NULL};

static int run_verify(nnc_graph **g, const nnc_pass_ctx *ctx, nnc_status *st) {
  (void)ctx;
  return nnc_graph_verify(*g, st);
}

/* Rebuilding the graph with the batch set re-runs every node's shape check,
 * so a concrete batch yields concrete types for the backends. */
static int run_infer_shapes(nnc_graph **g, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *out = nnc_graph_with_batch(*g, ctx->batch, st);
  if (!out) return -1;
  nnc_graph_free(*g);
  *g = out;
  return 0;
}

const nnc_pass nnc_pass_verify = {"verify", run_verify};
const nnc_pass nnc_pass_infer_shapes = {"infer-shapes", run_infer_shapes};

/* Writes to a temporary name and renames, so a dump is never half-written. */
static int write_file_atomic(const char *path, const char *text, nnc_status *st) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return nnc_fail(st, "cannot write %s: %s", tmp, strerror(errno));
  int ok = fputs(text, f) >= 0;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return nnc_fail(st, "cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

static int dump_after(const nnc_graph *g, const char *pass, int index, const nnc_dump_opts *dump,
                      nnc_status *st) {
  if (!dump || !dump->enabled) return 0;
  if (dump->only_pass && strcmp(dump->only_pass, pass) != 0) return 0;
  char *text = nnc_graph_to_text(g);
  int rc = 0;
  const char *label = dump->label ? dump->label : "graph";
  if (dump->dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%02d-%s.ir", dump->dir, label, index, pass);
    rc = write_file_atomic(path, text, st);
  } else {
    printf("// ----- IR after %s (%s) -----\n%s", pass, label, text);
    fflush(stdout);
  }
  free(text);
  return rc;
}

int nnc_pass_run(nnc_graph **g, const nnc_pass *const *passes, int npasses, const nnc_pass_ctx *ctx,
                 const nnc_dump_opts *dump, nnc_status *st) {
  for (int i = 0; i < npasses; i++) {
    if (passes[i]->run(g, ctx, st)) return nnc_fail_prefix(st, "in pass %s: ", passes[i]->name);
    if (passes[i]->run != run_verify && nnc_graph_verify(*g, st))
      return nnc_fail_prefix(st, "the graph is invalid after pass %s: ", passes[i]->name);
    if (dump_after(*g, passes[i]->name, i, dump, st)) return -1;
  }
  return 0;
}
