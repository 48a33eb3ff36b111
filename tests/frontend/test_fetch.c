/* Fetching data sets like Keras's get_file, against a loopback HTTP server
 * (Python's http.server on 127.0.0.1, a free port) serving files the test
 * writes: a good download, a corrupt one, a truncated one, a missing one,
 * and a server that is down; and Keras's mnist.npz as numpy writes it.
 * Sums come from coreutils' sha256sum, not from the code under test. */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frontend/datasets.h"
#include "tests/frontend/lua_harness.h"
#include "tests/frontend/suites.h"
#include "tests/testutil.h"

extern char **environ;

#define PYTHON "/usr/bin/python3"
#define ASSERT_HAS(text, needle) ck_assert_msg(strstr(text, needle), "\n  %s\nlacks\n  %s", text, needle)

static lua_State *L;
static char dir[256];
static pid_t server = -1;
static int port;

static const char *path_of(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, sizeof paths[0], "%s/%s", dir, name);
  return p;
}

/* Serves dir/www; /truncated/NAME promises more bytes than it sends. */
static const char server_py[] =
    "import functools, http.server, os, sys\n"
    "root, portfile = sys.argv[1], sys.argv[2]\n"
    "class H(http.server.SimpleHTTPRequestHandler):\n"
    "    def log_message(self, *a): pass\n"
    "    def do_GET(self):\n"
    "        if self.path.startswith('/truncated/'):\n"
    "            data = open(os.path.join(root, self.path[11:]), 'rb').read()\n"
    "            self.send_response(200)\n"
    "            self.send_header('Content-Length', str(len(data) + 1000))\n"
    "            self.end_headers()\n"
    "            self.wfile.write(data[:len(data) // 2])\n"
    "            self.wfile.flush()\n"
    "            self.close_connection = True\n"
    "            return\n"
    "        return super().do_GET()\n"
    "srv = http.server.HTTPServer(('127.0.0.1', 0), functools.partial(H, directory=root))\n"
    "open(portfile + '.tmp', 'w').write(str(srv.server_address[1]))\n"
    "os.rename(portfile + '.tmp', portfile)\n"
    "srv.serve_forever()\n";

static void write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
  fclose(f);
}

static void start_server(void) {
  write_file(path_of("server.py"), server_py, sizeof server_py - 1);
  char *argv[] = {PYTHON, (char *)path_of("server.py"), (char *)path_of("www"), (char *)path_of("port"), NULL};
  ck_assert_int_eq(posix_spawn(&server, PYTHON, NULL, NULL, argv, environ), 0);
  for (int i = 0; i < 400; i++) {
    char *text = nnc_test_read_file(path_of("port"));
    if (text) {
      port = atoi(text);
      free(text);
      return;
    }
    struct timespec ms = {0, 25 * 1000 * 1000};
    nanosleep(&ms, NULL);
  }
  ck_abort_msg("the loopback server did not start");
}

static void stop_server(void) {
  if (server <= 0) return;
  kill(server, SIGTERM);
  waitpid(server, NULL, 0);
  server = -1;
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/nnc-fetch-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  mkdir(path_of("www"), 0700);
  unsetenv("NNC_DATA");
  setenv("NNC_DATA_URL", "http://127.0.0.1:1/", 1);
  nnc_data_set_cache_dir(path_of("cache"));
  nnc_data_set_system_dir(path_of("system"));
  L = nnc_test_lua_new();
}

static void teardown(void) {
  stop_server();
  lua_close(L);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  unsetenv("NNC_DATA");
  unsetenv("NNC_DATA_URL");
  unsetenv("XDG_CACHE_HOME");
  nnc_data_set_cache_dir(NULL);
  nnc_data_set_system_dir(NULL);
}

/* 200,000 bytes that are not all alike. */
static void write_blob(const char *name, unsigned seed) {
  static unsigned char bytes[200000];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
  write_file(path_of(name), bytes, sizeof bytes);
}

/* sha256sum's digest of a file, in a static buffer. */
static const char *sha256_of(const char *path) {
  static char hex[65];
  char cmd[600];
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(fscanf(p, "%64s", hex), 1);
  pclose(p);
  return hex;
}

/* The names in a directory, space-separated ("" when empty or missing). */
static const char *listing(const char *path) {
  static char names[1024];
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | tr '\\n' ' '", path);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t n = fread(names, 1, sizeof names - 1, p);
  names[n] = 0;
  pclose(p);
  return names;
}

