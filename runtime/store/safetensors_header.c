/* The JSON header of a safetensors file: a strict parser for just what the
 * format allows (runtime/store/safetensors.c reads the file and checks the
 * layout the header describes). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/store/safetensors_header.h"

/* __metadata__ may hold nested values we skip by recursion; bound the depth
 * so a hostile header cannot overflow the stack. */
#define MAX_JSON_DEPTH 64

/* ---------------------------------------------------------------- dtypes */

static const struct {
  const char *name;
  int size;
} dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I64", 8}, {"I32", 4},
    {"I16", 2}, {"I8", 1},  {"U64", 8}, {"U32", 4},  {"U16", 2},     {"U8", 1},      {"BOOL", 1},
};

/* Bytes per element, or 0 for a name safetensors does not define. */
int nnc_safetensors_dtype_size(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (strcmp(dtypes[i].name, name) == 0) return dtypes[i].size;
  return 0;
}

/* Elements in a shape, or -1 when the product does not fit in int64. */
/* ------------------------------------------------------------ JSON header */

typedef struct parser {
  const char *path;
  const unsigned char *s;
  size_t len, pos;
  size_t base;   /* file offset of s[0], so messages match a hex dump */
  size_t key_at; /* where the member being parsed starts, for messages about it */
  nnc_status *st;
} parser;

__attribute__((format(printf, 3, 4))) static int syntax_error_at(parser *p, size_t at, const char *fmt, ...) {
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return nnc_fail(p->st, "%s: malformed header at byte %zu: %s", p->path, p->base + at, what);
}

#define syntax_error(p, ...) syntax_error_at((p), (p)->pos, __VA_ARGS__)

static int peek(const parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static void skip_ws(parser *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                             p->s[p->pos] == '\r'))
    p->pos++;
}

static int expect(parser *p, char c) {
  skip_ws(p);
  if (peek(p) != c) return syntax_error(p, "expected '%c'", c);
  p->pos++;
  return 0;
}

/* Reads 4 hex digits at s[at]; -1 if they are not there. */
static int hex4(const parser *p, size_t at, unsigned *out) {
  if (at + 4 > p->len) return -1;
  unsigned v = 0;
  for (size_t i = at; i < at + 4; i++) {
    int c = p->s[i], d = is_digit(c) ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return 0;
}

static size_t utf8_encode(unsigned cp, char *out) {
  if (cp < 0x80) return out[0] = (char)cp, 1;
  if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 63)), 2;
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 63)), out[2] = (char)(0x80 | (cp & 63));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | (cp >> 12 & 63));
  out[2] = (char)(0x80 | (cp >> 6 & 63)), out[3] = (char)(0x80 | (cp & 63));
  return 4;
}

/* A \uXXXX escape at p->pos, as a code point; a UTF-16 surrogate pair takes
 * two escapes. Names become C strings, so \u0000 is refused. */
static int parse_unicode_escape(parser *p, unsigned *cp, size_t *used) {
  if (hex4(p, p->pos + 2, cp)) return syntax_error(p, "expected 4 hex digits after '\\u'");
  *used = 6;
  if (*cp >= 0xD800 && *cp < 0xDC00) {
    unsigned lo;
    size_t at = p->pos + 6;
    if (at + 2 > p->len || p->s[at] != '\\' || p->s[at + 1] != 'u' || hex4(p, at + 2, &lo) || lo < 0xDC00 ||
        lo >= 0xE000)
      return syntax_error(p, "unpaired UTF-16 surrogate in '\\u' escape");
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    *used = 12;
  } else if (*cp >= 0xDC00 && *cp < 0xE000) {
    return syntax_error(p, "unpaired UTF-16 surrogate in '\\u' escape");
  }
  if (*cp == 0) return syntax_error(p, "'\\u0000' in a string");
  return 0;
}

