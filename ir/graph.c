/* Graph construction, interning, verification and re-batching. */
#include "ir/graph.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/attrs.h"
#include "ir/op.h"
#include "ir/size.h"
#include "ir/status.h"

static void *xrealloc(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (!q) nnc_out_of_memory("growing a graph");
  return q;
}

nnc_graph *nnc_graph_new(void) {
  nnc_graph *g = calloc(1, sizeof *g);
  if (!g) nnc_out_of_memory("growing a graph");
  g->table_cap = 64;
  g->table = xrealloc(NULL, sizeof *g->table * (size_t)g->table_cap);
  memset(g->table, 0xff, sizeof *g->table * (size_t)g->table_cap);
  return g;
}

void nnc_graph_free(nnc_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->nstrings; i++) free(g->strings[i]);
  free(g->strings);
  free(g->nodes);
  free(g->table);
  free(g->outputs);
  free(g->groups);
  free(g->offsets);
  free(g->kernels);
  free(g);
}

const char *nnc_graph_str(nnc_graph *g, const char *s) {
  if (!s) return NULL;
  for (int i = 0; i < g->nstrings; i++)
    if (strcmp(g->strings[i], s) == 0) return g->strings[i];
  if (g->nstrings == g->strings_cap) {
    g->strings_cap = g->strings_cap ? 2 * g->strings_cap : 16;
    g->strings = xrealloc(g->strings, sizeof *g->strings * (size_t)g->strings_cap);
  }
  size_t len = strlen(s) + 1;
  char *copy = xrealloc(NULL, len);
  memcpy(copy, s, len);
  g->strings[g->nstrings++] = copy;
  return copy;
}

void nnc_graph_set_loc(nnc_graph *g, const char *layer, const char *layer_type, const char *file,
                       int line) {
  g->loc.layer = nnc_graph_str(g, layer);
  g->loc.layer_type = nnc_graph_str(g, layer_type);
  g->loc.file = nnc_graph_str(g, file);
  g->loc.line = line;
}

static uint64_t fnv(uint64_t h, const void *data, size_t size) {
  const unsigned char *p = data;
  for (size_t i = 0; i < size; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* The identity of a node: everything but its location. */
static uint64_t node_key_hash(const nnc_node *n) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, &n->op, sizeof n->op);
  h = fnv(h, n->src, sizeof n->src[0] * (size_t)n->nsrc);
  h = fnv(h, &n->attrs, sizeof n->attrs);
  if (nnc_ops[n->op].flags & NNC_OPF_LEAF) {
    h = fnv(h, &n->dtype, sizeof n->dtype);
    h = fnv(h, n->shape, sizeof n->shape[0] * (size_t)n->rank);
    if (n->name) h = fnv(h, n->name, strlen(n->name));
  }
  return h;
}

static int same_key(const nnc_node *a, const nnc_node *b) {
  if (a->op != b->op || a->nsrc != b->nsrc) return 0;
  if (memcmp(a->src, b->src, sizeof a->src[0] * (size_t)a->nsrc)) return 0;
  if (memcmp(&a->attrs, &b->attrs, sizeof a->attrs)) return 0;
  if (nnc_ops[a->op].flags & NNC_OPF_LEAF) {
    if (a->dtype != b->dtype || a->rank != b->rank) return 0;
    if (memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank)) return 0;
    if ((a->name == NULL) != (b->name == NULL)) return 0;
    if (a->name && strcmp(a->name, b->name)) return 0;
  }
  return 1;
}

static void table_insert(nnc_graph *g, int32_t id) {
  uint32_t mask = (uint32_t)g->table_cap - 1;
  uint32_t i = (uint32_t)g->nodes[id].hash & mask;
  while (g->table[i] >= 0) i = (i + 1) & mask;
  g->table[i] = id;
}

static void table_grow(nnc_graph *g) {
  g->table_cap *= 2;
  g->table = xrealloc(g->table, sizeof *g->table * (size_t)g->table_cap);
  memset(g->table, 0xff, sizeof *g->table * (size_t)g->table_cap);
  for (int32_t id = 0; id < g->nnodes; id++) table_insert(g, id);
}