/* Runs data.get_file(name, url, {file_hash, cache_dir}) into global `path`. */
static const char *get_file(const char *name, const char *url, const char *hash) {
  char code[2048];
  snprintf(code, sizeof code, "path = data.get_file('%s', '%s', { file_hash = %s%s%s, cache_dir = '%s' })", name, url,
           hash ? "'" : "", hash ? hash : "nil", hash ? "'" : "", path_of("c"));
  return nnc_test_lua_run(L, code);
}

static void url_of(char *buf, size_t size, const char *path) {
  snprintf(buf, size, "http://127.0.0.1:%d/%s", port, path);
}

/* A good download through the command line: the progress bar on stderr, the
 * file in the cache, nothing else beside it; then served from the cache
 * with the server gone. */
START_TEST(test_good_download) {
  write_blob("www/blob.bin", 1);
  char hash[65], url[256], script[1024];
  snprintf(hash, sizeof hash, "%s", sha256_of(path_of("www/blob.bin")));
  start_server();
  url_of(url, sizeof url, "blob.bin");
  setenv("XDG_CACHE_HOME", path_of("xdg"), 1);
  snprintf(script, sizeof script, "print(data.get_file('blob.bin', '%s', { file_hash = '%s' }))", url, hash);
  char *out, *err;
  int rc = nnc_test_run_cli(nnc_test_write_temp("get.lua", script), &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  char want[600];
  snprintf(want, sizeof want, "%s\n", path_of("xdg/nnc/datasets/blob.bin"));
  ck_assert_str_eq(out, want);
  snprintf(want, sizeof want, "Downloading data from %s\n", url);
  ASSERT_HAS(err, want);
  ASSERT_HAS(err, "200000/200000 [==============================]");
  free(out);
  free(err);
  ck_assert_str_eq(sha256_of(path_of("xdg/nnc/datasets/blob.bin")), hash);
  ck_assert_str_eq(listing(path_of("xdg/nnc/datasets")), "blob.bin ");

  ck_assert_ptr_null(get_file("blob.bin", url, hash));
  ck_assert_str_eq(sha256_of(path_of("c/datasets/blob.bin")), hash);
  stop_server();
  const char *again = get_file("blob.bin", url, hash);
  ck_assert_msg(!again, "a cached file needs no server: %s", again);
  ck_assert_str_eq(nnc_test_lua_str(L, "path"), path_of("c/datasets/blob.bin"));
}
END_TEST

/* A cached file that no longer matches its sum is fetched again, as Keras does. */
START_TEST(test_stale_cache_refetched) {
  write_blob("www/blob.bin", 2);
  char hash[65], url[256];
  snprintf(hash, sizeof hash, "%s", sha256_of(path_of("www/blob.bin")));
  mkdir(path_of("c"), 0700);
  mkdir(path_of("c/datasets"), 0700);
  write_blob("c/datasets/blob.bin", 3);
  start_server();
  url_of(url, sizeof url, "blob.bin");
  const char *err = get_file("blob.bin", url, hash);
  ck_assert_msg(!err, "%s", err);
  ck_assert_str_eq(sha256_of(path_of("c/datasets/blob.bin")), hash);
}
END_TEST

START_TEST(test_corrupt_download) {
  write_blob("www/blob.bin", 4);
  write_blob("www/other.bin", 5);
  char hash[65], bad[65], url[256];
  snprintf(hash, sizeof hash, "%s", sha256_of(path_of("www/blob.bin")));
  snprintf(bad, sizeof bad, "%s", sha256_of(path_of("www/other.bin")));
  start_server();
  url_of(url, sizeof url, "other.bin");
  const char *err = get_file("blob.bin", url, hash);
  ck_assert_ptr_nonnull(err);
  char want[512];
  snprintf(want, sizeof want, "the download (200000 bytes) has SHA-256 %s, but the published sum is %s", bad, hash);
  ASSERT_HAS(err, want);
  ASSERT_HAS(err, url);
  ASSERT_HAS(err, "Place the file there by hand (SHA-256 ");
  ck_assert_str_eq(listing(path_of("c/datasets")), "");
}
END_TEST

START_TEST(test_truncated_download) {
  write_blob("www/blob.bin", 6);
  char url[256];
  start_server();
  url_of(url, sizeof url, "truncated/blob.bin");
  const char *err = get_file("blob.bin", url, NULL);
  ck_assert_ptr_nonnull(err);
  ASSERT_HAS(err, "the transfer was cut short after 100000 bytes");
  ck_assert_str_eq(listing(path_of("c/datasets")), "");
}
END_TEST

START_TEST(test_missing_on_server) {
  char url[256];
  start_server();
  url_of(url, sizeof url, "nothere.bin");
  const char *err = get_file("nothere.bin", url, NULL);
  ck_assert_ptr_nonnull(err);
  ASSERT_HAS(err, "the server answered HTTP 404");
  ck_assert_str_eq(listing(path_of("c/datasets")), "");
}
END_TEST

START_TEST(test_server_down) {
  char url[256];
  start_server();
  url_of(url, sizeof url, "blob.bin");
  stop_server();
  const char *err = get_file("blob.bin", url, NULL);
  ck_assert_ptr_nonnull(err);
  ASSERT_HAS(err, "Couldn't connect to server");
  ck_assert_str_eq(listing(path_of("c/datasets")), "");
}
END_TEST

START_TEST(test_get_file_options) {
  NNC_LUA_FAILS(L, "data.get_file('a', 'http://x/a', { file_hahs = 'x' })",
                "get_file got an unknown option 'file_hahs' (did you mean 'file_hash'?)");
  NNC_LUA_FAILS(L, "data.get_file('a', 'http://x/a', { file_hash = 'abc' })",
                "file_hash must be a SHA-256 of 64 hex digits, got 'abc'");
  NNC_LUA_FAILS(L, "data.get_file('a', 'http://x/a', { hash_algorithm = 'md5' })", "hash_algorithm 'md5' is not supported");
}
END_TEST

/* Runs python with numpy on a snippet; `d` is the test directory. */
static void python(const char *code) {
  char path[600];
  snprintf(path, sizeof path, "%s", path_of("make.py"));
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "import numpy as np\nd = '%s'\n%s\n", dir, code);
  fclose(f);
  char cmd[700];
  snprintf(cmd, sizeof cmd, PYTHON " '%s'", path);
  ck_assert_int_eq(system(cmd), 0);
}

