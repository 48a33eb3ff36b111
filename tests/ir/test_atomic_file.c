/* ir/atomic_file.c: temporaries that writers killed with SIGKILL left behind
 * are removed by the next save to the same path (and only those), the
 * folder is synced after the rename, and a symlinked path stays a symlink
 * while its target gets the new content. */
#define _DEFAULT_SOURCE /* syscall() */

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/atomic_file.h"
#include "tests/ir/suites.h"
#include "tests/testutil.h"

static char *read_all(const char *path) { return nnc_test_read_file(path); }

static void write_ok(const char *path, const char *text) {
  nnc_status st = {0};
  ck_assert_msg(nnc_write_bytes_file(path, text, strlen(text), &st) == 0, "%s", st.msg);
}

static void make_dir(char *dir, size_t size) {
  snprintf(dir, size, "/tmp/nnc-atomic-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Entries of `dir` that start with `prefix` other than `except`. */
static int count_entries(const char *dir, const char *prefix, const char *except) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (!strncmp(e->d_name, prefix, strlen(prefix)) && strcmp(e->d_name, except)) n++;
  closedir(d);
  return n;
}

/* Writes half a file, tells the parent, and waits to be killed. */
static int write_then_wait(void *ctx, int fd, const char *tmp, nnc_status *st) {
  (void)tmp, (void)st;
  int ready = *(int *)ctx;
  static char block[1 << 16];
  if (write(fd, block, sizeof block) != (ssize_t)sizeof block || write(ready, "x", 1) != 1) _exit(3);
  for (;;) pause();
}

static pid_t killed_writer(const char *path) {
  int ready[2];
  ck_assert_int_eq(pipe(ready), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    nnc_status st = {0};
    nnc_write_file(path, write_then_wait, &ready[1], &st);
    _exit(2);
  }
  char c;
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  kill(pid, SIGKILL);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  close(ready[0]), close(ready[1]);
  return pid;
}

START_TEST(killed_writers_leave_nothing_after_next_save) {
  char dir[64], path[128], other[128], live_tmp[160], foreign[160];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/w.bin", dir);
  snprintf(other, sizeof other, "%s/x.bin", dir);
  write_ok(path, "old");
  pid_t dead = 0;
  for (int i = 0; i < 12; i++) dead = killed_writer(path);
  killed_writer(other);
  /* each kill left one, and each next save removed those before it */
  ck_assert_int_eq(count_entries(dir, "w.bin", "w.bin"), 1);
  /* A temporary whose writer still runs, and names that only look alike. */
  pid_t live = fork();
  ck_assert_int_ge(live, 0);
  if (live == 0) {
    for (;;) pause();
  }
  snprintf(live_tmp, sizeof live_tmp, "%s.nnc-tmp-%ld-0", path, (long)live);
  snprintf(foreign, sizeof foreign, "%s.nnc-tmp-%ld-0x", path, (long)dead);
  write_ok(live_tmp, "live");
  write_ok(foreign, "mine");
  write_ok(path, "new");
  char *text = read_all(path);
  ck_assert_str_eq(text, "new");
  free(text);
  ck_assert_int_eq(count_entries(dir, "w.bin", "w.bin"), 2);
  ck_assert_int_eq(access(live_tmp, F_OK), 0);
  ck_assert_int_eq(access(foreign, F_OK), 0);
  /* another path's leftovers wait for a save to that path */
  ck_assert_int_eq(count_entries(dir, "x.bin", "x.bin"), 1);
  write_ok(other, "x");
  ck_assert_int_eq(count_entries(dir, "x.bin", "x.bin"), 0);
  kill(live, SIGKILL);
  waitpid(live, NULL, 0);
  write_ok(path, "newer");
  ck_assert_int_eq(access(live_tmp, F_OK), -1);
  unlink(foreign), unlink(path), unlink(other), rmdir(dir);
}
END_TEST

static void expect_link(const char *link, const char *target_text_path, const char *text) {
  struct stat sb;
  ck_assert_int_eq(lstat(link, &sb), 0);
  ck_assert_msg(S_ISLNK(sb.st_mode), "%s is no longer a symlink", link);
  char *got = read_all(target_text_path);
  ck_assert_ptr_nonnull(got);
  ck_assert_str_eq(got, text);
  free(got);
}

START_TEST(symlink_stays_a_symlink) {
  char dir[64], sub[96], target[128], link[128], chain[128], dangling[128], fresh[128];
  make_dir(dir, sizeof dir);
  snprintf(sub, sizeof sub, "%s/real", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  snprintf(target, sizeof target, "%s/target.bin", sub);
  snprintf(link, sizeof link, "%s/link.bin", dir);
  snprintf(chain, sizeof chain, "%s/chain.bin", dir);
  snprintf(dangling, sizeof dangling, "%s/dangling.bin", dir);
  snprintf(fresh, sizeof fresh, "%s/fresh.bin", sub);
  write_ok(target, "old");
  /* relative links are read from the link's folder, not the working one */
  ck_assert_int_eq(symlink("real/target.bin", link), 0);
  ck_assert_int_eq(symlink("link.bin", chain), 0);
  ck_assert_int_eq(symlink("real/fresh.bin", dangling), 0);
  write_ok(link, "through link");
  expect_link(link, target, "through link");
  write_ok(chain, "through chain");
  expect_link(chain, target, "through chain");
  expect_link(link, target, "through chain");
  write_ok(dangling, "made");
  expect_link(dangling, fresh, "made");
  /* the temporaries lived in the target's folder and are gone */
  ck_assert_int_eq(count_entries(dir, "link.bin", "link.bin"), 0);
  ck_assert_int_eq(count_entries(sub, "target.bin", "target.bin"), 0);
  unlink(link), unlink(chain), unlink(dangling), unlink(target), unlink(fresh), rmdir(sub), rmdir(dir);
}
END_TEST

/* fsync is interposed for this binary: it notes a sync of the watched
 * folder and whether the new name was already in place then. */
static ino_t watched_dir;
static const char *watched_file;
static int dir_synced_after_rename;

int fsync(int fd) {
  struct stat sb;
  if (watched_file && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode) && sb.st_ino == watched_dir) {
    char *text = read_all(watched_file);
    if (text && !strcmp(text, "synced")) dir_synced_after_rename = 1;
    free(text);
  }
  return (int)syscall(SYS_fsync, fd);
}

START_TEST(folder_synced_after_rename) {
  char dir[64], path[128];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/f.bin", dir);
  struct stat sb;
  ck_assert_int_eq(stat(dir, &sb), 0);
  watched_dir = sb.st_ino, watched_file = path, dir_synced_after_rename = 0;
  write_ok(path, "synced");
  watched_file = NULL;
  ck_assert_msg(dir_synced_after_rename, "the folder was not synced after the rename");
  unlink(path), rmdir(dir);
}
END_TEST

TCase *nnc_tcase_atomic_file(void) {
  TCase *tc = tcase_create("atomic_file");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, killed_writers_leave_nothing_after_next_save);
  tcase_add_test(tc, symlink_stays_a_symlink);
  tcase_add_test(tc, folder_synced_after_rename);
  return tc;
}