static int32_t table_find(const nnc_graph *g, const nnc_node *n) {
  uint32_t mask = (uint32_t)g->table_cap - 1;
  for (uint32_t i = (uint32_t)n->hash & mask; g->table[i] >= 0; i = (i + 1) & mask) {
    const nnc_node *m = &g->nodes[g->table[i]];
    if (m->hash == n->hash && same_key(m, n)) return g->table[i];
  }
  return -1;
}

/* A float attribute is finite: the text form could not print inf or nan so
 * that it reads back, and no op means anything by them. */
static int check_float_attrs(const nnc_graph *g, const nnc_node *n, nnc_status *st) {
  for (int i = 0; i < nnc_attr_field_count; i++) {
    const nnc_attr_field *f = &nnc_attr_fields[i];
    if (f->kind != NNC_FIELD_FLOAT || !(nnc_ops[n->op].attrs & f->bit)) continue;
    float v;
    memcpy(&v, (const char *)&n->attrs + f->offset, sizeof v);
    if (!isfinite(v))
      return nnc_infer_fail(g, n, st, "attribute %s is %g; it must be a finite number", f->name, (double)v);
  }
  return 0;
}

/* The size check behind nnc_node_numel and every buffer a backend sizes from
 * a node: each node holds at most NNC_MAX_TENSOR_BYTES (ir/size.h). */
static int check_size(const nnc_graph *g, const nnc_node *n, nnc_status *st) {
  char what[160];
  int64_t numel;
  nnc_status sub = {0};
  if (n->name) snprintf(what, sizeof what, "%s '%s'", nnc_ops[n->op].name, n->name);
  else snprintf(what, sizeof what, "%s", nnc_ops[n->op].name);
  if (nnc_size_shape(what, n->rank, n->shape, (int64_t)nnc_dtype_size(n->dtype), &numel, &sub) == 0) return 0;
  return nnc_infer_fail(g, n, st, "%s", sub.msg);
}

/* Only the attributes an op reads belong to its identity, in one spelling:
 * a relu built from a copy of a conv2d's attributes must still merge with
 * other relus, and the text form, which prints exactly these fields, must
 * describe the node completely (ir/attrs.c). */
static int build_node(nnc_graph *g, const nnc_node_spec *spec, nnc_node *n, nnc_status *st) {
  memset(n, 0, sizeof *n);
  n->loc = g->loc;
  n->group = -1;
  if ((unsigned)spec->op >= NNC_OP_COUNT) return nnc_fail(st, "unknown op number %d", spec->op);
  const nnc_op_row *row = &nnc_ops[spec->op];
  n->op = spec->op;
  n->attrs = nnc_attrs_used(&spec->attrs, row->attrs);
  if (spec->nsrc != row->arity)
    return nnc_infer_fail(g, n, st, "%s takes %d operand(s), got %d", row->name, row->arity,
                          spec->nsrc);
  n->nsrc = spec->nsrc;
  for (int i = 0; i < spec->nsrc; i++) {
    if (spec->src[i] < 0 || spec->src[i] >= g->nnodes)
      return nnc_infer_fail(g, n, st, "operand %d refers to %%%d, which does not exist yet", i,
                            (int)spec->src[i]);
    n->src[i] = spec->src[i];
  }
  if (row->flags & NNC_OPF_LEAF) {
    if (spec->rank < 0 || spec->rank > NNC_MAX_RANK)
      return nnc_infer_fail(g, n, st, "rank %d is out of range", spec->rank);
    n->dtype = spec->dtype;
    n->rank = spec->rank;
    memcpy(n->shape, spec->shape, sizeof n->shape);
    n->name = nnc_graph_str(g, spec->name);
  }
  if (row->infer(g, n, st) || check_float_attrs(g, n, st)) return -1;
  return check_size(g, n, st);
}