/* Keras's mnist.npz layout, small: x as (i*7 + r*28 + c) % 256. */
static const char make_npz[] =
    "def part(n, k):\n"
    "    i = np.arange(n)[:, None, None]; r = np.arange(28)[None, :, None]; c = np.arange(28)[None, None, :]\n"
    "    return ((i * 7 + r * 28 + c + k) % 256).astype(np.uint8), (np.arange(n) * 3 % 10).astype(np.uint8)\n"
    "xa, ya = part(5, 0); xb, yb = part(3, 100)\n";

START_TEST(test_mnist_npz) {
  mkdir(path_of("data"), 0700);
  char code[1024];
  snprintf(code, sizeof code, "%snp.savez_compressed(d + '/data/mnist.npz', x_train=xa, y_train=ya, x_test=xb, y_test=yb)",
           make_npz);
  python(code);
  setenv("NNC_DATA", path_of("data"), 1);
  NNC_LUA_OK(L, "x_train, y_train, x_test, y_test = datasets.mnist.load_data()");
  ck_assert_str_eq(nnc_test_lua_str(L, "x_train.dtype .. table.concat(x_train.shape, ',')"), "u85,28,28");
  ck_assert_str_eq(nnc_test_lua_str(L, "y_train"), "tensor(i32[5]) {0, 3, 6, 9, 2}");
  ck_assert_str_eq(nnc_test_lua_str(L, "y_test"), "tensor(i32[3]) {0, 3, 6}");
  NNC_LUA_OK(L, "for i = 1, 5 do for r = 1, 28 do for c = 1, 28 do "
                "  assert(x_train[i][r][c] == ((i - 1) * 7 + (r - 1) * 28 + (c - 1)) % 256, 'x_train') end end end "
                "for i = 1, 3 do assert(x_test[i][2][3] == ((i - 1) * 7 + 28 + 2 + 100) % 256, 'x_test') end");
  /* The convenience form reads the same file. */
  NNC_LUA_OK(L, "train, test = data.mnist()");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(train.x.shape, ',')"), "5,28,28,1");
  ck_assert(nnc_test_lua_num(L, "train.x[2][1][1][1]") == (double)(7.0f / 255.0f));
  /* Stored (not deflated) members and int64 labels read the same. */
  snprintf(code, sizeof code,
           "%snp.savez(d + '/data/mnist.npz', x_train=xa, y_train=ya.astype(np.int64), x_test=xb, y_test=yb)",
           make_npz);
  python(code);
  NNC_LUA_OK(L, "x2, y2 = datasets.mnist.load_data() assert((x2 - x_train):abs():max() == 0)");
  ck_assert_str_eq(nnc_test_lua_str(L, "y2"), "tensor(i32[5]) {0, 3, 6, 9, 2}");
  /* Wrong contents name the file and the array. */
  python("np.savez(d + '/data/mnist.npz', x_train=np.zeros((2, 3)), y_train=np.zeros(2), x_test=np.zeros(1), "
         "y_test=np.zeros(1))");
  NNC_LUA_FAILS(L, "datasets.mnist.load_data()", "x_train.npy: unsupported array {'descr': '<f8'");
  python("np.savez(d + '/data/mnist.npz', x_train=np.zeros((2, 3), np.uint8))");
  NNC_LUA_FAILS(L, "datasets.mnist.load_data()", "mnist.npz: the archive has no array named y_train");
  write_file(path_of("data/mnist.npz"), "not a zip", 9);
  NNC_LUA_FAILS(L, "datasets.mnist.load_data()", "mnist.npz: not a readable .npz (zip) file");
}
END_TEST