/* Decodes the escape at p->pos (a backslash) onto buf[*n]. */
static int parse_escape(parser *p, char *buf, size_t *n) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  if (p->pos + 1 >= p->len) return syntax_error(p, "unterminated string");
  int e = p->s[p->pos + 1];
  const char *hit = e ? strchr(from, e) : NULL;
  if (hit) {
    buf[(*n)++] = to[hit - from];
    p->pos += 2;
    return 0;
  }
  if (e != 'u') return syntax_error(p, "invalid escape '\\%c'", e >= 0x20 && e < 0x7F ? e : '?');
  unsigned cp;
  size_t used;
  if (parse_unicode_escape(p, &cp, &used)) return -1;
  *n += utf8_encode(cp, buf + *n);
  p->pos += used;
  return 0;
}

/* Bytes between p->pos and the closing quote, so a string's buffer is sized
 * by the string and not by the rest of the header. */
static size_t raw_string_length(const parser *p) {
  size_t i = p->pos;
  while (i < p->len && p->s[i] != '"') i += p->s[i] == '\\' ? 2 : 1;
  return (i < p->len ? i : p->len) - p->pos;
}

/* Reads a JSON string into a malloc'd C string. Escapes never expand (six
 * bytes of \uXXXX make at most three of UTF-8), so the raw length bounds it. */
static int parse_string(parser *p, char **out) {
  *out = NULL;
  if (expect(p, '"')) return -1;
  size_t open = p->pos - 1, n = 0;
  char *buf = malloc(raw_string_length(p) + 1);
  if (!buf) return nnc_fail(p->st, "%s: out of memory reading the header", p->path);
  for (;;) {
    if (p->pos >= p->len) {
      free(buf);
      return syntax_error_at(p, open, "unterminated string");
    }
    unsigned char c = p->s[p->pos];
    if (c == '"') break;
    if (c < 0x20) {
      free(buf);
      return syntax_error(p, "control character 0x%02x in a string", c);
    }
    if (c != '\\') {
      buf[n++] = (char)c;
      p->pos++;
    } else if (parse_escape(p, buf, &n)) {
      free(buf);
      return -1;
    }
  }
  p->pos++;
  buf[n] = 0;
  *out = buf;
  return 0;
}

/* Shapes and offsets are counts: a sign, a fraction or an exponent would be a
 * writer's bug, so each is an error rather than something to round. */
static int parse_count(parser *p, int64_t *out) {
  skip_ws(p);
  size_t start = p->pos;
  if (peek(p) == '-') return syntax_error(p, "expected a non-negative integer");
  if (!is_digit(peek(p))) return syntax_error(p, "expected an integer");
  if (p->s[p->pos] == '0' && p->pos + 1 < p->len && is_digit(p->s[p->pos + 1]))
    return syntax_error(p, "number with a leading zero");
  int64_t v = 0;
  for (; is_digit(peek(p)); p->pos++) {
    int d = p->s[p->pos] - '0';
    if (v > (INT64_MAX - d) / 10) return syntax_error_at(p, start, "number too large");
    v = v * 10 + d;
  }
  int c = peek(p);
  if (c == '.' || c == 'e' || c == 'E') return syntax_error_at(p, start, "expected an integer");
  *out = v;
  return 0;
}

/* After a list's element: 1 and past the ',' when another follows, 0 and
 * past `close` at the end, -1 with a message otherwise. */
static int next_element(parser *p, char close) {
  skip_ws(p);
  if (peek(p) == ',') return p->pos++, 1;
  if (peek(p) == close) return p->pos++, 0;
  return syntax_error(p, "expected ',' or '%c'", close);
}

/* A JSON array of counts; more than `max` is an error naming `what`. */
static int parse_counts(parser *p, const char *what, int max, int64_t *out, int *n) {
  if (expect(p, '[')) return -1;
  *n = 0;
  skip_ws(p);
  if (peek(p) == ']') return p->pos++, 0;
  for (;;) {
    if (*n == max) return syntax_error(p, "%s has more than %d entries", what, max);
    if (parse_count(p, &out[(*n)++])) return -1;
    int more = next_element(p, ']');
    if (more <= 0) return more;
  }
}

