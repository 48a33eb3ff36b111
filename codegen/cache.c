/* The content-keyed kernel cache (codegen/cache.h). */
#include "codegen/cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two independent 64-bit hashes: FNV-1a, and a multiply-rotate mix. */
void nnc_hasher_init(nnc_hasher *h) {
  h->a = 0xcbf29ce484222325ull;
  h->b = 0x9e3779b97f4a7c15ull;
}

void nnc_hasher_add(nnc_hasher *h, const void *data, size_t size) {
  const unsigned char *p = data;
  uint64_t a = h->a, b = h->b;
  for (size_t i = 0; i < size; i++) {
    a = (a ^ p[i]) * 0x100000001b3ull;
    b = (b + p[i] + 1) * 0xff51afd7ed558ccdull;
    b ^= b >> 29;
  }
  h->a = a, h->b = b;
}

void nnc_hasher_str(nnc_hasher *h, const char *s) { nnc_hasher_add(h, s, strlen(s) + 1); }

void nnc_hasher_hex(const nnc_hasher *h, char out[33]) {
  snprintf(out, 33, "%016llx%016llx", (unsigned long long)h->a, (unsigned long long)h->b);
}

int nnc_cache_enabled(const nnc_options *o) { return !o->nocache; }

/* mkdir -p for the last two components at most (~/.cache/nnc). */
static int make_dirs(char *path) {
  struct stat sb;
  if (stat(path, &sb) == 0) return S_ISDIR(sb.st_mode) ? 0 : -1;
  char *slash = strrchr(path, '/');
  if (slash && slash != path) {
    *slash = 0;
    int rc = make_dirs(path);
    *slash = '/';
    if (rc) return -1;
  }
  return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

const char *nnc_cache_dir(const nnc_options *o, char *buf, size_t size) {
  const char *dir = o->cache_dir, *xdg = o->xdg_cache_home, *home = o->home;
  if (dir && *dir) snprintf(buf, size, "%s", dir);
  else if (xdg && *xdg) snprintf(buf, size, "%s/nnc", xdg);
  else if (home && *home) snprintf(buf, size, "%s/.cache/nnc", home);
  else return NULL;
  return make_dirs(buf) == 0 ? buf : NULL;
}

const char *nnc_scratch_dir(const nnc_options *o, char *buf, size_t size) {
  if (nnc_cache_dir(o, buf, size)) return buf;
  const char *tmp = o->tmpdir;
  snprintf(buf, size, "%s", tmp && *tmp ? tmp : "/tmp");
  return buf;
}

void *nnc_cache_read(const nnc_options *o, const char *file, size_t *size) {
  char dir[2048], path[4096];
  if (!nnc_cache_enabled(o) || !nnc_cache_dir(o, dir, sizeof dir)) return NULL;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  void *data = NULL;
  long len = -1;
  if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
  if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)len + 1)) != NULL) {
    if (fread(data, 1, (size_t)len, f) != (size_t)len) {
      free(data);
      data = NULL;
    } else {
      ((char *)data)[len] = 0;
      *size = (size_t)len;
    }
  }
  fclose(f);
  return data;
}

int nnc_write_file_atomic(const char *path, const void *data, size_t size) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, size, f) == size;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

void nnc_cache_write(const nnc_options *o, const char *file, const void *data, size_t size) {
  char dir[2048], path[4096];
  if (!nnc_cache_enabled(o) || !nnc_cache_dir(o, dir, sizeof dir)) return;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  (void)nnc_write_file_atomic(path, data, size);
}
