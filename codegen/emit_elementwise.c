/* CUDA emitters for leaves, reshape, softmax and every row of
 * ir/pointwise.def, whose expressions are rendered here as CUDA C. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cuda.h"
#include "ir/op.h"
#include "ir/strbuf.h"

/* Leaves are bound by the backend; nothing runs for them. */
int nnc_cuda_emit_input(nnc_cuda_ctx *c, int32_t id) {
  (void)c, (void)id;
  return NNC_EMIT_NO_KERNEL;
}

int nnc_cuda_emit_param(nnc_cuda_ctx *c, int32_t id) {
  (void)c, (void)id;
  return NNC_EMIT_NO_KERNEL;
}

/* Element e of the result is element e of the operand: a copy, or nothing
 * at all inside a fused kernel. */
int nnc_cuda_emit_reshape(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_src(c, id, 0)->dtype != NNC_F32) return nnc_cuda_fail(c, id, "only f32 reshapes are generated");
  return nnc_cuda_pointwise(c, id, "%s", nnc_cuda_val(c, id, 0));
}

/* Row op's expression with each name of its kind (nnc_pw_names) replaced
 * by values[that name's index], into out; -1 for a name that is neither
 * bound nor one of nnc_pw_functions (the row cannot be emitted). A value
 * that starts with '-' is parenthesised, so that "-x" cannot become "--1". */
int nnc_cuda_render_pointwise(nnc_op op, const char *const *values, nnc_strbuf *out) {
  const char *const *names = nnc_pw_names(nnc_pointwise[op].kind);
  const char *p = nnc_pointwise[op].expr;
  if (!p) return -1;
  while (*p) {
    size_t len = 0;
    if (isalpha((unsigned char)*p) || *p == '_') {
      while (isalnum((unsigned char)p[len]) || p[len] == '_') len++;
      int found = -1;
      for (int i = 0; names[i] && found < 0; i++)
        if (strlen(names[i]) == len && strncmp(names[i], p, len) == 0) found = i;
      int function = 0;
      for (int i = 0; nnc_pw_functions[i] && !function; i++)
        function = strlen(nnc_pw_functions[i]) == len && strncmp(nnc_pw_functions[i], p, len) == 0;
      if (found >= 0 && values[found])
        nnc_strbuf_appendf(out, values[found][0] == '-' ? "(%s)" : "%s", values[found]);
      else if (function)
        nnc_strbuf_appendf(out, "%.*s", (int)len, p);
      else
        return -1;
    } else if (isdigit((unsigned char)*p) || *p == '.') {
      while (isalnum((unsigned char)p[len]) || p[len] == '.') len++; /* 1.0f, 1e3f */
      nnc_strbuf_appendf(out, "%.*s", (int)len, p);
    } else {
      len = 1;
      nnc_strbuf_appendf(out, "%c", *p);
    }
    p += len;
  }
  return 0;
}

/* Node id as its row of ir/pointwise.def, with u (dropout's draw) given:
 * then the value is the row's in training and x otherwise. */