/* Called for each member of an object, with p->pos just after the ':'. */
typedef int member_fn(parser *p, const char *key, void *ctx);

static int parse_object(parser *p, member_fn *fn, void *ctx) {
  if (expect(p, '{')) return -1;
  skip_ws(p);
  if (peek(p) == '}') return p->pos++, 0;
  for (;;) {
    char *key;
    skip_ws(p);
    size_t key_at = p->pos;
    if (parse_string(p, &key)) return -1;
    p->key_at = key_at;
    int rc = expect(p, ':') ? -1 : fn(p, key, ctx);
    free(key);
    if (rc) return -1;
    int more = next_element(p, '}');
    if (more <= 0) return more;
  }
}

static int skip_value(parser *p, int depth);

static int skip_member(parser *p, const char *key, void *ctx) {
  (void)key;
  return skip_value(p, *(int *)ctx + 1);
}

static int skip_array(parser *p, int depth) {
  p->pos++;
  skip_ws(p);
  if (peek(p) == ']') return p->pos++, 0;
  for (;;) {
    if (skip_value(p, depth + 1)) return -1;
    int more = next_element(p, ']');
    if (more <= 0) return more;
  }
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(parser *p) {
  if (peek(p) == '-') p->pos++;
  if (!is_digit(peek(p))) return syntax_error(p, "expected a digit");
  if (p->s[p->pos] == '0' && p->pos + 1 < p->len && is_digit(p->s[p->pos + 1]))
    return syntax_error(p, "number with a leading zero");
  while (is_digit(peek(p))) p->pos++;
  if (peek(p) == '.') {
    p->pos++;
    if (!is_digit(peek(p))) return syntax_error(p, "expected a digit");
    while (is_digit(peek(p))) p->pos++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->pos++;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (!is_digit(peek(p))) return syntax_error(p, "expected a digit");
    while (is_digit(peek(p))) p->pos++;
  }
  return 0;
}

static int skip_literal(parser *p) {
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if (p->pos + n <= p->len && memcmp(p->s + p->pos, words[i], n) == 0) return p->pos += n, 0;
  }
  return syntax_error(p, "expected a value");
}

/* Checks and steps over any JSON value: __metadata__ may hold things nnc
 * does not read, but they must still be well-formed JSON. */
static int skip_value(parser *p, int depth) {
  skip_ws(p);
  if (depth > MAX_JSON_DEPTH) return syntax_error(p, "values nested deeper than %d levels", MAX_JSON_DEPTH);
  int c = peek(p);
  if (c == '"') {
    char *s;
    if (parse_string(p, &s)) return -1;
    free(s);
    return 0;
  }
  if (c == '{') return parse_object(p, skip_member, &depth);
  if (c == '[') return skip_array(p, depth);
  if (c == '-' || is_digit(c)) return skip_number(p);
  return skip_literal(p);
}

/* ---- the header's own structure */

enum { HAS_DTYPE = 1, HAS_SHAPE = 2, HAS_OFFSETS = 4 };

typedef struct entry_ctx {
  nnc_safetensors_entry *e;
  unsigned seen;
} entry_ctx;

static int parse_dtype(parser *p, nnc_safetensors_entry *e) {
  char *dtype;
  skip_ws(p);
  size_t at = p->pos;
  if (parse_string(p, &dtype)) return -1;
  int known = nnc_safetensors_dtype_size(dtype) > 0;
  if (known) snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
  int rc = known ? 0 : syntax_error_at(p, at, "tensor '%s' has unknown dtype '%.40s'", e->name, dtype);
  free(dtype);
  return rc;
}

static int parse_offsets(parser *p, nnc_safetensors_entry *e) {
  int64_t offsets[2];
  int n;
  skip_ws(p);
  size_t at = p->pos;
  if (parse_counts(p, "data_offsets", 2, offsets, &n)) return -1;
  if (n != 2) return syntax_error_at(p, at, "tensor '%s': data_offsets must be [begin, end]", e->name);
  e->begin = offsets[0], e->end = offsets[1];
  return 0;
}

