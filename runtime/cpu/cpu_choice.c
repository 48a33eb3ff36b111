/* Choices of an algorithm measured per shape, for the ops whose fastest
 * algorithm depends on the shape and the machine in ways no threshold
 * captures: convolution (cpu_conv.c) and matmul (cpu_gemm.c).
 *
 * The first time a process meets a shape it runs every algorithm that
 * fits on it, on made-up data, in four rounds of each in turn (so a burst
 * of other work on the machine slows all of them alike; the first round
 * warms the caches), and keeps the one with the best time. Choices are
 * kept in memory, and in the kind's file in the cache directory
 * (NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc or ~/.cache/nnc) with the CPU's
 * model and the vector width the kernels were built for, so a machine
 * measures a shape once (NNC_NOCACHE, which is about compiled kernels,
 * leaves it on: measuring in every process would cost more than it could
 * save). Callers measure when a graph is prepared (their scratch hooks ask
 * first), never inside a step.
 *
 * A file's lines: the key (the machine, the shape's two tab-separated
 * fields, the thread count), then the algorithm's name and each measured
 * time. Lines are appended, so processes measuring other shapes at once
 * keep theirs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cache.h"
#include "runtime/cpu/cpu.h"

static pthread_mutex_t choices_lock = PTHREAD_MUTEX_INITIALIZER;

/* The CPU's model name, spaces and tabs made '_', and the kernels' vector width. */
static void machine_name(char *buf, size_t size) {
  char line[256], model[128] = "unknown";
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
      model[strcspn(model, "\n")] = 0;
      break;
    }
  if (f) fclose(f);
  for (char *c = model; *c; c++)
    if (*c == ' ' || *c == '\t') *c = '_';
#if defined(__AVX512F__)
  const char *isa = "avx512";
#elif defined(__AVX2__)
  const char *isa = "avx2";
#else
  const char *isa = "generic";
#endif
  snprintf(buf, size, "%s/%s", model, isa);
}

static void key_of(const char *shape, char *key, size_t size) {
  static char machine[160];
  if (!machine[0]) machine_name(machine, sizeof machine);
  snprintf(key, size, "%s\t%s\t%d", machine, shape, nnc_cpu_threads());
}

static int find(const nnc_cpu_choices *m, const char *key) {
  for (int i = 0; i < m->count; i++)
    if (!strcmp(m->key[i], key)) return i;
  return -1;
}

static void remember(nnc_cpu_choices *m, const char *key, int algo) {
  if (m->count >= NNC_CPU_MAX_CHOICES || strlen(key) >= sizeof m->key[0]) return;
  memcpy(m->key[m->count], key, strlen(key) + 1);
  m->algo[m->count++] = algo;
}

/* The cache file's path, or NULL when there is no cache directory. */
static const char *file_path(const nnc_cpu_choice_kind *kind, const nnc_options *o, char *path, size_t size) {
  char dir[2048];
  if (!nnc_cache_dir(o, dir, sizeof dir)) return NULL;
  snprintf(path, size, "%s/%s", dir, kind->file);
  return path;
}

static void read_file(const nnc_cpu_choice_kind *kind, const nnc_options *o) {
  char path[4096], line[1024];
  FILE *f = file_path(kind, o, path, sizeof path) ? fopen(path, "r") : NULL;
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *field = line;
    for (int tabs = 0; field && tabs < 4; tabs++) field = strchr(field + 1, '\t');
    if (!field) continue;
    *field++ = 0;
    for (int a = 0; a < kind->count; a++)
      if (!strncmp(field, kind->names[a], strlen(kind->names[a])) &&
          (field[strlen(kind->names[a])] == '\t' || !field[strlen(kind->names[a])]) && find(kind->memory, line) < 0)
        remember(kind->memory, line, a);
  }
  if (f) fclose(f);
}

static void append_file(const nnc_cpu_choice_kind *kind, const nnc_options *o, const char *key, int algo,
                        const double *seconds) {
  char path[4096];
  FILE *f = file_path(kind, o, path, sizeof path) ? fopen(path, "a") : NULL;
  if (!f) return;
  char line[1024];
  int len = snprintf(line, sizeof line, "%s\t%s", key, kind->names[algo]);
  for (int a = 0; a < kind->count && len < (int)sizeof line; a++)
    if (seconds[a] > 0)
      len += snprintf(line + len, sizeof line - (size_t)len, "\t%s=%.0fus", kind->names[a], 1e6 * seconds[a]);
  fprintf(f, "%s\n", line);
  fclose(f);
}

/* Seconds per run of each algorithm that fits (0 for the others); returns the fastest. */
static int measure(const nnc_cpu_choice_kind *kind, const nnc_options *o, const void *shape, double *seconds) {
  int best = 0;
  for (int a = 0; a < kind->count; a++) seconds[a] = kind->fits(o, a, shape) ? 1e30 : 0;
  void *data = kind->setup(o, shape);
  if (data) {
    for (int round = 0; round < 4; round++)
      for (int a = 0; a < kind->count; a++) {
        if (seconds[a] == 0) continue;
        double start = nnc_now();
        kind->run(data, a);
        double spent = nnc_now() - start;
        if (round > 0 && spent < seconds[a]) seconds[a] = spent;
      }
    kind->release(data);
    for (int a = 0; a < kind->count; a++)
      if (seconds[a] > 0 && seconds[a] < seconds[best]) best = a;
  } else {
    memset(seconds, 0, sizeof(double) * (size_t)kind->count);
  }
  return best;
}

void nnc_cpu_choice_fill(float *p, size_t count) {
  uint32_t s = 12345;
  for (size_t i = 0; i < count; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
  }
}

int nnc_cpu_choose(const nnc_cpu_choice_kind *kind, const nnc_options *o, const char *forced, const char *shape_text,
                   const void *shape) {
  if (forced && *forced)
    for (int a = 0; a < kind->count; a++)
      if (!strcmp(forced, kind->names[a])) return kind->fits(o, a, shape) ? a : 0;
  char key[sizeof kind->memory->key[0]];
  key_of(shape_text, key, sizeof key);
  pthread_mutex_lock(&choices_lock);
  nnc_cpu_choices *m = kind->memory;
  if (!m->file_read) read_file(kind, o);
  m->file_read = 1;
  int at = find(m, key), algo;
  if (at >= 0) {
    algo = m->algo[at];
  } else {
    double seconds[NNC_CPU_MAX_ALGOS];
    algo = measure(kind, o, shape, seconds);
    remember(m, key, algo);
    append_file(kind, o, key, algo, seconds);
  }
  pthread_mutex_unlock(&choices_lock);
  return kind->fits(o, algo, shape) ? algo : 0;
}

void nnc_cpu_choice_forget(const nnc_cpu_choice_kind *kind) {
  pthread_mutex_lock(&choices_lock);
  kind->memory->count = 0, kind->memory->file_read = 0;
  pthread_mutex_unlock(&choices_lock);
}
