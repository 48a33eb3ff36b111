/* The text IR's printer, for the format in ir/text.h: attributes are read
 * through nnc_attr_fields, keyed by the NNC_A_* bits of each op row. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/strbuf.h"
#include "ir/text.h"
#include "ir/text_internal.h"
#include "ir/status.h"

static void print_string(nnc_strbuf *b, const char *s) {
  nnc_strbuf_appendc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') nnc_strbuf_appendf(b, "\\%c", *p);
    else if (*p == '\n') nnc_strbuf_append(b, "\\n");
    else if (*p == '\t') nnc_strbuf_append(b, "\\t");
    /* Other control bytes would break the one-node-a-line layout. */
    else if (*p < 0x20 || *p == 0x7f) nnc_strbuf_appendf(b, "\\x%02x", *p);
    else nnc_strbuf_appendc(b, (char)*p);
  }
  nnc_strbuf_appendc(b, '"');
}

void nnc_text_print_type(nnc_strbuf *b, nnc_dtype dtype, int rank, const int64_t *shape) {
  nnc_strbuf_appendf(b, "%s[", nnc_dtype_name(dtype));
  for (int i = 0; i < rank && i < NNC_MAX_RANK; i++) {
    if (i) nnc_strbuf_appendc(b, ',');
    if (shape[i] == NNC_DIM_ANY) nnc_strbuf_appendc(b, '?');
    else nnc_strbuf_appendf(b, "%" PRId64, shape[i]);
  }
  nnc_strbuf_appendc(b, ']');
}

static void print_attr(nnc_strbuf *b, const nnc_attr_field *f, const nnc_attrs *a) {
  const int32_t *v = cfield_at(a, f);
  nnc_strbuf_appendf(b, "%s=", f->name);
  switch (f->kind) {
  case NNC_FIELD_PAIR: nnc_strbuf_appendf(b, "[%d,%d]", (int)v[0], (int)v[1]); break;
  case NNC_FIELD_PAD: nnc_strbuf_append(b, *v == NNC_PAD_SAME ? "same" : "valid"); break;
  case NNC_FIELD_BOOL:
  case NNC_FIELD_INT: nnc_strbuf_appendf(b, "%d", (int)*v); break;
  case NNC_FIELD_FLOAT: nnc_strbuf_appendf(b, "%.9g", (double)*(const float *)cfield_at(a, f)); break;
  case NNC_FIELD_SHAPE:
    nnc_strbuf_appendc(b, '[');
    for (int i = 0; i < a->shape_rank && i < NNC_MAX_RANK; i++)
      nnc_strbuf_appendf(b, "%s%" PRId64, i ? "," : "", a->shape[i]);
    nnc_strbuf_appendc(b, ']');
    break;
  }
}

static void print_attrs(nnc_strbuf *b, const nnc_node *n) {
  unsigned mask = op_attrs(n->op);
  int any = 0;
  if (n->name) {
    nnc_strbuf_append(b, " {name=");
    print_string(b, n->name);
    any = 1;
  }
  for (int i = 0; i < nnc_attr_field_count; i++) {
    if (!(mask & nnc_attr_fields[i].bit)) continue;
    nnc_strbuf_append(b, any ? ", " : " {");
    print_attr(b, &nnc_attr_fields[i], &n->attrs);
    any = 1;
  }
  if (any) nnc_strbuf_appendc(b, '}');
}

static void print_loc(nnc_strbuf *b, const nnc_loc *l) {
  nnc_strbuf_append(b, " loc(");
  print_string(b, l->layer);
  if (l->layer_type) {
    nnc_strbuf_append(b, ", ");
    print_string(b, l->layer_type);
  }
  if (l->file) {
    nnc_strbuf_append(b, ", ");
    print_string(b, l->file);
    nnc_strbuf_appendf(b, ":%d", l->line);
  }
  nnc_strbuf_appendc(b, ')');
}

/* num[id] is the node's printed number: its place in print order, which
 * moves a fused group's members together (see nnc_graph_to_text). */
static void print_node(nnc_strbuf *b, const nnc_graph *g, int32_t id, const int32_t *num, const char *indent) {
  const nnc_node *n = &g->nodes[id];
  nnc_strbuf_appendf(b, "%s%%%d = %s(", indent, (int)num[id], op_name(n->op));
  for (int i = 0; i < n->nsrc && i < NNC_MAX_SRC; i++)
    nnc_strbuf_appendf(b, "%s%%%d", i ? ", " : "", (int)num[n->src[i]]);
  nnc_strbuf_appendc(b, ')');
  print_attrs(b, n);
  nnc_strbuf_append(b, " : ");
  nnc_text_print_type(b, n->dtype, n->rank, n->shape);
  if (n->loc.layer) print_loc(b, &n->loc);
  nnc_strbuf_appendc(b, '\n');
}

static int group_of(const nnc_graph *g, int32_t id) {
  return g->nodes[id].group >= 0 && g->nodes[id].group < g->ngroups ? g->nodes[id].group : -1;
}