/* load_data fetches from $NNC_DATA_URL into the cache; a file that is not
 * Keras's (a different sum) is refused and leaves nothing behind. */
START_TEST(test_load_data_checks_keras_sums) {
  char code[1024];
  snprintf(code, sizeof code, "%snp.savez_compressed(d + '/www/mnist.npz', x_train=xa, y_train=ya, x_test=xb, y_test=yb)",
           make_npz);
  python(code);
  char hash[65], base[128], want[1024];
  snprintf(hash, sizeof hash, "%s", sha256_of(path_of("www/mnist.npz")));
  start_server();
  snprintf(base, sizeof base, "http://127.0.0.1:%d/", port);
  setenv("NNC_DATA_URL", base, 1);
  const char *err = nnc_test_lua_run(L, "x_train, y_train, x_test, y_test = datasets.mnist.load_data()");
  ck_assert_ptr_nonnull(err);
  ASSERT_HAS(err, "datasets.mnist.load_data: cannot find MNIST");
  snprintf(want, sizeof want,
           "Downloading %smnist.npz failed: the download (%lld bytes) has SHA-256 %s, but the published sum is "
           "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
           base, (long long)0, hash);
  /* The size is the fixture's; compare around it. */
  ASSERT_HAS(err, strstr(want, "has SHA-256"));
  snprintf(want, sizeof want, "Downloading %smnist.npz failed: the download (", base);
  ASSERT_HAS(err, want);
  snprintf(want, sizeof want, "into %s/datasets/mnist, or into $NNC_DATA/mnist.", path_of("cache"));
  ASSERT_HAS(err, want);
  ck_assert_str_eq(listing(path_of("cache/datasets/mnist")), "");
  /* Fashion-MNIST's four files: the first that is missing on the server stops it. */
  err = nnc_test_lua_run(L, "datasets.fashion_mnist.load_data()");
  ck_assert_ptr_nonnull(err);
  snprintf(want, sizeof want, "Downloading %strain-images-idx3-ubyte.gz failed: the server answered HTTP 404", base);
  ASSERT_HAS(err, want);
  ASSERT_HAS(err, "Debian's package dataset-fashion-mnist provides Fashion-MNIST");
  ASSERT_HAS(err, "train-labels-idx1-ubyte.gz (SHA-256 a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845)");
  ck_assert_str_eq(listing(path_of("cache/datasets/fashion-mnist")), "");
}
END_TEST

TCase *nnc_fetch_tcase(void) {
  TCase *tc = tcase_create("fetch");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_good_download);
  tcase_add_test(tc, test_stale_cache_refetched);
  tcase_add_test(tc, test_corrupt_download);
  tcase_add_test(tc, test_truncated_download);
  tcase_add_test(tc, test_missing_on_server);
  tcase_add_test(tc, test_server_down);
  tcase_add_test(tc, test_get_file_options);
  tcase_add_test(tc, test_mnist_npz);
  tcase_add_test(tc, test_load_data_checks_keras_sums);
  return tc;
}