int32_t nnc_graph_add(nnc_graph *g, const nnc_node_spec *spec, nnc_status *st) {
  nnc_node n;
  if (build_node(g, spec, &n, st)) return -1;
  n.hash = node_key_hash(&n);
  int32_t found = table_find(g, &n);
  if (found >= 0) return found;
  if ((nnc_ops[n.op].flags & NNC_OPF_LEAF) && n.name &&
      nnc_graph_find_leaf(g, n.op, n.name) >= 0)
    return nnc_infer_fail(g, &n, st, "a %s named '%s' already exists with another type",
                          nnc_ops[n.op].name, n.name);
  if (g->nnodes == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->nodes = xrealloc(g->nodes, sizeof *g->nodes * (size_t)g->cap);
  }
  int32_t id = g->nnodes++;
  g->nodes[id] = n;
  if (2 * g->nnodes > g->table_cap) table_grow(g);
  else table_insert(g, id);
  return id;
}

int32_t nnc_graph_op(nnc_graph *g, nnc_op op, const int32_t *src, int nsrc, const nnc_attrs *attrs,
                     nnc_status *st) {
  nnc_node_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.op = op;
  spec.nsrc = nsrc;
  for (int i = 0; i < nsrc && i < NNC_MAX_SRC; i++) spec.src[i] = src[i];
  if (attrs) spec.attrs = *attrs;
  return nnc_graph_add(g, &spec, st);
}

int nnc_graph_check_concrete(const nnc_graph *g, nnc_status *st) {
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].rank; i++)
      if (g->nodes[id].shape[i] < 0) {
        char where[256], type[128];
        return nnc_fail(st, "%s: type %s is not concrete", nnc_node_where(g, id, where, sizeof where),
                        nnc_type_str(&g->nodes[id], type, sizeof type));
      }
  return 0;
}

int32_t nnc_graph_leaf(nnc_graph *g, nnc_op op, const char *name, nnc_dtype dtype, int rank, const int64_t *shape,
                       nnc_status *st) {
  nnc_node_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.op = op;
  spec.name = name;
  spec.dtype = dtype;
  spec.rank = rank;
  if (rank) memcpy(spec.shape, shape, sizeof spec.shape[0] * (size_t)rank);
  return nnc_graph_add(g, &spec, st);
}

int nnc_graph_add_output(nnc_graph *g, const char *role, int32_t node, nnc_status *st) {
  if (node < 0 || node >= g->nnodes)
    return nnc_fail(st, "output '%s' refers to %%%d, which does not exist", role, (int)node);
  if (nnc_graph_output_node(g, role) >= 0)
    return nnc_fail(st, "the graph already has an output named '%s'", role);
  if (g->noutputs == g->outputs_cap) {
    g->outputs_cap = g->outputs_cap ? 2 * g->outputs_cap : 8;
    g->outputs = xrealloc(g->outputs, sizeof *g->outputs * (size_t)g->outputs_cap);
  }
  g->outputs[g->noutputs].name = nnc_graph_str(g, role);
  g->outputs[g->noutputs].node = node;
  g->noutputs++;
  return 0;
}

int nnc_graph_add_group(nnc_graph *g, const char *rule, const int32_t *members, int nmembers, nnc_status *st) {
  if (nmembers < 1 || nmembers > NNC_MAX_GROUP) return nnc_fail(st, "a fused group has 1 to %d members", NNC_MAX_GROUP);
  for (int i = 0; i < nmembers; i++) {
    if (members[i] < 0 || members[i] >= g->nnodes) return nnc_fail(st, "fused group member %%%d does not exist", (int)members[i]);
    if (g->nodes[members[i]].group >= 0) return nnc_fail(st, "%%%d is already in a fused group", (int)members[i]);
  }
  if (g->ngroups == g->groups_cap) {
    g->groups_cap = g->groups_cap ? 2 * g->groups_cap : 16;
    g->groups = xrealloc(g->groups, sizeof *g->groups * (size_t)g->groups_cap);
  }
  nnc_group *grp = &g->groups[g->ngroups];
  grp->rule = nnc_graph_str(g, rule);
  grp->nmembers = nmembers;
  memcpy(grp->members, members, sizeof *members * (size_t)nmembers);
  for (int i = 0; i < nmembers; i++) g->nodes[members[i]].group = g->ngroups;
  return g->ngroups++;
}

