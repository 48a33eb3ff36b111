/* The string builder: growth, formatting and handing the text over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/strbuf.h"
#include "tests/ir/suites.h"

START_TEST(test_strbuf_empty) {
  nnc_strbuf b;
  nnc_strbuf_init(&b);
  ck_assert_str_eq(nnc_strbuf_str(&b), "");
  char *text = nnc_strbuf_take(&b);
  ck_assert_str_eq(text, "");
  ck_assert_ptr_null(b.data);
  free(text);
}
END_TEST

START_TEST(test_strbuf_append_and_grow) {
  nnc_strbuf b;
  nnc_strbuf_init(&b);
  for (int i = 0; i < 1000; i++) nnc_strbuf_appendf(&b, "%d,", i % 10);
  nnc_strbuf_append(&b, "end");
  nnc_strbuf_appendc(&b, '!');
  nnc_strbuf_appendn(&b, "xyz", 2);
  ck_assert_uint_eq(b.len, 2000 + 3 + 1 + 2);
  ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
  ck_assert_str_eq(b.data + 2000, "end!xy");
  nnc_strbuf_free(&b);
  ck_assert_uint_eq(b.len, 0);
  nnc_strbuf_append(&b, "reused");
  ck_assert_str_eq(nnc_strbuf_str(&b), "reused");
  nnc_strbuf_free(&b);
}
END_TEST

START_TEST(test_strbuf_appendf_long) {
  /* Longer than any first guess, so the measured second pass must fit it. */
  char big[5000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  nnc_strbuf b;
  nnc_strbuf_init(&b);
  nnc_strbuf_appendf(&b, "[%s|%.3f]", big, 0.5);
  ck_assert_uint_eq(b.len, 1 + 4999 + 7);
  ck_assert_str_eq(b.data + 5000, "|0.500]");
  char *text = nnc_strbuf_take(&b);
  ck_assert_uint_eq(strlen(text), 5007);
  ck_assert_uint_eq(b.len, 0);
  free(text);
}
END_TEST

/* A string that outgrows the memory it may have: the process ends with
 * "out of memory" and status 1, not SIGABRT. Its memory is limited with
 * RLIMIT_AS in a child, which ASan's reserved shadow memory defeats, so
 * the sanitizer trees skip it. */
START_TEST(test_strbuf_out_of_memory_exits) {
#if defined(__SANITIZE_ADDRESS__)
  return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return;
#endif
#endif
  char path[] = "/tmp/nnc-oom-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct rlimit lim = {256u << 20, 256u << 20};
    setrlimit(RLIMIT_AS, &lim);
    dup2(fd, 2);
    nnc_strbuf b;
    nnc_strbuf_init(&b);
    static char chunk[1 << 20];
    memset(chunk, 'x', sizeof chunk - 1);
    for (int i = 0; i < 4096; i++) nnc_strbuf_append(&b, chunk);
    _exit(3); /* 4 GiB fitted in 256 MiB: the limit did not hold */
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status), "ended by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  ck_assert_int_eq(WEXITSTATUS(status), 1);
  char said[256] = "";
  ssize_t n = pread(fd, said, sizeof said - 1, 0);
  close(fd);
  unlink(path);
  ck_assert_int_gt(n, 0);
  ck_assert_str_eq(said, "nnc: error: out of memory (growing a string)\n");
}
END_TEST

TCase *nnc_tcase_strbuf(void) {
  TCase *tc = tcase_create("strbuf");
  tcase_add_test(tc, test_strbuf_empty);
  tcase_add_test(tc, test_strbuf_append_and_grow);
  tcase_add_test(tc, test_strbuf_appendf_long);
  tcase_add_test(tc, test_strbuf_out_of_memory_exits);
  return tc;
}
