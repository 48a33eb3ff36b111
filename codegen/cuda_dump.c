/* --dump-kernels: each generated kernel as a file that compiles on its own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codegen/cache.h"
#include "codegen/cuda.h"
#include "ir/op.h"

int nnc_cuda_check_precision(const char *name, nnc_status *st) {
  if (strcmp(name, "fp32") && strcmp(name, "tf32"))
    return nnc_fail(st, "--precision expects fp32 or tf32, got '%s'", name);
  return 0;
}

/* TF32 mma.sync came with sm_80 (Ampere). */
int nnc_cuda_arch_at_least(const char *arch, int sm) {
  const char *digits = !strncmp(arch, "sm_", 3) ? arch + 3 : !strncmp(arch, "compute_", 8) ? arch + 8 : arch;
  return atoi(digits) >= sm;
}

int nnc_cuda_tf32_for(const nnc_options *o, const char *arch, int *tf32, nnc_status *st) {
  int has = nnc_cuda_arch_at_least(arch, 80), fp32 = o->precision && !strcmp(o->precision, "fp32");
  *tf32 = has && !fp32;
  if (o->precision && nnc_cuda_check_precision(o->precision, st)) return -1;
  if (o->precision && !strcmp(o->precision, "tf32") && !has)
    return nnc_fail(st, "--precision tf32 needs TF32 tensor cores (sm_80 or newer); the target is %s", arch);
  return 0;
}

static int make_dir(const char *path, nnc_status *st) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
  return nnc_fail(st, "--dump-kernels: cannot make %s: %s", path, strerror(errno));
}

/* The launch and what each parameter is, as a comment. */
static void append_launch(nnc_strbuf *b, const nnc_graph *g, const nnc_cuda_kernel *k) {
  nnc_strbuf_appendf(b, "/* launch: %s<<<%u, %u>>>(", k->name, k->grid, k->block);
  for (int i = 0; i < k->nargs; i++) {
    const nnc_cuda_arg *a = &k->args[i];
    char type[128];
    nnc_strbuf_append(b, i ? ",\n *     " : "\n *     ");
    switch (a->kind) {
    case NNC_CUDA_ARG_OUT:
    case NNC_CUDA_ARG_IN:
      nnc_strbuf_appendf(b, "b%d: %s %%%d %s", (int)a->node, a->kind == NNC_CUDA_ARG_OUT ? "writes" : "reads",
                         (int)a->node, nnc_type_str(&g->nodes[a->node], type, sizeof type));
      break;
    case NNC_CUDA_ARG_RUN: nnc_strbuf_append(b, "nnc_run: the run's seed, step number and training flag"); break;
    case NNC_CUDA_ARG_WS_OUT:
    case NNC_CUDA_ARG_WS_IN:
      nnc_strbuf_appendf(b, "nnc_ws: %s %lld floats of the workspace", a->kind == NNC_CUDA_ARG_WS_OUT ? "writes" : "reads",
                         (long long)k->workspace);
      break;
    }
  }
  nnc_strbuf_append(b, ") */\n");
}

int nnc_cuda_dump_program(const nnc_options *o, const nnc_cuda_program *p, const nnc_graph *g, nnc_status *st) {
  const char *dir = o->dump_kernels;
  if (!dir || p->count == 0) return 0;
  char sub[2400];
  snprintf(sub, sizeof sub, "%s/%016llx", dir, (unsigned long long)p->graph_hash);
  if (make_dir(dir, st) || make_dir(sub, st)) return -1;
  for (int i = 0; i < p->count; i++) {
    const nnc_cuda_kernel *k = &p->kernels[i];
    nnc_strbuf text;
    nnc_strbuf_init(&text);
    if (k->lib != NNC_LOWER_NNC) {
      nnc_strbuf_append(&text, k->call);
    } else {
      nnc_strbuf_append(&text, nnc_cuda_prelude());
      nnc_strbuf_append(&text, "\n");
      append_launch(&text, g, k);
      nnc_strbuf_append(&text, k->source);
    }
    char path[2900];
    snprintf(path, sizeof path, "%s/%s.%s", sub, k->name, k->lib != NNC_LOWER_NNC ? "txt" : "cu");
    int rc = nnc_write_file_atomic(path, nnc_strbuf_str(&text), text.len);
    nnc_strbuf_free(&text);
    if (rc) return nnc_fail(st, "--dump-kernels: cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}
