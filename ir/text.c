/* The text IR: a recursive-descent parser for the format in ir/text.h (the
 * printer is ir/text_print.c). Both read attributes through nnc_attr_fields,
 * keyed by the NNC_A_* bits of each op row, so a new op needs nothing here
 * and a new attribute needs one row in nnc_attr_fields (and a case if it has
 * a new kind). */
#include "ir/text.h"

#include <ctype.h>
#include <float.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ir/attrs.h"
#include "ir/op.h"
#include "ir/strbuf.h"
#include "ir/text_internal.h"

/* ---- lexing ---- */

typedef enum tok_kind { TOK_EOF, TOK_IDENT, TOK_NUMBER, TOK_STRING, TOK_REF, TOK_PUNCT } tok_kind;

typedef struct token {
  tok_kind kind;
  const char *start; /* into the source text, which outlives the parse */
  size_t len;
  int line, col; /* 1-based; col counts bytes */
  int64_t ref;   /* TOK_REF: the node number */
} token;

typedef struct parser {
  const char *filename;
  const char *p;          /* next unread byte */
  const char *line_start; /* first byte of the current line */
  int line;
  token tok;         /* the one token of lookahead */
  nnc_strbuf string; /* TOK_STRING: the decoded text of tok */
  nnc_graph *g;
  nnc_status *st;
  nnc_kernel *kernels; /* a `schedule` block's, set on the graph at its end */
  int nkernels, has_schedule;
} parser;

