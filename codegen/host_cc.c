/* Running the host C compiler for cuda-emu (codegen/host_cc.h). */
#include "codegen/host_cc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cache.h"
#include "ir/strbuf.h"

/* Strict C11 keeps float expressions as written (no contraction into fused
 * multiply-adds), so the emulation rounds as the interpreter does. */
static const char *const flags[] = {"-std=c11", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-w"};
#define NFLAGS (sizeof flags / sizeof flags[0])
#define MAX_WORDS 16

typedef struct compiler {
  char text[512]; /* the words, NUL-separated */
  char *argv[MAX_WORDS];
  int argc;
} compiler;

/* o->cc ($NNC_CC, else $CC) or cc, split at spaces ("ccache gcc" works). */
static void find_compiler(const nnc_options *o, compiler *cc) {
  const char *s = o->cc && *o->cc ? o->cc : "cc";
  snprintf(cc->text, sizeof cc->text, "%s", s);
  cc->argc = 0;
  for (char *p = strtok(cc->text, " \t"); p && cc->argc < MAX_WORDS - 1; p = strtok(NULL, " \t")) cc->argv[cc->argc++] = p;
  cc->argv[cc->argc] = NULL;
}

/* Runs argv with stdout and stderr to log_path; the exit status, or -1. */
static int run(char *const argv[], const char *log_path) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    if (null >= 0) dup2(null, 0);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len < 2) {
      char *more = realloc(buf, cap *= 2);
      if (!more) free(buf);
      buf = more;
    }
  }
  fclose(f);
  if (buf) buf[len] = 0;
  return buf;
}

/* The compiler's first line of --version, part of every cache key. */
static int compiler_version(compiler *cc, const char *dir, char *out, size_t size) {
  char log[4200];
  snprintf(log, sizeof log, "%s/cc-version.%ld.txt", dir, (long)getpid());
  char *argv[MAX_WORDS + 1];
  memcpy(argv, cc->argv, sizeof(char *) * (size_t)cc->argc);
  argv[cc->argc] = "--version";
  argv[cc->argc + 1] = NULL;
  int rc = run(argv, log);
  char *text = read_text(log);
  remove(log);
  if (rc != 0 || !text) {
    free(text);
    return -1;
  }
  text[strcspn(text, "\n")] = 0;
  snprintf(out, size, "%s", text);
  free(text);
  return 0;
}

/* The compiler's version, asked once per compiler named; NULL with a
 * message when it does not run. */
static const char *known_version(compiler *cc, const char *dir, nnc_status *st) {
  static char version[512], of[512];
  char named[512] = "";
  for (int i = 0; i < cc->argc; i++) snprintf(named + strlen(named), sizeof named - strlen(named), "%s ", cc->argv[i]);
  if (version[0] && !strcmp(of, named)) return version;
  version[0] = 0;
  if (compiler_version(cc, dir, version, sizeof version)) {
    version[0] = 0;
    nnc_fail(st, "cuda-emu needs a host C compiler, and '%s' does not run (set NNC_CC or CC)", cc->argv[0]);
    return NULL;
  }
  snprintf(of, sizeof of, "%s", named);
  return version;
}

int nnc_host_cc_probe(const nnc_options *o, nnc_status *st) {
  compiler cc;
  find_compiler(o, &cc);
  if (cc.argc == 0) return nnc_fail(st, "no host C compiler: $NNC_CC and $CC are blank");
  char dir[2048];
  return known_version(&cc, nnc_scratch_dir(o, dir, sizeof dir), st) ? 0 : -1;
}

/* At most `lines` lines of s, for a message. */
static void first_lines(const char *s, int lines, char *out, size_t size) {
  const char *end = s;
  for (int i = 0; i < lines && *end; i++) {
    end = strchr(end, '\n');
    if (!end) {
      end = s + strlen(s);
      break;
    }
    end++;
  }
  snprintf(out, size, "%.*s%s", (int)(end - s), s, *end ? "..." : "");
}

static int write_text(const char *path, const char *text) {
  return nnc_write_file_atomic(path, text, strlen(text));
}

