#include "ir/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exclusive creation never clobbers another writer's temporary; the mode is
 * the usual 0666 less the umask, as for any file the user makes. */
static int open_temp(const char *path, char *tmp, size_t size) {
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(tmp, size, "%s.tmp-%ld-%d", path, (long)getpid(), attempt);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* fsync before rename: otherwise a crash can leave the new name pointing at
 * an empty file on common filesystems, losing the old file too. */
int nnc_write_file(const char *path, nnc_file_writer write, void *ctx, nnc_status *st) {
  size_t size = strlen(path) + 48;
  char *tmp = malloc(size);
  if (!tmp) return nnc_fail(st, "cannot write %s: %s", path, strerror(ENOMEM));
  int fd = open_temp(path, tmp, size);
  if (fd < 0) {
    int err = errno;
    free(tmp);
    return nnc_fail(st, "cannot write %s: %s", path, strerror(err));
  }
  int rc = write(ctx, fd, tmp, st), err = 0;
  if (rc == 0 && fsync(fd)) err = errno;
  if (close(fd) && rc == 0 && !err) err = errno;
  if (rc == 0 && !err && rename(tmp, path)) err = errno;
  if (rc || err) unlink(tmp);
  free(tmp);
  if (rc) return nnc_fail_prefix(st, "cannot write %s: ", path);
  return err ? nnc_fail(st, "cannot write %s: %s", path, strerror(err)) : 0;
}

typedef struct text_ctx {
  nnc_text_writer write;
  void *ctx;
} text_ctx;

static int write_text(void *ctx, int fd, const char *tmp, nnc_status *st) {
  (void)tmp;
  text_ctx *t = ctx;
  int dup_fd = dup(fd);
  FILE *f = dup_fd < 0 ? NULL : fdopen(dup_fd, "w");
  if (!f) {
    if (dup_fd >= 0) close(dup_fd);
    return nnc_fail(st, "%s", strerror(errno));
  }
  int rc = t->write(t->ctx, f, st);
  int failed = ferror(f);
  if (fclose(f) || failed) return rc ? rc : nnc_fail(st, "%s", strerror(errno ? errno : EIO));
  return rc;
}

int nnc_write_text_file(const char *path, nnc_text_writer write, void *ctx, nnc_status *st) {
  text_ctx t = {write, ctx};
  return nnc_write_file(path, write_text, &t, st);
}

typedef struct bytes_ctx {
  const void *data;
  size_t len;
} bytes_ctx;

static int write_bytes(void *ctx, int fd, const char *tmp, nnc_status *st) {
  (void)tmp;
  const bytes_ctx *b = ctx;
  const char *p = b->data;
  size_t left = b->len;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return nnc_fail(st, "%s", strerror(n < 0 ? errno : EIO));
    p += n, left -= (size_t)n;
  }
  return 0;
}

int nnc_write_bytes_file(const char *path, const void *data, size_t len, nnc_status *st) {
  bytes_ctx b = {data, len};
  return nnc_write_file(path, write_bytes, &b, st);
}