/* Carries groups over to a copy whose node ids are map[old id]. */
static int copy_groups(const nnc_graph *g, nnc_graph *out, const int32_t *map, nnc_status *st) {
  for (int i = 0; i < g->ngroups; i++) {
    int32_t members[NNC_MAX_GROUP];
    for (int k = 0; k < g->groups[i].nmembers; k++) members[k] = map[g->groups[i].members[k]];
    if (nnc_graph_add_group(out, g->groups[i].rule, members, g->groups[i].nmembers, st) < 0) return -1;
  }
  return 0;
}

int32_t nnc_graph_output_node(const nnc_graph *g, const char *role) {
  for (int i = 0; i < g->noutputs; i++)
    if (strcmp(g->outputs[i].name, role) == 0) return g->outputs[i].node;
  return -1;
}

int32_t nnc_graph_find_leaf(const nnc_graph *g, nnc_op op, const char *name) {
  for (int32_t i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == op && g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

/* Exact: nnc_graph_add held every node under NNC_MAX_TENSOR_BYTES. */
int64_t nnc_node_numel(const nnc_node *n) {
  int64_t count = 1;
  for (int i = 0; i < n->rank; i++) count *= n->shape[i];
  return count;
}

const char *nnc_type_str(const nnc_node *n, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "%s[", nnc_dtype_name(n->dtype));
  for (int i = 0; i < n->rank && used < size; i++) {
    if (n->shape[i] == NNC_DIM_ANY)
      used += (size_t)snprintf(buf + used, size - used, "%s?", i ? "," : "");
    else
      used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", n->shape[i]);
  }
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

static const char *loc_where(const nnc_node *n, int32_t id, char *buf, size_t size) {
  const nnc_loc *l = &n->loc;
  if (l->layer && l->file)
    snprintf(buf, size, "%s (%s) at %s:%d", l->layer, l->layer_type ? l->layer_type : "?", l->file,
             l->line);
  else if (l->layer)
    snprintf(buf, size, "%s (%s)", l->layer, l->layer_type ? l->layer_type : "?");
  else if (id >= 0)
    snprintf(buf, size, "%%%d = %s", (int)id, nnc_ops[n->op].name);
  else
    snprintf(buf, size, "%s", nnc_ops[n->op].name);
  return buf;
}

const char *nnc_node_where(const nnc_graph *g, int32_t id, char *buf, size_t size) {
  return loc_where(&g->nodes[id], id, buf, size);
}

int nnc_infer_fail(const nnc_graph *g, const nnc_node *n, nnc_status *st, const char *fmt, ...) {
  (void)g;
  char where[512], what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return nnc_fail(st, "%s: %s", loc_where(n, -1, where, sizeof where), what);
}

static int reads_member(const nnc_node *n, const nnc_group *grp, int upto) {
  for (int i = 0; i < n->nsrc; i++)
    for (int k = 0; k < upto; k++)
      if (n->src[i] == grp->members[k]) return 1;
  return 0;
}

/* The invariants of nnc_group (graph.h): members in order, and no outsider
 * reading a member before the group has run. */
static int verify_group(const nnc_graph *g, int index, nnc_status *st) {
  const nnc_group *grp = &g->groups[index];
  for (int k = 0; k < grp->nmembers; k++) {
    int32_t id = grp->members[k];
    if (id < 0 || id >= g->nnodes || g->nodes[id].group != index || (k && id <= grp->members[k - 1]))
      return nnc_fail(st, "fused group %d (%s): member %d is out of order or not marked", index, grp->rule, k);
  }
  for (int32_t id = grp->members[0] + 1; id < grp->members[grp->nmembers - 1]; id++)
    if (g->nodes[id].group != index && reads_member(&g->nodes[id], grp, grp->nmembers))
      return nnc_fail(st, "fused group %d (%s): %%%d reads a member before the group has run", index, grp->rule, (int)id);
  return 0;
}

int nnc_graph_verify(const nnc_graph *g, nnc_status *st) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    char where[512];
    if ((unsigned)n->op >= NNC_OP_COUNT) return nnc_fail(st, "%%%d has an invalid op", (int)id);
    if (n->nsrc != nnc_ops[n->op].arity)
      return nnc_fail(st, "%s: has %d operands, %s takes %d", nnc_node_where(g, id, where, sizeof where),
                      n->nsrc, nnc_ops[n->op].name, nnc_ops[n->op].arity);
    for (int i = 0; i < n->nsrc; i++)
      if (n->src[i] < 0 || n->src[i] >= id)
        return nnc_fail(st, "%s: operand %d (%%%d) does not come before it",
                        nnc_node_where(g, id, where, sizeof where), i, (int)n->src[i]);
    if ((nnc_ops[n->op].flags & NNC_OPF_LEAF) && !n->name)
      return nnc_fail(st, "%s: a leaf needs a name", nnc_node_where(g, id, where, sizeof where));
    if (n->name && nnc_graph_find_leaf(g, n->op, n->name) != id)
      return nnc_fail(st, "%s: the name '%s' is used twice", nnc_node_where(g, id, where, sizeof where),
                      n->name);
    nnc_node check = *n;
    if (nnc_ops[n->op].infer(g, &check, st)) return -1;
    if (check.dtype != n->dtype || check.rank != n->rank ||
        memcmp(check.shape, n->shape, sizeof n->shape[0] * (size_t)n->rank)) {
      char have[128], want[128];
      return nnc_fail(st, "%s: stored type %s, but its operands give %s",
                      nnc_node_where(g, id, where, sizeof where), nnc_type_str(n, have, sizeof have),
                      nnc_type_str(&check, want, sizeof want));
    }
  }
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node < 0 || g->outputs[i].node >= g->nnodes)
      return nnc_fail(st, "output '%s' refers to a missing node", g->outputs[i].name);
  for (int i = 0; i < g->ngroups; i++)
    if (verify_group(g, i, st)) return -1;
  return nnc_graph_verify_schedule(g, st);
}