static int fail_pos(parser *ps, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_pos(parser *ps, int line, int col, const char *fmt, ...) {
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return nnc_fail(ps->st, "%s:%d:%d: error: %s", ps->filename, line, col, what);
}

#define FAIL_AT(ps, t, ...) fail_pos((ps), (t)->line, (t)->col, __VA_ARGS__)

/* Puts the place in front of a message from the graph (shape errors). */
static int fail_graph(parser *ps, const token *t) {
  return nnc_fail_prefix(ps->st, "%s:%d:%d: error: ", ps->filename, t->line, t->col);
}

/* "'conv2d'" or "end of input", for "expected X, found Y". */
static const char *describe(const token *t, char *buf, size_t size) {
  if (t->kind == TOK_EOF) return "end of input";
  int len = t->len > 24 ? 24 : (int)t->len;
  snprintf(buf, size, "'%.*s%s'", len, t->start, t->len > 24 ? "..." : "");
  return buf;
}

/* Fails at the current token, saying what it is: "..., found 'x'". */
static int fail_found(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_found(parser *ps, const char *fmt, ...) {
  char what[512], buf[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return FAIL_AT(ps, &ps->tok, "%s, found %s", what, describe(&ps->tok, buf, sizeof buf));
}

static int is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void skip_space_and_comments(parser *ps) {
  for (;;) {
    char c = *ps->p;
    if (c == '\n') {
      ps->p++;
      ps->line++;
      ps->line_start = ps->p;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      ps->p++;
    } else if (c == '/' && ps->p[1] == '/') {
      while (*ps->p && *ps->p != '\n') ps->p++;
    } else {
      return;
    }
  }
}

static int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* One escape after the backslash at ps->p; appends the byte it stands for. */
static int lex_escape(parser *ps) {
  const char *at = ps->p;
  int col = (int)(at - ps->line_start) + 1;
  char c = at[1];
  if (c == '"' || c == '\\') nnc_strbuf_appendc(&ps->string, c);
  else if (c == 'n') nnc_strbuf_appendc(&ps->string, '\n');
  else if (c == 't') nnc_strbuf_appendc(&ps->string, '\t');
  else if (c == 'x') {
    int hi = hex_value(at[2]), lo = hi < 0 ? -1 : hex_value(at[3]);
    if (lo < 0) return fail_pos(ps, ps->line, col, "\\x needs two hex digits");
    if (hi == 0 && lo == 0) return fail_pos(ps, ps->line, col, "a string cannot contain \\x00");
    nnc_strbuf_appendc(&ps->string, (char)(hi * 16 + lo));
    ps->p += 2;
  } else if (c == 0 || c == '\n') {
    return FAIL_AT(ps, &ps->tok, "unterminated string");
  } else {
    return fail_pos(ps, ps->line, col, "unknown escape '\\%c' (use \\\" \\\\ \\n \\t or \\xHH)", c);
  }
  ps->p += 2;
  return 0;
}

static int lex_string(parser *ps) {
  token *t = &ps->tok;
  nnc_strbuf_free(&ps->string);
  ps->p++;
  for (;;) {
    char c = *ps->p;
    if (c == 0 || c == '\n') return FAIL_AT(ps, t, "unterminated string");
    if (c == '"') break;
    if (c == '\\') {
      if (lex_escape(ps)) return -1;
      continue;
    }
    nnc_strbuf_appendc(&ps->string, c);
    ps->p++;
  }
  ps->p++;
  t->kind = TOK_STRING;
  return 0;
}

static int starts_number(const char *p) {
  if (*p == '-') p++;
  return is_digit(*p) || (*p == '.' && is_digit(p[1]));
}

/* -?digits[.digits][e[+-]digits]; whether it is an integer is the caller's
 * business, so "1.5" where a size belongs gets a message about sizes. */
static void lex_number(parser *ps) {
  const char *p = ps->p;
  if (*p == '-') p++;
  while (is_digit(*p)) p++;
  if (*p == '.') {
    p++;
    while (is_digit(*p)) p++;
  }
  if ((*p == 'e' || *p == 'E') && (is_digit(p[1]) || ((p[1] == '+' || p[1] == '-') && is_digit(p[2])))) {
    p += 2;
    while (is_digit(*p)) p++;
  }
  ps->p = p;
  ps->tok.kind = TOK_NUMBER;
}

static int lex_ref(parser *ps) {
  token *t = &ps->tok;
  const char *p = ps->p + 1;
  if (!is_digit(*p)) return FAIL_AT(ps, t, "expected a node number after '%%'");
  int64_t value = 0;
  for (; is_digit(*p); p++) {
    value = value * 10 + (*p - '0');
    if (value > INT32_MAX) return FAIL_AT(ps, t, "node number is too large");
  }
  ps->p = p;
  t->kind = TOK_REF;
  t->ref = value;
  return 0;
}

/* Reads the next token into ps->tok. */
static int next(parser *ps) {
  skip_space_and_comments(ps);
  token *t = &ps->tok;
  const char *p = ps->p;
  t->start = p;
  t->line = ps->line;
  t->col = (int)(p - ps->line_start) + 1;
  int rc = 0;
  if (*p == 0) {
    t->kind = TOK_EOF;
  } else if (is_ident_start(*p)) {
    while (is_ident_char(*ps->p)) ps->p++;
    t->kind = TOK_IDENT;
  } else if (starts_number(p)) {
    lex_number(ps);
  } else if (*p == '%') {
    rc = lex_ref(ps);
  } else if (*p == '"') {
    rc = lex_string(ps);
  } else if (strchr("{}()[],=:?", *p)) {
    ps->p++;
    t->kind = TOK_PUNCT;
  } else if (isprint((unsigned char)*p)) {
    return FAIL_AT(ps, t, "unexpected character '%c'", *p);
  } else {
    return FAIL_AT(ps, t, "unexpected byte 0x%02x", (unsigned char)*p);
  }
  t->len = (size_t)(ps->p - t->start);
  return rc;
}

/* ---- token helpers ---- */

static int is_punct(const parser *ps, char c) { return ps->tok.kind == TOK_PUNCT && *ps->tok.start == c; }

static int is_word(const parser *ps, const char *word) {
  return ps->tok.kind == TOK_IDENT && ps->tok.len == strlen(word) &&
         memcmp(ps->tok.start, word, ps->tok.len) == 0;
}

static int expect_punct(parser *ps, char c) {
  if (!is_punct(ps, c)) return fail_found(ps, "expected '%c'", c);
  return next(ps);
}

/* OPEN item, ... CLOSE (possibly empty). A comma must be followed by an
 * item, so "(%0, )" is a missing operand rather than one operand. */
typedef int list_item_fn(parser *ps, void *ctx);
static int parse_list(parser *ps, char open, char close, list_item_fn *item, void *ctx) {
  if (expect_punct(ps, open)) return -1;
  if (!is_punct(ps, close))
    for (;;) {
      if (item(ps, ctx)) return -1;
      if (!is_punct(ps, ',')) break;
      if (next(ps)) return -1;
    }
  return expect_punct(ps, close);
}

/* " (did you mean 'x'?)" when some choice is close to name, else "". */
static const char *did_you_mean(const char *name, const char *const *choices, char *buf, size_t size) {
  const char *hint = nnc_closest_name(name, choices);
  if (!hint) return "";
  snprintf(buf, size, " (did you mean '%s'?)", hint);
  return buf;
}

/* The current identifier as a C string in buf (truncated, which only makes
 * a lookup fail and the message shorter). */
static const char *ident_text(const parser *ps, char *buf, size_t size) {
  size_t len = ps->tok.len < size - 1 ? ps->tok.len : size - 1;
  memcpy(buf, ps->tok.start, len);
  buf[len] = 0;
  return buf;
}

/* A string token, pooled in the graph. */
static int expect_string(parser *ps, const char *what, const char **out) {
  if (ps->tok.kind != TOK_STRING) return fail_found(ps, "expected %s (a quoted string)", what);
  *out = nnc_graph_str(ps->g, nnc_strbuf_str(&ps->string));
  return next(ps);
}

/* The current token as an integer in [lo, hi], without a message, so each
 * caller can say what it expected. */
static int token_int(const parser *ps, int64_t lo, int64_t hi, int64_t *out) {
  const token *t = &ps->tok;
  char num[32], *end = num;
  long long value = 0;
  if (t->kind != TOK_NUMBER || t->len >= sizeof num) return -1;
  memcpy(num, t->start, t->len);
  num[t->len] = 0;
  errno = 0;
  value = strtoll(num, &end, 10);
  if (end == num || *end || errno || value < lo || value > hi) return -1;
  *out = value;
  return 0;
}

/* An integer in [lo, hi]; `what` names it in the message. */
static int expect_int(parser *ps, const char *what, int64_t lo, int64_t hi, int64_t *out) {
  if (token_int(ps, lo, hi, out) == 0) return next(ps);
  if (lo == 0 && hi == 1) return fail_found(ps, "%s must be 0 or 1", what);
  return fail_found(ps, "%s must be an integer from %" PRId64 " to %" PRId64, what, lo, hi);
}

static int expect_float(parser *ps, const char *what, float *out) {
  char num[64];
  const token *t = &ps->tok;
  char *end = num;
  if (t->kind == TOK_NUMBER && t->len < sizeof num) {
    memcpy(num, t->start, t->len);
    num[t->len] = 0;
    errno = 0;
    *out = strtof(num, &end);
  }
  if (end == num || *end) return fail_found(ps, "%s must be a number", what);
  /* Underflow to a subnormal or zero is the nearest float and reads back;
   * overflow would be inf, which no attribute may hold. */
  if (errno == ERANGE && isinf(*out))
    return fail_found(ps, "%s is out of range for a 32-bit float (at most %g)", what, (double)FLT_MAX);
  return next(ps);
}

/* ---- types, attributes, locations ---- */

typedef struct tensor_type {
  nnc_dtype dtype;
  int rank;
  int64_t shape[NNC_MAX_RANK];
} tensor_type;

static int parse_dtype(parser *ps, nnc_dtype *out) {
  static const char *const names[] = {"f32", "i32", NULL};
  static const nnc_dtype dtypes[] = {NNC_F32, NNC_I32};
  char buf[64];
  if (ps->tok.kind != TOK_IDENT) return fail_found(ps, "expected a type such as f32[2,3]");
  for (int i = 0; names[i]; i++)
    if (is_word(ps, names[i])) {
      *out = dtypes[i];
      return next(ps);
    }
  char hint[64];
  ident_text(ps, buf, sizeof buf);
  return FAIL_AT(ps, &ps->tok, "unknown element type '%s'%s", buf, did_you_mean(buf, names, hint, sizeof hint));
}

static int parse_dim(parser *ps, void *ctx) {
  tensor_type *ty = ctx;
  if (ty->rank == NNC_MAX_RANK) return FAIL_AT(ps, &ps->tok, "a type has at most %d dimensions", NNC_MAX_RANK);
  if (is_punct(ps, '?')) ty->shape[ty->rank] = NNC_DIM_ANY;
  else if (token_int(ps, 0, INT64_MAX, &ty->shape[ty->rank]))
    return fail_found(ps, "a dimension is a size or '?'");
  ty->rank++;
  return next(ps);
}

/* dtype[d,...] where each d is a size or `?`. */
static int parse_type(parser *ps, tensor_type *ty) {
  memset(ty, 0, sizeof *ty);
  if (parse_dtype(ps, &ty->dtype)) return -1;
  return parse_list(ps, '[', ']', parse_dim, ty);
}

typedef struct int_list {
  const char *what; /* the attribute, for messages */
  int max;
  int64_t lo, hi;
  int64_t *values;
  int count;
} int_list;

static int parse_int_item(parser *ps, void *ctx) {
  int_list *l = ctx;
  if (l->count == l->max) return FAIL_AT(ps, &ps->tok, "%s has at most %d entries", l->what, l->max);
  return expect_int(ps, l->what, l->lo, l->hi, &l->values[l->count++]);
}

/* [a, b, ...] of at most `max` integers in [lo, hi]; returns the count. */
static int parse_int_list(parser *ps, const char *what, int max, int64_t lo, int64_t hi, int64_t *values) {
  int_list l = {what, max, lo, hi, values, 0};
  return parse_list(ps, '[', ']', parse_int_item, &l) ? -1 : l.count;
}

static int parse_pad(parser *ps, const char *what, int32_t *out) {
  if (is_word(ps, "same")) *out = NNC_PAD_SAME;
  else if (is_word(ps, "valid")) *out = NNC_PAD_VALID;
  else return fail_found(ps, "%s must be same or valid", what);
  return next(ps);
}

static int parse_attr_value(parser *ps, const nnc_attr_field *f, nnc_attrs *a) {
  int32_t *v = field_at(a, f);
  int64_t list[NNC_MAX_RANK], value;
  int count;
  token start = ps->tok;
  switch (f->kind) {
  case NNC_FIELD_PAIR:
    if ((count = parse_int_list(ps, f->name, 2, INT32_MIN, INT32_MAX, list)) < 0) return -1;
    if (count != 2) return FAIL_AT(ps, &start, "%s needs two entries, [a,b]", f->name);
    v[0] = (int32_t)list[0], v[1] = (int32_t)list[1];
    return 0;
  case NNC_FIELD_PAD: return parse_pad(ps, f->name, v);
  case NNC_FIELD_BOOL:
  case NNC_FIELD_INT:
    if (expect_int(ps, f->name, f->kind == NNC_FIELD_BOOL ? 0 : INT32_MIN, f->kind == NNC_FIELD_BOOL ? 1 : INT32_MAX,
                   &value))
      return -1;
    *v = (int32_t)value;
    return 0;
  case NNC_FIELD_FLOAT: return expect_float(ps, f->name, field_at(a, f));
  case NNC_FIELD_SHAPE:
    if ((count = parse_int_list(ps, f->name, NNC_MAX_RANK, INT64_MIN, INT64_MAX, a->shape)) < 0) return -1;
    a->shape_rank = count;
    return 0;
  }
  return 0;
}

/* Which attributes this op takes, as names for "did you mean". */
static void attr_choices(nnc_op op, const char **choices) {
  int n = 0;
  if (op_is_leaf(op)) choices[n++] = "name";
  for (int i = 0; i < nnc_attr_field_count; i++)
    if (op_attrs(op) & nnc_attr_fields[i].bit) choices[n++] = nnc_attr_fields[i].name;
  choices[n] = NULL;
}

static int unknown_attr(parser *ps, nnc_op op, const token *at, const char *name) {
  const char *choices[nnc_attr_field_count + 2];
  attr_choices(op, choices);
  char hint[64];
  return FAIL_AT(ps, at, "%s has no attribute '%s'%s", op_name(op), name,
                 did_you_mean(name, choices, hint, sizeof hint));
}

typedef struct attr_set {
  nnc_node_spec *spec;
  unsigned seen; /* NNC_A_* bits given so far, and SEEN_NAME */
} attr_set;
#define SEEN_NAME (1u << 31)

/* One name=value; a repeat is an error rather than a silent overwrite. */
static int parse_attr(parser *ps, void *ctx) {
  nnc_node_spec *spec = ((attr_set *)ctx)->spec;
  unsigned *seen = &((attr_set *)ctx)->seen;
  char name[64];
  token at = ps->tok;
  if (at.kind != TOK_IDENT) return fail_found(ps, "expected an attribute name");
  ident_text(ps, name, sizeof name);
  const nnc_attr_field *f = NULL;
  for (int i = 0; i < nnc_attr_field_count; i++)
    if ((op_attrs(spec->op) & nnc_attr_fields[i].bit) && strcmp(nnc_attr_fields[i].name, name) == 0)
      f = &nnc_attr_fields[i];
  int is_name = op_is_leaf(spec->op) && strcmp(name, "name") == 0;
  if (!f && !is_name) return unknown_attr(ps, spec->op, &at, name);
  unsigned bit = f ? f->bit : SEEN_NAME;
  if (*seen & bit) return FAIL_AT(ps, &at, "attribute '%s' is given twice", name);
  *seen |= bit;
  if (next(ps) || expect_punct(ps, '=')) return -1;
  if (is_name) return expect_string(ps, "the leaf's name", &spec->name);
  return parse_attr_value(ps, f, &spec->attrs);
}

/* {a=..., b=...}, optional; every attribute the op takes must be present,
 * since the printer always writes them all and a default would hide typos. */
static int parse_attrs(parser *ps, const token *optok, nnc_node_spec *spec) {
  attr_set set = {spec, 0};
  if (is_punct(ps, '{') && parse_list(ps, '{', '}', parse_attr, &set)) return -1;
  unsigned seen = set.seen;
  if (op_is_leaf(spec->op) && !(seen & SEEN_NAME))
    return FAIL_AT(ps, optok, "%s needs attribute 'name'", op_name(spec->op));
  for (int i = 0; i < nnc_attr_field_count; i++)
    if ((op_attrs(spec->op) & nnc_attr_fields[i].bit) && !(seen & nnc_attr_fields[i].bit))
      return FAIL_AT(ps, optok, "%s needs attribute '%s'", op_name(spec->op), nnc_attr_fields[i].name);
  return 0;
}

/* loc(LAYER[, TYPE][, FILE:LINE]): a string followed by ':' is the file. */
static int parse_loc(parser *ps, nnc_loc *loc) {
  if (next(ps) || expect_punct(ps, '(') || expect_string(ps, "the layer name", &loc->layer)) return -1;
  int have_type = 0;
  while (is_punct(ps, ',') && !loc->file) {
    const char *s = NULL;
    if (next(ps)) return -1;
    if (expect_string(ps, "a layer type or file name", &s)) return -1;
    if (is_punct(ps, ':')) {
      int64_t line = 0;
      if (next(ps) || expect_int(ps, "the line number", INT32_MIN, INT32_MAX, &line)) return -1;
      loc->file = s;
      loc->line = (int)line;
    } else if (!have_type) {
      loc->layer_type = s;
      have_type = 1;
    } else {
      return fail_found(ps, "expected ':' and a line number after the file name");
    }
  }
  return expect_punct(ps, ')');
}

/* ---- lines ---- */

static int parse_op(parser *ps, nnc_op *op) {
  char name[64];
  if (ps->tok.kind != TOK_IDENT) return fail_found(ps, "expected an op name");
  *op = nnc_op_by_name(ident_text(ps, name, sizeof name));
  if (*op == NNC_OP_COUNT) {
    const char *names[NNC_OP_COUNT + 1];
    for (int i = 0; i < NNC_OP_COUNT; i++) names[i] = nnc_ops[i].name;
    names[NNC_OP_COUNT] = NULL;
    char hint[64];
    return FAIL_AT(ps, &ps->tok, "unknown op '%s'%s", name, did_you_mean(name, names, hint, sizeof hint));
  }
  return next(ps);
}

/* A %N that names an existing node. */
static int expect_ref(parser *ps, int32_t *out) {
  const token *t = &ps->tok;
  if (t->kind != TOK_REF) return fail_found(ps, "expected a node (%%N)");
  if (t->ref >= ps->g->nnodes) return FAIL_AT(ps, t, "%%%d is used before it is defined", (int)t->ref);
  *out = (int32_t)t->ref;
  return next(ps);
}

/* Counts past NNC_MAX_SRC so the arity message gives the real count. */
static int parse_operand(parser *ps, void *ctx) {
  nnc_node_spec *spec = ctx;
  int32_t ref = 0;
  if (expect_ref(ps, &ref)) return -1;
  if (spec->nsrc < NNC_MAX_SRC) spec->src[spec->nsrc] = ref;
  spec->nsrc++;
  return 0;
}

/* (%a, %b): the count is checked against the op's arity. */
static int parse_operands(parser *ps, const token *optok, nnc_node_spec *spec) {
  if (parse_list(ps, '(', ')', parse_operand, spec)) return -1;
  int arity = nnc_ops[spec->op].arity;
  if (spec->nsrc != arity)
    return FAIL_AT(ps, optok, "%s takes %d operand%s, found %d", op_name(spec->op), arity,
                   arity == 1 ? "" : "s", spec->nsrc);
  return 0;
}

static int same_type(const nnc_node *n, const tensor_type *ty) {
  return n->dtype == ty->dtype && n->rank == ty->rank &&
         memcmp(n->shape, ty->shape, sizeof ty->shape[0] * (size_t)ty->rank) == 0;
}

static int type_mismatch(parser *ps, const token *at, const nnc_node *n, const tensor_type *ty) {
  nnc_strbuf written, inferred;
  nnc_strbuf_init(&written);
  nnc_strbuf_init(&inferred);
  nnc_text_print_type(&written, ty->dtype, ty->rank, ty->shape);
  nnc_text_print_type(&inferred, n->dtype, n->rank, n->shape);
  FAIL_AT(ps, at, "type %s does not match the inferred type %s", nnc_strbuf_str(&written),
          nnc_strbuf_str(&inferred));
  nnc_strbuf_free(&written);
  nnc_strbuf_free(&inferred);
  return -1;
}

typedef struct node_line {
  token def, op, type; /* where to point messages */
  nnc_node_spec spec;
  tensor_type ty;
  nnc_loc loc;
} node_line;

/* Adds the parsed line; the graph re-infers its type, which must match. */
static int add_node(parser *ps, node_line *ln) {
  int32_t want = ps->g->nnodes;
  if (op_is_leaf(ln->spec.op)) {
    ln->spec.dtype = ln->ty.dtype;
    ln->spec.rank = ln->ty.rank;
    memcpy(ln->spec.shape, ln->ty.shape, sizeof ln->spec.shape);
  }
  nnc_graph_set_loc(ps->g, ln->loc.layer, ln->loc.layer_type, ln->loc.file, ln->loc.line);
  int32_t id = nnc_graph_add(ps->g, &ln->spec, ps->st);
  if (id < 0) return fail_graph(ps, &ln->op);
  if (id != want)
    return FAIL_AT(ps, &ln->def, "%%%d repeats %%%d; the graph merges identical nodes, so use %%%d",
                   (int)want, (int)id, (int)id);
  if (!same_type(&ps->g->nodes[id], &ln->ty)) return type_mismatch(ps, &ln->type, &ps->g->nodes[id], &ln->ty);
  return 0;
}

/* %N = op(operands) {attrs} : type loc(...) */
static int parse_node(parser *ps) {
  node_line ln;
  memset(&ln, 0, sizeof ln);
  ln.def = ps->tok;
  if (ln.def.ref != ps->g->nnodes)
    return FAIL_AT(ps, &ln.def, "expected %%%d: nodes are numbered in order from %%0", ps->g->nnodes);
  if (next(ps) || expect_punct(ps, '=')) return -1;
  ln.op = ps->tok;
  if (parse_op(ps, &ln.spec.op) || parse_operands(ps, &ln.op, &ln.spec) ||
      parse_attrs(ps, &ln.op, &ln.spec) || expect_punct(ps, ':'))
    return -1;
  ln.type = ps->tok;
  if (parse_type(ps, &ln.ty)) return -1;
  if (is_word(ps, "loc") && parse_loc(ps, &ln.loc)) return -1;
  return add_node(ps, &ln);
}

/* output "role" = %N */
static int parse_output(parser *ps) {
  const char *role = NULL;
  int32_t node = 0;
  if (next(ps)) return -1;
  token at = ps->tok;
  if (expect_string(ps, "the output's role", &role) || expect_punct(ps, '=') || expect_ref(ps, &node))
    return -1;
  if (nnc_graph_add_output(ps->g, role, node, ps->st)) return fail_graph(ps, &at);
  return 0;
}

/* fused "rule" { %N = ... } : the nodes inside form one group. */
static int parse_group(parser *ps) {
  const char *rule = NULL;
  if (next(ps)) return -1;
  token at = ps->tok;
  if (expect_string(ps, "the fusion rule", &rule)) return -1;
  char *rule_copy = strdup(rule);
  int32_t members[NNC_MAX_GROUP];
  int count = 0, rc = expect_punct(ps, '{');
  while (rc == 0 && !is_punct(ps, '}')) {
    if (ps->tok.kind != TOK_REF) rc = fail_found(ps, "expected a node (%%N = ...) or '}' in a fused group");
    else if (count == NNC_MAX_GROUP) rc = FAIL_AT(ps, &ps->tok, "a fused group has at most %d members", NNC_MAX_GROUP);
    else {
      members[count++] = ps->g->nnodes;
      rc = parse_node(ps);
    }
  }
  if (rc == 0 && (rc = next(ps)) == 0 && nnc_graph_add_group(ps->g, rule_copy, members, count, ps->st) < 0)
    rc = fail_graph(ps, &at);
  free(rule_copy);
  return rc;
}

/* A word among names[0, count) at the current token, as its index. */
static int expect_choice(parser *ps, const char *what, const char *const *names, int count, int *out) {
  char buf[64];
  if (ps->tok.kind == TOK_IDENT)
    for (int i = 0; i < count; i++)
      if (!strcmp(ident_text(ps, buf, sizeof buf), names[i])) {
        *out = i;
        return next(ps);
      }
  return fail_found(ps, "expected %s", what);
}

/* %A, %B, ...: each must be a member of k (none when members is set: then
 * they become its members). Returns the bit set of the members named. */
static int parse_kernel_refs(parser *ps, nnc_kernel *k, int members, unsigned *mask) {
  *mask = 0;
  for (;;) {
    token at = ps->tok;
    int32_t id = 0;
    if (expect_ref(ps, &id)) return -1;
    int m = 0;
    while (m < k->n && k->members[m] != id) m++;
    if (members) {
      if (k->n == NNC_MAX_GROUP) return FAIL_AT(ps, &at, "a kernel has at most %d members", NNC_MAX_GROUP);
      k->members[k->n++] = id;
    } else if (m == k->n) {
      return FAIL_AT(ps, &at, "%%%d is not a member of this kernel", (int)id);
    }
    *mask |= 1u << m;
    if (!is_punct(ps, ',')) return 0;
    if (next(ps)) return -1;
  }
}

/* kernel K: KIND [LIB] [prologue %P] %A, ... [stores %S, ...] [keeps %R, ...] */
static int parse_kernel(parser *ps, nnc_kernel *k) {
  int64_t index = 0;
  int kind = 0, lib = NNC_LIB_OWN;
  unsigned all = 0, stores = 0, keeps = 0;
  if (next(ps)) return -1;
  token at = ps->tok;
  if (expect_int(ps, "the kernel's number", 0, INT32_MAX, &index)) return -1;
  if (index != ps->nkernels) return FAIL_AT(ps, &at, "expected kernel %d: kernels are numbered in order", ps->nkernels);
  if (expect_punct(ps, ':') || expect_choice(ps, "a kernel kind (single, fused, blocked, serial, library)",
                                             nnc_kernel_kind_names, NNC_KERNEL_KINDS, &kind))
    return -1;
  if (kind == NNC_KERNEL_LIBRARY &&
      expect_choice(ps, "a library (cublas, cudnn, nccl)", nnc_kernel_lib_names + 1, NNC_LIB_COUNT - 1, &lib))
    return -1;
  *k = (nnc_kernel){.kind = (nnc_kernel_kind)kind, .lib = (nnc_kernel_lib)(lib + (kind == NNC_KERNEL_LIBRARY)),
                    .prologue = -1};
  if (is_word(ps, "prologue") && (next(ps) || expect_ref(ps, &k->prologue))) return -1;
  if (parse_kernel_refs(ps, k, 1, &all)) return -1;
  if (is_word(ps, "stores") && (next(ps) || parse_kernel_refs(ps, k, 0, &stores))) return -1;
  token keeps_at = ps->tok;
  if (is_word(ps, "keeps") && (next(ps) || parse_kernel_refs(ps, k, 0, &keeps))) return -1;
  if ((stores | keeps) != all || (stores & keeps))
    return FAIL_AT(ps, &keeps_at, "kernel %d: each member is either stored or kept, and only one", (int)index);
  k->stores = stores;
  k->group = ps->g->nodes[k->members[0]].group;
  return 0;
}

/* schedule { kernel ... } */
static int parse_schedule(parser *ps) {
  if (ps->has_schedule) return fail_found(ps, "expected one schedule");
  ps->has_schedule = 1;
  if (next(ps) || expect_punct(ps, '{')) return -1;
  int cap = 0;
  while (!is_punct(ps, '}')) {
    if (!is_word(ps, "kernel")) return fail_found(ps, "expected 'kernel' or '}' in the schedule");
    if (ps->nkernels == cap) {
      cap = cap ? 2 * cap : 16;
      nnc_kernel *grown = realloc(ps->kernels, sizeof *grown * (size_t)cap);
      if (!grown) nnc_out_of_memory("parsing IR");
      ps->kernels = grown;
    }
    if (parse_kernel(ps, &ps->kernels[ps->nkernels])) return -1;
    ps->nkernels++;
  }
  return next(ps);
}

static int parse_graph(parser *ps) {
  if (next(ps)) return -1;
  if (!is_word(ps, "graph")) return fail_found(ps, "expected 'graph'");
  if (next(ps) || expect_punct(ps, '{')) return -1;
  while (!is_punct(ps, '}')) {
    int rc;
    if (ps->tok.kind == TOK_REF) rc = parse_node(ps);
    else if (is_word(ps, "output")) rc = parse_output(ps);
    else if (is_word(ps, "fused")) rc = parse_group(ps);
    else if (is_word(ps, "schedule")) rc = parse_schedule(ps);
    else rc = fail_found(ps, "expected a node (%%N = ...), an output, a schedule or '}'");
    if (rc) return -1;
  }
  if (next(ps)) return -1;
  if (ps->tok.kind != TOK_EOF) return fail_found(ps, "expected the end of input after the graph");
  if (ps->has_schedule) nnc_graph_set_schedule(ps->g, ps->kernels, ps->nkernels);
  if (nnc_graph_verify(ps->g, ps->st)) return fail_pos(ps, ps->tok.line, ps->tok.col, "%s", ps->st->msg);
  /* Nodes added later by passes must not inherit the last line's place. */
  nnc_graph_set_loc(ps->g, NULL, NULL, NULL, 0);
  return 0;
}

nnc_graph *nnc_graph_parse(const char *text, const char *filename, nnc_status *st) {
  parser ps;
  memset(&ps, 0, sizeof ps);
  ps.filename = filename ? filename : "<string>";
  ps.p = ps.line_start = text;
  ps.line = 1;
  ps.g = nnc_graph_new();
  ps.st = st;
  nnc_strbuf_init(&ps.string);
  int rc = parse_graph(&ps);
  nnc_strbuf_free(&ps.string);
  free(ps.kernels);
  if (rc) {
    nnc_graph_free(ps.g);
    return NULL;
  }
  return ps.g;
}