static int is_last_member(const nnc_graph *g, int32_t id) {
  const nnc_group *grp = &g->groups[group_of(g, id)];
  return grp->members[grp->nmembers - 1] == id;
}

/* Print order: nodes in id order, except that a fused group's members are
 * printed together where its last member stands (where it runs), indented
 * under `fused "rule" {`. Numbering follows print order, so the text reads
 * back into the same graph and prints identically. */
static void number_nodes(const nnc_graph *g, int32_t *num) {
  int32_t next_num = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    int grp = group_of(g, id);
    if (grp < 0) num[id] = next_num++;
    else if (is_last_member(g, id))
      for (int k = 0; k < g->groups[grp].nmembers; k++) num[g->groups[grp].members[k]] = next_num++;
  }
}

/* The memory plan, as comments: they read back as nothing, since the plan
 * is recomputed from the graph, but a dump after plan-memory and a pass
 * test can see each value's place in the arena. */
static void print_plan(nnc_strbuf *b, const nnc_graph *g, const int32_t *num) {
  nnc_strbuf_appendf(b, "  // memory plan: arena %lld bytes for %lld bytes of intermediates\n",
                     (long long)g->arena_bytes, (long long)g->intermediate_bytes);
  for (int32_t id = 0; id < g->nnodes; id++)
    if (g->offsets[id] >= 0)
      nnc_strbuf_appendf(b, "  // %%%d @%lld\n", (int)num[id], (long long)g->offsets[id]);
}

static void print_refs(nnc_strbuf *b, const char *word, const nnc_kernel *k, unsigned mask, const int32_t *num) {
  int first = 1;
  for (int m = 0; m < k->n && m < NNC_MAX_GROUP; m++) {
    if (!((mask >> m) & 1)) continue;
    nnc_strbuf_appendf(b, "%s%%%d", first ? word : ", ", (int)num[k->members[m]]);
    first = 0;
  }
}

/* schedule { kernel K: KIND [LIB] [prologue %P] %A, ... [stores %S, ...] [keeps %R, ...] } */
static void print_schedule(nnc_strbuf *b, const nnc_graph *g, const int32_t *num) {
  nnc_strbuf_append(b, "  schedule {\n");
  for (int i = 0; i < g->nkernels; i++) {
    const nnc_kernel *k = &g->kernels[i];
    unsigned all = (1u << k->n) - 1;
    nnc_strbuf_appendf(b, "    kernel %d: %s", i,
                       (unsigned)k->kind < NNC_KERNEL_KINDS ? nnc_kernel_kind_names[k->kind] : "?");
    if (k->kind == NNC_KERNEL_LIBRARY && (unsigned)k->lib < NNC_LIB_COUNT)
      nnc_strbuf_appendf(b, " %s", nnc_kernel_lib_names[k->lib]);
    if (k->prologue >= 0) nnc_strbuf_appendf(b, " prologue %%%d", (int)num[k->prologue]);
    print_refs(b, " ", k, all, num);
    print_refs(b, " stores ", k, k->stores & all, num);
    print_refs(b, " keeps ", k, ~k->stores & all, num);
    nnc_strbuf_appendc(b, '\n');
  }
  nnc_strbuf_append(b, "  }\n");
}

char *nnc_graph_to_text(const nnc_graph *g) {
  nnc_strbuf b;
  nnc_strbuf_init(&b);
  int32_t *num = malloc(sizeof *num * ((size_t)g->nnodes + 1));
  if (!num) nnc_out_of_memory("printing IR");
  number_nodes(g, num);
  nnc_strbuf_append(&b, "graph {\n");
  for (int32_t id = 0; id < g->nnodes; id++) {
    int grp = group_of(g, id);
    if (grp < 0) {
      print_node(&b, g, id, num, "  ");
      continue;
    }
    if (!is_last_member(g, id)) continue;
    nnc_strbuf_append(&b, "  fused ");
    print_string(&b, g->groups[grp].rule ? g->groups[grp].rule : "");
    nnc_strbuf_append(&b, " {\n");
    for (int k = 0; k < g->groups[grp].nmembers; k++) print_node(&b, g, g->groups[grp].members[k], num, "    ");
    nnc_strbuf_append(&b, "  }\n");
  }
  for (int i = 0; i < g->noutputs; i++) {
    nnc_strbuf_append(&b, "  output ");
    print_string(&b, g->outputs[i].name);
    nnc_strbuf_appendf(&b, " = %%%d\n", (int)num[g->outputs[i].node]);
  }
  if (g->kernels) print_schedule(&b, g, num);
  if (g->offsets && g->intermediate_bytes >= 0) print_plan(&b, g, num); /* a symbolic batch has no plan */
  nnc_strbuf_append(&b, "}\n");
  free(num);
  return nnc_strbuf_take(&b);
}

int nnc_graph_print(const nnc_graph *g, FILE *f) {
  char *text = nnc_graph_to_text(g);
  size_t len = strlen(text);
  int ok = fwrite(text, 1, len, f) == len;
  free(text);
  return ok ? 0 : -1;
}
