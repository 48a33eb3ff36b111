/* The string builder. Allocation failure ends the process with a message
 * (nnc_out_of_memory), as in the graph: there is no useful way to report it
 * and every caller would have to check. */
#include "ir/strbuf.h"
#include "ir/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nnc_strbuf_init(nnc_strbuf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void nnc_strbuf_free(nnc_strbuf *b) {
  free(b->data);
  nnc_strbuf_init(b);
}

/* Makes room for `extra` more bytes plus the NUL. */
static void reserve(nnc_strbuf *b, size_t extra) {
  if (b->len + extra < b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (b->len + extra >= cap) cap *= 2;
  char *data = realloc(b->data, cap);
  if (!data) nnc_out_of_memory("growing a string");
  b->data = data;
  b->cap = cap;
}

void nnc_strbuf_appendn(nnc_strbuf *b, const char *s, size_t n) {
  reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

void nnc_strbuf_append(nnc_strbuf *b, const char *s) { nnc_strbuf_appendn(b, s, strlen(s)); }

void nnc_strbuf_appendc(nnc_strbuf *b, char c) { nnc_strbuf_appendn(b, &c, 1); }

void nnc_strbuf_vappendf(nnc_strbuf *b, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  /* First pass measures, so the second never truncates. */
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n > 0) {
    reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    b->len += (size_t)n;
  }
  va_end(again);
}

void nnc_strbuf_appendf(nnc_strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nnc_strbuf_vappendf(b, fmt, ap);
  va_end(ap);
}

const char *nnc_strbuf_str(const nnc_strbuf *b) { return b->data ? b->data : ""; }

char *nnc_strbuf_take(nnc_strbuf *b) {
  if (!b->data) reserve(b, 0);
  b->data[b->len] = 0;
  char *text = b->data;
  nnc_strbuf_init(b);
  return text;
}
