#include "ir/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void nnc_out_of_memory(const char *what) {
  fprintf(stderr, "nnc: error: out of memory (%s)\n", what);
  fflush(NULL);
  _Exit(1); /* no exit handlers: they could need memory too */
}

int nnc_failv(nnc_status *st, const char *fmt, va_list ap) {
  st->failed = 1;
  vsnprintf(st->msg, sizeof st->msg, fmt, ap);
  return -1;
}

int nnc_fail(nnc_status *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nnc_failv(st, fmt, ap);
  va_end(ap);
  return -1;
}

int nnc_fail_prefix(nnc_status *st, const char *fmt, ...) {
  char prefix[512], old[sizeof st->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, st->msg, sizeof old);
  st->failed = 1;
  /* Truncation keeps the front of the message, which matters most. */
  size_t used = strlen(prefix);
  if (used >= sizeof st->msg) used = sizeof st->msg - 1;
  memcpy(st->msg, prefix, used);
  size_t rest = strnlen(old, sizeof old);
  if (rest > sizeof st->msg - 1 - used) rest = sizeof st->msg - 1 - used;
  memcpy(st->msg + used, old, rest);
  st->msg[used + rest] = 0;
  return -1;
}

static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 1 << 20;
  int row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = diag + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const char *nnc_closest_name(const char *name, const char *const *choices) {
  const char *best = NULL;
  int best_d = 1 << 20;
  for (; *choices; choices++) {
    int d = edit_distance(name, *choices);
    if (d < best_d) best_d = d, best = *choices;
  }
  /* Past half the word's length a suggestion is noise, not a hint. */
  int limit = (int)strlen(name) / 2 + 2;
  return best_d <= limit ? best : NULL;
}