static int entry_member(parser *p, const char *key, void *ctx) {
  entry_ctx *c = ctx;
  unsigned bit = strcmp(key, "dtype") == 0 ? HAS_DTYPE : strcmp(key, "shape") == 0 ? HAS_SHAPE
               : strcmp(key, "data_offsets") == 0 ? HAS_OFFSETS : 0;
  if (!bit) return syntax_error_at(p, p->key_at, "tensor '%s' has unexpected key '%s'", c->e->name, key);
  if (c->seen & bit) return syntax_error_at(p, p->key_at, "tensor '%s' has '%s' twice", c->e->name, key);
  c->seen |= bit;
  if (bit == HAS_DTYPE) return parse_dtype(p, c->e);
  if (bit == HAS_SHAPE) return parse_counts(p, "shape", NNC_MAX_RANK, c->e->shape, &c->e->rank);
  return parse_offsets(p, c->e);
}

static int parse_entry(parser *p, nnc_safetensors_entry *e) {
  entry_ctx c = {e, 0};
  skip_ws(p);
  size_t at = p->pos;
  if (parse_object(p, entry_member, &c)) return -1;
  const char *missing = !(c.seen & HAS_DTYPE) ? "dtype" : !(c.seen & HAS_SHAPE) ? "shape"
                      : !(c.seen & HAS_OFFSETS) ? "data_offsets" : NULL;
  if (missing) return syntax_error_at(p, at, "tensor '%s' has no '%s'", e->name, missing);
  return 0;
}

static int metadata_member(parser *p, const char *key, void *ctx) {
  nnc_safetensors_index *idx = ctx;
  skip_ws(p);
  if (strcmp(key, "format") != 0 || peek(p) != '"') return skip_value(p, 1);
  if (idx->format) return syntax_error_at(p, p->key_at, "'format' appears twice in __metadata__");
  return parse_string(p, &idx->format);
}

typedef struct top_ctx {
  nnc_safetensors_index *idx;
  int cap;
  int seen_metadata;
} top_ctx;

static int top_member(parser *p, const char *key, void *ctx) {
  top_ctx *c = ctx;
  nnc_safetensors_index *idx = c->idx;
  if (strcmp(key, "__metadata__") == 0) {
    if (c->seen_metadata++) return syntax_error_at(p, p->key_at, "__metadata__ appears twice");
    return parse_object(p, metadata_member, idx);
  }
  if (idx->count == c->cap) {
    int cap = c->cap ? 2 * c->cap : 16;
    void *grown = realloc(idx->entries, (size_t)cap * sizeof *idx->entries);
    if (!grown) return nnc_fail(p->st, "%s: out of memory reading the header", p->path);
    idx->entries = grown, c->cap = cap;
  }
  nnc_safetensors_entry *e = &idx->entries[idx->count];
  memset(e, 0, sizeof *e);
  if (!(e->name = strdup(key))) return nnc_fail(p->st, "%s: out of memory reading the header", p->path);
  idx->count++;
  return parse_entry(p, e);
}

/* The header is exactly one object; the spec requires it to open the header
 * and allows only padding (whitespace) after it. */
static int parse_header(parser *p, nnc_safetensors_index *idx) {
  if (peek(p) != '{') return syntax_error(p, "expected '{'");
  top_ctx c = {idx, 0, 0};
  if (parse_object(p, top_member, &c)) return -1;
  skip_ws(p);
  if (p->pos != p->len) return syntax_error(p, "unexpected data after the header object");
  return 0;
}

int nnc_safetensors_parse_header(const char *path, const unsigned char *text, size_t len, size_t base,
                                 nnc_safetensors_index *idx, nnc_status *st) {
  parser p = {.path = path, .s = text, .len = len, .base = base, .st = st};
  return parse_header(&p, idx);
}
