/* A growable, always NUL-terminated string builder. The printer builds the
 * text IR in one, and code generators render kernels into one, so output is
 * assembled in memory and written (or hashed) whole. */
#ifndef NNC_STRBUF_H
#define NNC_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct nnc_strbuf {
  char *data; /* NULL until the first append; see nnc_strbuf_str */
  size_t len; /* bytes used, not counting the NUL */
  size_t cap; /* bytes allocated */
} nnc_strbuf;

void nnc_strbuf_init(nnc_strbuf *b);
/* Releases the buffer and leaves b empty and reusable. */
void nnc_strbuf_free(nnc_strbuf *b);

void nnc_strbuf_append(nnc_strbuf *b, const char *s);
void nnc_strbuf_appendn(nnc_strbuf *b, const char *s, size_t n);
void nnc_strbuf_appendc(nnc_strbuf *b, char c);
void nnc_strbuf_appendf(nnc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nnc_strbuf_vappendf(nnc_strbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The text so far; "" when nothing was appended. Valid until the next append. */
const char *nnc_strbuf_str(const nnc_strbuf *b);
/* Hands the malloc'd text to the caller (never NULL) and leaves b empty. */
char *nnc_strbuf_take(nnc_strbuf *b);

#endif