int nnc_host_compile(const nnc_options *o, const char *what, const char *source, nnc_host_so *out,
                     nnc_status *st) {
  memset(out, 0, sizeof *out);
  compiler cc;
  find_compiler(o, &cc);
  if (cc.argc == 0) return nnc_fail(st, "no host C compiler: $NNC_CC and $CC are blank");

  /* Where to build: the cache, or a private temporary folder. */
  char dir[2048];
  int cached = nnc_cache_enabled(o) && nnc_cache_dir(o, dir, sizeof dir);
  if (!cached) {
    const char *tmp = o->tmpdir;
    snprintf(out->tmpdir, sizeof out->tmpdir, "%s/nnc-emu-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(out->tmpdir)) {
      out->tmpdir[0] = 0;
      return nnc_fail(st, "cannot make a temporary folder for cuda-emu: %s", strerror(errno));
    }
    snprintf(dir, sizeof dir, "%s", out->tmpdir);
  }

  const char *version = known_version(&cc, dir, st);
  if (!version) return nnc_host_so_cleanup(out), -1;

  nnc_hasher h;
  char key[33];
  nnc_hasher_init(&h);
  nnc_hasher_str(&h, "cuda-emu shared object, v1");
  nnc_hasher_str(&h, version);
  for (int i = 0; i < cc.argc; i++) nnc_hasher_str(&h, cc.argv[i]);
  for (size_t i = 0; i < NFLAGS; i++) nnc_hasher_str(&h, flags[i]);
  nnc_hasher_str(&h, source);
  nnc_hasher_hex(&h, key);
  snprintf(out->path, sizeof out->path, "%s/emu-%s.so", dir, key);
  if (cached && access(out->path, R_OK) == 0) return 0;

  char src[4200], obj[4300], log[4300];
  snprintf(src, sizeof src, "%s/emu-%s.%ld.c", dir, key, (long)getpid());
  snprintf(obj, sizeof obj, "%s.so", src);
  snprintf(log, sizeof log, "%s.log", src);
  if (write_text(src, source)) {
    nnc_host_so_cleanup(out);
    return nnc_fail(st, "cannot write %s: %s", src, strerror(errno));
  }
  char *argv[MAX_WORDS + NFLAGS + 8];
  int argc = 0;
  for (int i = 0; i < cc.argc; i++) argv[argc++] = cc.argv[i];
  for (size_t i = 0; i < NFLAGS; i++) argv[argc++] = (char *)flags[i];
  argv[argc++] = "-o";
  argv[argc++] = obj;
  argv[argc++] = src;
  argv[argc++] = "-lm";
  argv[argc] = NULL;
  int rc = run(argv, log);
  if (rc == 0 && rename(obj, out->path) == 0) {
    remove(src);
    remove(log);
    return 0;
  }
  /* Keep the source where a person can find it, named after the unit. */
  char *errors = read_text(log), shown[700], keep[2300], scratch[2048];
  first_lines(errors ? errors : "", 8, shown, sizeof shown);
  snprintf(keep, sizeof keep, "%s/%s.c", nnc_scratch_dir(o, scratch, sizeof scratch), what);
  int kept = write_text(keep, source) == 0;
  free(errors);
  remove(src), remove(obj), remove(log);
  nnc_host_so_cleanup(out);
  nnc_strbuf msg;
  nnc_strbuf_init(&msg);
  nnc_strbuf_appendf(&msg, "the host C compiler could not build %s for cuda-emu (", what);
  for (int i = 0; i < argc; i++) nnc_strbuf_appendf(&msg, "%s%s", i ? " " : "", argv[i] == src ? "SOURCE" : argv[i]);
  nnc_strbuf_appendf(&msg, "), exit status %d:\n%s\n", rc, shown);
  if (kept) nnc_strbuf_appendf(&msg, "the source is in %s", keep);
  else nnc_strbuf_append(&msg, "the source could not be saved");
  nnc_fail(st, "%s", nnc_strbuf_str(&msg));
  nnc_strbuf_free(&msg);
  return -1;
}

void nnc_host_so_cleanup(nnc_host_so *so) {
  if (!so->tmpdir[0]) return;
  char path[4300];
  /* The folder holds at most the object and the build's leftovers. */
  remove(so->path);
  snprintf(path, sizeof path, "%s", so->tmpdir);
  rmdir(path);
  so->tmpdir[0] = 0;
}