nnc_graph *nnc_graph_with_batch(const nnc_graph *g, int64_t batch, nnc_status *st) {
  nnc_graph *out = nnc_graph_new();
  int32_t *map = xrealloc(NULL, sizeof *map * (size_t)(g->nnodes ? g->nnodes : 1));
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    nnc_node_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.op = n->op;
    spec.nsrc = n->nsrc;
    for (int i = 0; i < n->nsrc; i++) spec.src[i] = map[n->src[i]];
    spec.attrs = n->attrs;
    spec.name = n->name;
    spec.dtype = n->dtype;
    spec.rank = n->rank;
    memcpy(spec.shape, n->shape, sizeof spec.shape);
    if (n->op == NNC_OP_INPUT && n->rank > 0) spec.shape[0] = batch;
    nnc_graph_set_loc(out, n->loc.layer, n->loc.layer_type, n->loc.file, n->loc.line);
    map[id] = nnc_graph_add(out, &spec, st);
    if (map[id] < 0) {
      free(map);
      nnc_graph_free(out);
      return NULL;
    }
  }
  for (int i = 0; i < g->noutputs; i++)
    nnc_graph_add_output(out, g->outputs[i].name, map[g->outputs[i].node], st);
  out->loc = (nnc_loc){0};
  int rc = copy_groups(g, out, map, st);
  free(map);
  if (rc) {
    nnc_graph_free(out);
    return NULL;
  }
  return out;
}

uint64_t nnc_graph_hash(const nnc_graph *g) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t id = 0; id < g->nnodes; id++) h = fnv(h, &g->nodes[id].hash, sizeof(uint64_t));
  for (int i = 0; i < g->noutputs; i++) {
    h = fnv(h, g->outputs[i].name, strlen(g->outputs[i].name));
    h = fnv(h, &g->outputs[i].node, sizeof g->outputs[i].node);
  }
  return h;
}

int nnc_graph_freeze(nnc_graph *g, int32_t id, nnc_status *st) {
  if (id < 0 || id >= g->nnodes || !nnc_op_is_weight(g->nodes[id].op))
    return nnc_fail(st, "freeze: %%%d is not a weight", (int)id);
  nnc_node *n = &g->nodes[id];
  if (n->op == NNC_OP_STATE) return 0;
  n->op = NNC_OP_STATE;
  n->hash = node_key_hash(n);
  /* Re-intern every node: the table is open-addressed by hash. */
  memset(g->table, 0xff, sizeof *g->table * (size_t)g->table_cap);
  for (int32_t i = 0; i < g->nnodes; i++) table_insert(g, i);
  return 0;
}
