/* The harness without libFuzzer: runs it once on each file named (or each
 * file in each folder named), so the normal and sanitizer trees check that
 * every seed and every saved crash goes through cleanly. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

static int run_file(const char *path) {
  /* Named first, so a crash's report follows the input that caused it. */
  printf("%s\n", path);
  fflush(stdout);
  FILE *f = fopen(path, "rb");
  if (!f) return fprintf(stderr, "cannot open %s\n", path), -1;
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (!buf) return fprintf(stderr, "out of memory reading %s\n", path), -1;
  /* A copy of exactly n bytes, so ASan sees a read past the input's end. */
  unsigned char *exact = malloc(n ? n : 1);
  if (!exact) return free(buf), -1;
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder's files in name order, so a failing run is repeatable. */
static int run_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  if (!d) return fprintf(stderr, "cannot open %s\n", dir), -1;
  char **names = NULL;
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char **grown = realloc(names, sizeof *names * (n + 1));
    if (!grown) break;
    names = grown;
    names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
    if (names[n]) sprintf(names[n++], "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (!rc) rc = run_file(names[i]), ++*count;
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  int count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb)) return fprintf(stderr, "cannot open %s\n", argv[i]), 1;
    int rc = S_ISDIR(sb.st_mode) ? run_dir(argv[i], &count) : (count++, run_file(argv[i]));
    if (rc) return 1;
  }
  printf("%s: %d input(s) ran cleanly\n", argv[0], count);
  return 0;
}
