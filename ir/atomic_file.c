#define _XOPEN_SOURCE 700 /* realpath */

#include "ir/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temporaries are named PATH.nnc-tmp-<pid>-<n>: the pid says whose it is,
 * so a later save to PATH can tell one left by a killed writer (its pid is
 * gone) from one a live writer is still filling. */
#define TMP_TAG ".nnc-tmp-"

/* Writing through a symlink writes its target, as fopen does: the link
 * stays a link. Returns the path to rename onto (malloc'd): PATH itself, or
 * the final target of a chain of links, made absolute by realpath of its
 * folder so that a relative link is read from the link's own folder. A
 * dangling link gives its (not yet existing) target. NULL with errno set
 * when the chain is too long or a folder does not exist. */
static char *resolve_target(const char *path) {
  char *cur = strdup(path);
  for (int hops = 0; cur; hops++) {
    struct stat sb;
    if (lstat(cur, &sb) || !S_ISLNK(sb.st_mode)) return cur;
    if (hops == 40) {
      free(cur);
      errno = ELOOP;
      return NULL;
    }
    char *link = realpath(cur, NULL);
    if (link) {
      free(cur);
      return link;
    }
    char target[PATH_MAX];
    ssize_t n = readlink(cur, target, sizeof target - 1);
    if (n < 0) break;
    target[n] = 0;
    const char *slash = strrchr(cur, '/');
    size_t dir_len = target[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
    char *next = malloc(dir_len + (size_t)n + 1);
    if (next) memcpy(next, cur, dir_len), memcpy(next + dir_len, target, (size_t)n + 1);
    free(cur);
    cur = next;
  }
  int err = errno;
  free(cur);
  errno = err ? err : ENOMEM;
  return NULL;
}

/* The folder holding `path` ("." for a bare name), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* Whether `name` is base TMP_TAG <pid>-<n> for a pid that no longer runs
 * (and is not this process, whose other threads may be writing). */
static int is_stale_temp(const char *name, const char *base, size_t base_len) {
  if (strncmp(name, base, base_len) || strncmp(name + base_len, TMP_TAG, strlen(TMP_TAG))) return 0;
  const char *p = name + base_len + strlen(TMP_TAG);
  char *end;
  errno = 0;
  long pid = strtol(p, &end, 10);
  if (end == p || *end != '-' || errno || pid <= 0 || pid > INT_MAX) return 0;
  p = end + 1;
  strtol(p, &end, 10);
  if (end == p || *end) return 0;
  return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes the temporaries that killed writers left beside `target`. Best
 * effort: a folder that cannot be listed only means nothing is removed. */
static void remove_stale_temps(const char *target) {
  char *dir = dir_of(target);
  DIR *d = dir ? opendir(dir) : NULL;
  if (d) {
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t base_len = strlen(base);
    for (struct dirent *e; (e = readdir(d));) {
      if (!is_stale_temp(e->d_name, base, base_len)) continue;
      char *stale = malloc(strlen(dir) + strlen(e->d_name) + 2);
      if (!stale) break;
      sprintf(stale, "%s/%s", dir, e->d_name);
      unlink(stale);
      free(stale);
    }
    closedir(d);
  }
  free(dir);
}

/* Exclusive creation never clobbers another writer's temporary; the mode is
 * the usual 0666 less the umask, as for any file the user makes. */
static int open_temp(const char *path, char *tmp, size_t size) {
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(tmp, size, "%s" TMP_TAG "%ld-%d", path, (long)getpid(), attempt);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* The rename is only durable once the folder's entry is on disk; a
 * filesystem that cannot sync folders (EINVAL) has nothing more to give. */
static int sync_dir_of(const char *path) {
  char *dir = dir_of(path);
  if (!dir) return ENOMEM;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;
  free(dir);
  if (fd < 0) return errno;
  if (fsync(fd) && errno != EINVAL) err = errno;
  close(fd);
  return err;
}

/* fsync before rename: otherwise a crash can leave the new name pointing at
 * an empty file on common filesystems, losing the old file too. */
static int write_at(const char *path, const char *target, nnc_file_writer write, void *ctx, nnc_status *st) {
  remove_stale_temps(target);
  size_t size = strlen(target) + sizeof TMP_TAG + 32;
  char *tmp = malloc(size);
  if (!tmp) return nnc_fail(st, "cannot write %s: %s", path, strerror(ENOMEM));
  int fd = open_temp(target, tmp, size);
  if (fd < 0) {
    int err = errno;
    free(tmp);
    return nnc_fail(st, "cannot write %s: %s", path, strerror(err));
  }
  int rc = write(ctx, fd, tmp, st), err = 0;
  if (rc == 0 && fsync(fd)) err = errno;
  if (close(fd) && rc == 0 && !err) err = errno;
  if (rc == 0 && !err && rename(tmp, target)) err = errno;
  if (rc || err) unlink(tmp);
  else err = sync_dir_of(target);
  free(tmp);
  if (rc) return nnc_fail_prefix(st, "cannot write %s: ", path);
  return err ? nnc_fail(st, "cannot write %s: %s", path, strerror(err)) : 0;
}

int nnc_write_file(const char *path, nnc_file_writer write, void *ctx, nnc_status *st) {
  char *target = resolve_target(path);
  if (!target) return nnc_fail(st, "cannot write %s: %s", path, strerror(errno));
  int rc = write_at(path, target, write, ctx, st);
  free(target);
  return rc;
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

int nnc_make_dirs(const char *dir, nnc_status *st) {
  char *path = strdup(dir);
  if (!path) return nnc_fail(st, "cannot make the folder %s: %s", dir, strerror(ENOMEM));
  int rc = 0;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p) continue;
    char saved = *p;
    *p = 0;
    struct stat sb;
    if (mkdir(path, 0777) && (errno != EEXIST || stat(path, &sb) || !S_ISDIR(sb.st_mode))) {
      rc = nnc_fail(st, "cannot make the folder %s: %s", path, strerror(errno == EEXIST ? ENOTDIR : errno));
      break;
    }
    if (!(*p = saved)) break;
  }
  free(path);
  return rc;
}
