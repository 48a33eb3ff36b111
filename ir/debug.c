#include "ir/debug.h"

#include <stdlib.h>
#include <string.h>

/* Calls fn on each item of $NNC_DEBUG until it returns nonzero. */
static int each_item(int (*fn)(const char *item, size_t len, void *ctx), void *ctx) {
  const char *s = getenv("NNC_DEBUG");
  while (s && *s) {
    size_t len = strcspn(s, ",");
    if (len && fn(s, len, ctx)) return 1;
    s += len + (s[len] == ',');
  }
  return 0;
}

static int max_level(const char *item, size_t len, void *ctx) {
  (void)len;
  int *level = ctx, v = atoi(item);
  if (v > *level) *level = v;
  return 0;
}

int nnc_debug_level(void) {
  int level = 0;
  each_item(max_level, &level);
  return level;
}

static int same_word(const char *item, size_t len, void *ctx) {
  const char *word = ctx;
  return strlen(word) == len && !strncmp(item, word, len);
}

int nnc_debug_has(const char *check) { return each_item(same_word, (void *)check); }