static int emit_row(nnc_cuda_ctx *c, int32_t id, const char *u) {
  const nnc_node *n = &nnc_cuda_graph(c)->nodes[id];
  const nnc_pw_row *row = &nnc_pointwise[n->op];
  char value[8][256] = {{0}};
  const char *values[8] = {0};
  const char *const *names = nnc_pw_names(row->kind);
  char scalar[64];
  snprintf(scalar, sizeof scalar, "%s[0]", n->nsrc > row->operands ? nnc_cuda_buf(c, id, n->nsrc - 1) : "");
  for (int i = 0; names[i] && i < 8; i++) {
    const char *v = NULL;
    int operand = -1;
    if (strcmp(names[i], "alpha") == 0) v = nnc_cuda_float(c, n->attrs.alpha);
    else if (strcmp(names[i], "eps") == 0) v = nnc_cuda_float(c, n->attrs.eps);
    else if (strcmp(names[i], "rate") == 0) v = nnc_cuda_float(c, n->attrs.rate);
    else if (strcmp(names[i], "scale") == 0) v = nnc_cuda_float(c, 1.0f / (1.0f - n->attrs.rate));
    else if (strcmp(names[i], "u") == 0) v = u;
    else if (strcmp(names[i], "s") == 0) v = n->nsrc > row->operands ? scalar : NULL;
    else operand = i < row->operands ? i : -1; /* x, y, dy, a, b, c: operands in order */
    if (operand >= 0) v = nnc_cuda_val(c, id, operand);
    if (v && snprintf(value[i], sizeof value[i], "%s", v) >= (int)sizeof value[i])
      return nnc_cuda_fail(c, id, "operand %s of %s is too long to emit", names[i], nnc_ops[n->op].name);
    if (v) values[i] = value[i];
  }
  nnc_strbuf expr;
  nnc_strbuf_init(&expr);
  if (u) nnc_strbuf_append(&expr, "nnc_training ? (");
  int rc = nnc_cuda_render_pointwise(n->op, values, &expr);
  if (u) nnc_strbuf_appendf(&expr, ") : %s", value[0]);
  if (rc == 0) rc = nnc_cuda_pointwise(c, id, "%s", nnc_strbuf_str(&expr));
  else rc = nnc_cuda_fail(c, id, "%s's expression (ir/pointwise.def) cannot be rendered", nnc_ops[n->op].name);
  nnc_strbuf_free(&expr);
  return rc;
}

#define ACTIVATION(ENUM, name, ...) \
  int nnc_cuda_emit_##name(nnc_cuda_ctx *c, int32_t id) { return emit_row(c, id, NULL); }
#define ACTIVATION_GRAD(ENUM, name, ...) \
  int nnc_cuda_emit_##name(nnc_cuda_ctx *c, int32_t id) { return emit_row(c, id, NULL); }
#define POINTWISE(ENUM, name, ...) \
  int nnc_cuda_emit_##name(nnc_cuda_ctx *c, int32_t id) { return emit_row(c, id, NULL); }
#define RANDOM(ENUM, name, ...) /* dropout, below */
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM

/* Inverted dropout: element e of step s draws Philox counter s*count + e on
 * the node's stream, the interpreter's mask; under data parallelism the
 * counter of its row in the global batch (nnc_dropout_counter), so that N
 * ranks draw one process's masks. Outside training, the identity. */
int nnc_cuda_emit_dropout(nnc_cuda_ctx *c, int32_t id) {
  const nnc_node *n = &nnc_cuda_graph(c)->nodes[id];
  if (n->attrs.rate == 0.0f) return nnc_cuda_pointwise(c, id, "%s", nnc_cuda_val(c, id, 0));
  nnc_cuda_use_rng(c);
  long long rows = n->rank > 0 && n->shape[0] > 0 ? (long long)n->shape[0] : 1;
  long long row = (long long)nnc_node_numel(n) / rows;
  char u[256];
  snprintf(u, sizeof u,
           "nnc_uniform(nnc_seed, %uu, (nnc_global_rows ? nnc_step * nnc_global_rows + nnc_first_row : nnc_step * "
           "%lldull) * %lldull + (nnc_u64)e)",
           (unsigned)n->attrs.stream, rows, row);
  return emit_row(c, id, u);
}

/* Softmax over the last axis, one row per work item: shift by the row's
 * maximum so exp cannot overflow, then normalise. */
int nnc_cuda_emit_softmax(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = &nnc_cuda_graph(c)->nodes[id];
  long long width = (long long)n->shape[n->rank - 1];
  long long rows = width ? (long long)nnc_node_numel(n) / width : 0;
  nnc_cuda_work(c, rows);
  nnc_cuda_line(c, "const float *row = %s + w * %lldLL;", nnc_cuda_buf(c, id, 0), width);
  nnc_cuda_line(c, "float top = row[0];");
  nnc_cuda_line(c, "for (nnc_i64 j = 1; j < %lldLL; j++) top = row[j] > top ? row[j] : top;", width);
  nnc_cuda_line(c, "double sum = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 j = 0; j < %lldLL; j++) sum += expf(row[j] - top);", width);
  char index[64];
  snprintf(index, sizeof index, "w * %lldLL + j", width);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", width);
  nnc_cuda_store(c, index, "(float)(expf(row[j] - top) / sum)");
  nnc_cuda_close(c);
  return NNC_EMIT_OK;
}
