/* The data module: IDX files written here with known contents (gzip and
 * plain, good and broken), the data set search, one-hot labels, and the real
 * Fashion-MNIST when it is installed. */
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "frontend/datasets.h"
#include "frontend/tensor.h"
#include "tests/frontend/lua_harness.h"
#include "tests/frontend/suites.h"
#include "tests/testutil.h"

static lua_State *L;
static char dir[256];
static const char *path_of(const char *name);

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/nnc-data-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  unsetenv("NNC_DATA");
  /* Nothing here may download: a missing data set meets a refused port. */
  setenv("NNC_DATA_URL", "http://127.0.0.1:1/", 1);
  nnc_data_set_cache_dir(path_of("cache"));
  L = nnc_test_lua_new();
}

static void teardown(void) {
  lua_close(L);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  unsetenv("NNC_DATA");
  unsetenv("NNC_DATA_URL");
  nnc_data_set_system_dir(NULL);
  nnc_data_set_cache_dir(NULL);
}

/* dir/name, in a rotating buffer. */
static const char *path_of(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, sizeof paths[0], "%s/%s", dir, name);
  return p;
}

static void write_raw(const char *name, const void *bytes, size_t n) {
  FILE *f = fopen(path_of(name), "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
  fclose(f);
}

/* Writes the bytes, gzip-compressed when the name ends in .gz. */
static void write_bytes(const char *name, const void *bytes, size_t n) {
  size_t len = strlen(name);
  if (len < 3 || strcmp(name + len - 3, ".gz")) {
    write_raw(name, bytes, n);
    return;
  }
  gzFile gz = gzopen(path_of(name), "wb");
  ck_assert_ptr_nonnull(gz);
  ck_assert_int_eq(gzwrite(gz, bytes, (unsigned)n), (int)n);
  ck_assert_int_eq(gzclose(gz), Z_OK);
}

/* An IDX file: header for `type` and dims, then `data` (n bytes) as given,
 * which lets a test write less or more than the dims say. */
static void write_idx(const char *name, int type, int rank, const uint32_t *dims, const void *data,
                      size_t n) {
  unsigned char buf[4096] = {0, 0, (unsigned char)type, (unsigned char)rank};
  size_t at = 4;
  for (int i = 0; i < rank; i++, at += 4) {
    buf[at] = (unsigned char)(dims[i] >> 24);
    buf[at + 1] = (unsigned char)(dims[i] >> 16);
    buf[at + 2] = (unsigned char)(dims[i] >> 8);
    buf[at + 3] = (unsigned char)dims[i];
  }
  ck_assert_uint_le(at + n, sizeof buf);
  memcpy(buf + at, data, n);
  write_bytes(name, buf, at + n);
}

/* Runs `data.idx(dir/name)` into global `t`. */
static const char *load(const char *name) {
  char code[640];
  snprintf(code, sizeof code, "t = data.idx('%s')", path_of(name));
  return nnc_test_lua_run(L, code);
}

static const char *load_error(const char *name) {
  const char *err = load(name);
  ck_assert_msg(err, "loading %s should fail", name);
  ck_assert_msg(strstr(err, path_of(name)), "the error names the file: %s", err);
  return err;
}

#define ASSERT_HAS(text, needle) ck_assert_msg(strstr(text, needle), "\n  %s\nlacks\n  %s", text, needle)

START_TEST(test_idx_ubyte_plain_and_gz) {
  const unsigned char pixels[6] = {0, 1, 2, 253, 254, 255};
  const uint32_t dims[3] = {1, 2, 3};
  write_idx("images.idx", 0x08, 3, dims, pixels, sizeof pixels);
  write_idx("images.idx.gz", 0x08, 3, dims, pixels, sizeof pixels);
  for (int gz = 0; gz < 2; gz++) {
    const char *err = load(gz ? "images.idx.gz" : "images.idx");
    ck_assert_msg(!err, "%s", err);
    ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(f32[1,2,3]) {{{0, 1, 2}, {253, 254, 255}}}");
  }
}
END_TEST

START_TEST(test_idx_labels_are_i32) {
  const unsigned char labels[3] = {9, 0, 255};
  const uint32_t n3 = 3, n2 = 2, two_by_one[2] = {3, 1};
  write_idx("labels.gz", 0x08, 1, &n3, labels, sizeof labels);
  ck_assert_ptr_null(load("labels.gz"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(i32[3]) {9, 0, 255}");
  const unsigned char ints[8] = {0xff, 0xff, 0xff, 0xfe, 0x00, 0x01, 0x00, 0x00}; /* -2, 65536 */
  write_idx("ints", 0x0C, 1, &n2, ints, sizeof ints);
  ck_assert_ptr_null(load("ints"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(i32[2]) {-2, 65536}");
  /* Only rank-1 files are labels. */
  write_idx("column", 0x08, 2, two_by_one, labels, sizeof labels);
  ck_assert_ptr_null(load("column"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t.dtype"), "f32");
}
END_TEST

START_TEST(test_idx_other_types) {
  const uint32_t n2 = 2;
  const unsigned char sbytes[2] = {0x80, 0x7f};
  write_idx("s", 0x09, 1, &n2, sbytes, 2);
  ck_assert_ptr_null(load("s"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(f32[2]) {-128, 127}");
  const unsigned char shorts[4] = {0xff, 0xfe, 0x01, 0x00};
  write_idx("h", 0x0B, 1, &n2, shorts, 4);
  ck_assert_ptr_null(load("h"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(f32[2]) {-2, 256}");
  const unsigned char floats[8] = {0x3f, 0xc0, 0, 0, 0xbd, 0xcc, 0xcc, 0xcd}; /* 1.5, -0.1f */
  write_idx("f.gz", 0x0D, 1, &n2, floats, 8);
  ck_assert_ptr_null(load("f.gz"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(f32[2]) {1.5, -0.1}");
  const unsigned char doubles[16] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18,
                                     0xc0, 0x24, 0,    0,    0,    0,    0,    0};
  write_idx("d", 0x0E, 1, &n2, doubles, 16); /* pi, -10 */
  ck_assert_ptr_null(load("d"));
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(f32[2]) {3.1415927, -10}");
}
END_TEST

START_TEST(test_idx_bad_files) {
  const unsigned char pixels[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const uint32_t dims[2] = {2, 3}, huge[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu},
                 seven[7] = {1, 1, 1, 1, 1, 1, 1};
  ASSERT_HAS(load_error("absent.idx"), "cannot open");
  ASSERT_HAS(load_error("absent.idx"), "No such file or directory");
  write_bytes("empty", "", 0);
  ASSERT_HAS(load_error("empty"), "truncated: expected a 4-byte IDX header, got 0 bytes");
  write_bytes("magic", "\x1f\x00\x08\x01\x00\x00\x00\x01", 8);
  ASSERT_HAS(load_error("magic"), "not an IDX file: bad magic, it starts with bytes 1f 00 instead of 00 00");
  write_idx("code", 0x07, 2, dims, pixels, 6);
  ASSERT_HAS(load_error("code"), "unknown IDX type code 0x07 (known: 0x08 ubyte");
  write_idx("rank7", 0x08, 7, seven, pixels, 1);
  ASSERT_HAS(load_error("rank7"), "7 dimensions; nnc tensors have 1 to 6");
  write_bytes("dims.gz", "\0\0\x08\x03\0\0\0\x02\0\0\0\x03", 12);
  ASSERT_HAS(load_error("dims.gz"), "truncated: expected 12 bytes of dimensions, got 8");
  write_idx("short", 0x08, 2, dims, pixels, 5);
  ASSERT_HAS(load_error("short"), "truncated: dimensions [2,3] of ubyte need 6 bytes of data, got 5");
  write_idx("short.gz", 0x08, 2, dims, pixels, 5);
  ASSERT_HAS(load_error("short.gz"), "truncated: dimensions [2,3] of ubyte need 6 bytes of data, got 5");
  write_idx("long", 0x08, 2, dims, pixels, 7);
  ASSERT_HAS(load_error("long"), "more data than the header says: dimensions [2,3] of ubyte need 6 bytes");
  write_idx("huge", 0x0E, 3, huge, pixels, 8);
  ASSERT_HAS(load_error("huge"), "dimensions [4294967295,4294967295,4294967295] are too large");
  NNC_LUA_FAILS(L, "data.idx()", "bad argument #1 to 'idx'");
}
END_TEST

/* A header that claims more than its file could hold fails before anything
 * is allocated for it: 12 bytes cannot hold [2^20,2^10] for any reading. */
START_TEST(test_idx_claims_beyond_the_file) {
  const unsigned char few[16] = {0};
  const uint32_t dims[2] = {1u << 20, 1u << 10};
  write_idx("claims", 0x08, 2, dims, few, sizeof few);
  ASSERT_HAS(load_error("claims"), "truncated: dimensions [1048576,1024] of ubyte need 1073741824 bytes of data, got 16");
  write_idx("claims.gz", 0x08, 2, dims, few, sizeof few);
  const char *err = load_error("claims.gz");
  ASSERT_HAS(err, "dimensions [1048576,1024] of ubyte need 1073741824 bytes of data, more than a gzip file of ");
  ASSERT_HAS(err, "corrupt header?");
}
END_TEST

/* The data goes straight into the tensor: loading 64 MiB of bytes as f32
 * costs the 256 MiB tensor and no second copy of the data beside it. */
START_TEST(test_idx_memory_is_the_tensor) {
#ifdef __SANITIZE_ADDRESS__
  printf("skipped: peak memory is not measurable under ASan's shadow memory\n");
#else
  gzFile gz = gzopen(path_of("zeros.gz"), "wb1");
  ck_assert_ptr_nonnull(gz);
  const unsigned char header[16] = {0, 0, 0x08, 3, 0, 0, 0, 64, 0, 0, 4, 0, 0, 0, 4, 0};
  ck_assert_int_eq(gzwrite(gz, header, sizeof header), (int)sizeof header);
  static unsigned char zeros[1 << 20];
  for (int i = 0; i < 64; i++) ck_assert_int_eq(gzwrite(gz, zeros, sizeof zeros), (int)sizeof zeros);
  ck_assert_int_eq(gzclose(gz), Z_OK);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    const char *err = load("zeros.gz");
    getrusage(RUSAGE_SELF, &after);
    long grew_mib = (after.ru_maxrss - before.ru_maxrss) / 1024;
    if (err) fprintf(stderr, "%s\n", err);
    else if (grew_mib > 256 + 24) fprintf(stderr, "peak memory grew by %ld MiB for a 256 MiB tensor\n", grew_mib);
    _exit(err || grew_mib > 256 + 24);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "loading used a second copy of the data");
#endif
}
END_TEST

/* Printing stops at PRINT_MAX items on any level, empty tensors included. */
START_TEST(test_print_empty_with_a_huge_axis) {
  NNC_LUA_OK(L, "s = tostring(data.zeros{1000000000, 0})");
  ck_assert_str_eq(nnc_test_lua_str(L, "s"), "tensor(f32[1000000000,0]) ...");
  NNC_LUA_OK(L, "s = tostring(data.zeros{3, 0})");
  ck_assert_str_eq(nnc_test_lua_str(L, "s"), "tensor(f32[3,0]) {{}, {}, {}}");
  NNC_LUA_OK(L, "s = tostring(data.zeros{0, 1000000000})");
  ck_assert_str_eq(nnc_test_lua_str(L, "s"), "tensor(f32[0,1000000000]) {}");
  /* the same from a 12-byte file */
  const uint32_t dims[2] = {1000000000u, 0};
  write_idx("empty.idx", 0x08, 2, dims, dims, 0);
  ck_assert_ptr_null(load("empty.idx"));
  NNC_LUA_OK(L, "s = tostring(t)");
  ck_assert_str_eq(nnc_test_lua_str(L, "s"), "tensor(f32[1000000000,0]) ...");
}
END_TEST

/* Labels that are not whole numbers an integer can hold: an error, not a
 * cast with undefined behaviour. */
START_TEST(test_to_categorical_out_of_range) {
  NNC_LUA_FAILS(L, "data.to_categorical(data.tensor({1e30}))", "label at index 1 is 1e+30, not a whole number");
  NNC_LUA_FAILS(L, "data.to_categorical(data.tensor({0/0}))", "label at index 1 is ");
  NNC_LUA_FAILS(L, "data.to_categorical(data.tensor({1, -1/0}))", "label at index 2 is -inf, not a whole number");
}
END_TEST

/* A gzip file cut short reads as truncated data; a damaged one says so. */
START_TEST(test_idx_broken_gzip) {
  unsigned char pixels[4000];
  for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (unsigned char)(i * 7919 % 251);
  const uint32_t dims[2] = {40, 100};
  write_idx("whole.gz", 0x08, 2, dims, pixels, sizeof pixels);
  char *gz = nnc_test_read_file(path_of("whole.gz"));
  struct stat st;
  ck_assert_int_eq(stat(path_of("whole.gz"), &st), 0);
  size_t size = (size_t)st.st_size;
  write_raw("cut.gz", gz, size / 2);
  ASSERT_HAS(load_error("cut.gz"), "truncated: dimensions [40,100] of ubyte need 4000 bytes of data, got ");
  for (size_t i = 20; i < size - 8; i++) gz[i] ^= 0x5a;
  write_raw("damaged.gz", gz, size);
  ASSERT_HAS(load_error("damaged.gz"), "corrupt gzip data: ");
  free(gz);
}
END_TEST

/* The four files of a data set of n_train and n_test 2x2 images; labels
 * are the image number mod 10, pixels 51 * the pixel's place (0..3). */
static void write_dataset(const char *sub, const char *suffix, uint32_t n_train, uint32_t n_test,
                          uint32_t n_train_labels) {
  unsigned char pixels[4 * 16], labels[16];
  for (int i = 0; i < 64; i++) pixels[i] = (unsigned char)(51 * (i % 4));
  for (int i = 0; i < 16; i++) labels[i] = (unsigned char)(i % 10);
  char name[256];
  if (sub[0]) mkdir(path_of(sub), 0700);
  const char *slash = sub[0] ? "/" : "";
  uint32_t train[3] = {n_train, 2, 2}, test[3] = {n_test, 2, 2};
  snprintf(name, sizeof name, "%s%strain-images-idx3-ubyte%s", sub, slash, suffix);
  write_idx(name, 0x08, 3, train, pixels, 4 * n_train);
  snprintf(name, sizeof name, "%s%strain-labels-idx1-ubyte%s", sub, slash, suffix);
  write_idx(name, 0x08, 1, &n_train_labels, labels, n_train_labels);
  snprintf(name, sizeof name, "%s%st10k-images-idx3-ubyte%s", sub, slash, suffix);
  write_idx(name, 0x08, 3, test, pixels, 4 * n_test);
  snprintf(name, sizeof name, "%s%st10k-labels-idx1-ubyte%s", sub, slash, suffix);
  write_idx(name, 0x08, 1, &n_test, labels, n_test);
}

START_TEST(test_dataset_from_nnc_data) {
  write_dataset("fashion-mnist", ".gz", 3, 2, 3);
  setenv("NNC_DATA", dir, 1);
  NNC_LUA_OK(L, "train, test = data.fashion_mnist()");
  ck_assert_str_eq(nnc_test_lua_str(L, "train.x:slice(1, 1)"),
                   "tensor(f32[1,2,2,1]) {{{{0}, {0.2}}, {{0.4}, {0.6}}}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(train.x.shape, ',')"), "3,2,2,1");
  ck_assert_str_eq(nnc_test_lua_str(L, "train.y"), "tensor(i32[3]) {0, 1, 2}");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(test.x.shape, ',')"), "2,2,2,1");
  ck_assert_str_eq(nnc_test_lua_str(L, "test.y"), "tensor(i32[2]) {0, 1}");
  /* 51 / 255 in float32, as Keras scripts compute it. */
  ck_assert(nnc_test_lua_num(L, "train.x[1][1][2][1]") == (double)(51.0f / 255.0f));
  /* Keras's form: the raw bytes and the labels, four values. */
  NNC_LUA_OK(L, "x_train, y_train, x_test, y_test = datasets.fashion_mnist.load_data()");
  ck_assert_str_eq(nnc_test_lua_str(L, "x_train[1]"), "tensor(u8[2,2]) {{0, 51}, {102, 153}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "y_train"), "tensor(i32[3]) {0, 1, 2}");
  ck_assert_str_eq(nnc_test_lua_str(L, "x_test.dtype .. table.concat(x_test.shape, ',')"), "u82,2,2");
  ck_assert_str_eq(nnc_test_lua_str(L, "y_test"), "tensor(i32[2]) {0, 1}");
  /* The seeds' next lines give the convenience form's values. */
  ck_assert(nnc_test_lua_num(L, "((x_train / 255.0):reshape(-1, 2, 2, 1) - train.x):abs():max()") == 0.0);
}
END_TEST

/* Files directly in $NNC_DATA, plain; .gz wins where both exist. */
START_TEST(test_dataset_search_order) {
  write_dataset("", "", 3, 2, 3);
  setenv("NNC_DATA", dir, 1);
  nnc_data_set_system_dir(path_of("nowhere"));
  NNC_LUA_OK(L, "train, test = data.mnist()");
  ck_assert_int_eq(nnc_test_lua_num(L, "#train.x"), 3);
  write_dataset("", ".gz", 4, 2, 4);
  NNC_LUA_OK(L, "train, test = data.mnist()");
  ck_assert_int_eq(nnc_test_lua_num(L, "#train.x"), 4);
  /* The named subdirectory comes before $NNC_DATA itself. */
  write_dataset("mnist", "", 5, 2, 5);
  NNC_LUA_OK(L, "train, test = data.mnist()");
  ck_assert_int_eq(nnc_test_lua_num(L, "#train.x"), 5);
  /* And the system directory comes last. */
  unsetenv("NNC_DATA");
  nnc_data_set_system_dir(dir);
  NNC_LUA_OK(L, "train, test = data.mnist()");
  ck_assert_int_eq(nnc_test_lua_num(L, "#train.x"), 5);
}
END_TEST

START_TEST(test_dataset_missing) {
  nnc_data_set_system_dir(path_of("system"));
  const char *err = nnc_test_lua_run(L, "train, test = data.fashion_mnist()");
  ck_assert_ptr_nonnull(err);
  ASSERT_HAS(err,
             "data.fashion_mnist: cannot find Fashion-MNIST, the files train-images-idx3-ubyte, "
             "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte");
  ASSERT_HAS(err, path_of("system/fashion-mnist (the system data set directory): no such directory"));
  ASSERT_HAS(err, "$NNC_DATA is not set.");
  ASSERT_HAS(err,
             "Debian's package dataset-fashion-mnist provides Fashion-MNIST: "
             "apt-get install dataset-fashion-mnist");

  /* Half the files under $NNC_DATA: each place lists what it lacks. */
  write_dataset("", "", 3, 2, 3);
  unlink(path_of("t10k-images-idx3-ubyte"));
  unlink(path_of("train-labels-idx1-ubyte"));
  mkdir(path_of("fashion-mnist"), 0700);
  setenv("NNC_DATA", dir, 1);
  err = nnc_test_lua_run(L, "train, test = data.fashion_mnist()");
  ck_assert_ptr_nonnull(err);
  char line[1024];
  snprintf(line, sizeof line, "\n  %s/fashion-mnist ($NNC_DATA/fashion-mnist): none of them\n", dir);
  ASSERT_HAS(err, line);
  snprintf(line, sizeof line, "\n  %s ($NNC_DATA): missing train-labels-idx1-ubyte t10k-images-idx3-ubyte\n",
           dir);
  ASSERT_HAS(err, line);
  ASSERT_HAS(err, path_of("system/fashion-mnist (the system data set directory)"));
  ck_assert_msg(!strstr(err, "not set"), "%s", err);

  err = nnc_test_lua_run(L, "train, test = data.mnist()");
  ck_assert_ptr_nonnull(err);
  ASSERT_HAS(err, "($NNC_DATA/mnist): no such directory");
  ASSERT_HAS(err, "No Debian package ships MNIST. Place the files by hand: download\n"
                  "  http://127.0.0.1:1/mnist.npz (SHA-256 731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1)");
  ASSERT_HAS(err, "Downloading http://127.0.0.1:1/mnist.npz failed: ");
  ASSERT_HAS(err, "(each .gz or plain), or Keras's mnist.npz. Looked in:\n");
  snprintf(line, sizeof line, "\n  %s/cache/datasets/mnist (nnc's download cache): no such directory\n", dir);
  ASSERT_HAS(err, line);
  /* The failed download left nothing behind in the cache. */
  const char *ls = nnc_test_lua_str(L, "io.popen('ls -A " "' .. os.getenv('NNC_DATA') .. '/cache/datasets/mnist 2>/dev/null'):read('a')");
  ck_assert_str_eq(ls, "");
}
END_TEST

/* The command line's environment reaches the loader: a data set under
 * $NNC_DATA, and data.get_file's cache under $XDG_CACHE_HOME/nnc, else
 * $HOME/.cache/nnc, else none. */
static char *cli_output(const char *script, int want_rc) {
  char *out, *err;
  int rc = nnc_test_run_cli(nnc_test_write_temp("env.lua", script), &out, &err);
  ck_assert_msg(rc == want_rc, "exit %d: %s", rc, err);
  if (want_rc) {
    free(out);
    return err;
  }
  free(err);
  return out;
}

START_TEST(test_dataset_environment_through_cli) {
  write_dataset("mnist", ".gz", 3, 2, 3);
  setenv("NNC_DATA", dir, 1);
  char *out = cli_output("local train, test = data.mnist() print(#train.x, #test.x, train.y)\n", 0);
  ck_assert_str_eq(out, "3\t2\ttensor(i32[3]) {0, 1, 2}\n");
  free(out);
  char *home = strdup(getenv("HOME") ? getenv("HOME") : "");
  const char *get = "print(data.get_file('blob.bin', 'http://127.0.0.1:1/blob.bin'))\n";
  char want[600], cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", path_of("home/.cache/nnc/datasets"), path_of("xdg/nnc/datasets"));
  ck_assert_int_eq(system(cmd), 0);
  write_raw("home/.cache/nnc/datasets/blob.bin", "home", 4);
  write_raw("xdg/nnc/datasets/blob.bin", "xdg", 3);
  setenv("HOME", path_of("home"), 1);
  unsetenv("XDG_CACHE_HOME");
  out = cli_output(get, 0);
  snprintf(want, sizeof want, "%s\n", path_of("home/.cache/nnc/datasets/blob.bin"));
  ck_assert_str_eq(out, want);
  free(out);
  setenv("XDG_CACHE_HOME", path_of("xdg"), 1);
  out = cli_output(get, 0);
  snprintf(want, sizeof want, "%s\n", path_of("xdg/nnc/datasets/blob.bin"));
  ck_assert_str_eq(out, want);
  free(out);
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HOME");
  out = cli_output(get, 1);
  ASSERT_HAS(out, "get_file: neither $XDG_CACHE_HOME nor $HOME is set; pass cache_dir");
  free(out);
  if (home[0]) setenv("HOME", home, 1);
  free(home);
}
END_TEST

START_TEST(test_dataset_bad_contents) {
  write_dataset("", ".gz", 3, 2, 2);
  setenv("NNC_DATA", dir, 1);
  nnc_data_set_system_dir(path_of("nowhere"));
  char want[1024];
  snprintf(want, sizeof want, "%s has 3 images but %s has 2 labels", path_of("train-images-idx3-ubyte.gz"),
           path_of("train-labels-idx1-ubyte.gz"));
  NNC_LUA_FAILS(L, "data.mnist()", want);
  const uint32_t n3 = 3;
  write_idx("train-images-idx3-ubyte.gz", 0x08, 1, &n3, "abc", 3);
  NNC_LUA_FAILS(L, "data.mnist()",
                "train-images-idx3-ubyte.gz: expected ubyte images [N,rows,cols], got ubyte [3]");
  write_dataset("", ".gz", 3, 2, 3);
  write_idx("t10k-labels-idx1-ubyte.gz", 0x0D, 1, &n3, "abcdefghijkl", 12);
  NNC_LUA_FAILS(L, "data.mnist()",
                "t10k-labels-idx1-ubyte.gz: expected labels as ubyte or int [N], got float [3]");
}
END_TEST

START_TEST(test_to_categorical) {
  ck_assert_str_eq(nnc_test_lua_str(L, "data.to_categorical(data.tensor({2, 0}, 'i32'), 3)"),
                   "tensor(f32[2,3]) {{0, 0, 1}, {1, 0, 0}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.to_categorical({1, 0})"), "tensor(f32[2,2]) {{0, 1}, {1, 0}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.to_categorical(data.tensor{{1}, {0}}, 2)"),
                   "tensor(f32[2,2]) {{0, 1}, {1, 0}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.to_categorical(data.tensor({3, 1, 2}, 'i32'):slice(2), 3)"),
                   "tensor(f32[2,3]) {{0, 1, 0}, {0, 0, 1}}");
  NNC_LUA_FAILS(L, "data.to_categorical({1, 2, 10}, 10)",
                "data.to_categorical: label at index 3 is 10, outside 0..9 for 10 classes");
  NNC_LUA_FAILS(L, "data.to_categorical({1, -1}, 10)", "label at index 2 is -1; labels count from 0");
  NNC_LUA_FAILS(L, "data.to_categorical(data.tensor{0.5}, 10)",
                "label at index 1 is 0.5, not a whole number");
  NNC_LUA_FAILS(L, "data.to_categorical({0.5}, 10)", "tensor entry [1] is 0.5, not an i32 integer");
  NNC_LUA_FAILS(L, "data.to_categorical({1}, 0)", "classes is 0, expected at least 1");
}
END_TEST

START_TEST(test_real_fashion_mnist) {
  const char *real = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  if (access(real, R_OK) != 0) {
    printf("skipped test_real_fashion_mnist: %s is not installed (apt-get install dataset-fashion-mnist)\n",
           real);
    return;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  NNC_LUA_OK(L, "train, test = data.fashion_mnist()");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("data.fashion_mnist() took %.2f s\n",
         (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(train.x.shape, ',')"), "60000,28,28,1");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(test.x.shape, ',')"), "10000,28,28,1");
  ck_assert_str_eq(nnc_test_lua_str(L, "tostring(train.y)"), "tensor(i32[60000]) ...");
  ck_assert_int_eq(nnc_test_lua_num(L, "#test.y"), 10000);
  ck_assert_int_eq(nnc_test_lua_num(L, "train.y[1]"), 9);
  lua_getglobal(L, "train");
  lua_getfield(L, -1, "x");
  nnc_tensor *x = nnc_lua_totensor(L, -1);
  ck_assert_ptr_nonnull(x);
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < nnc_tensor_numel(x); i++) {
    float v = nnc_tensor_f32(x)[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  lua_pop(L, 2);
  ck_assert(lo == 0.0f && hi == 1.0f);
}
END_TEST

TCase *nnc_data_tcase(void) {
  TCase *tc = tcase_create("data");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_idx_ubyte_plain_and_gz);
  tcase_add_test(tc, test_idx_labels_are_i32);
  tcase_add_test(tc, test_idx_other_types);
  tcase_add_test(tc, test_idx_bad_files);
  tcase_add_test(tc, test_idx_broken_gzip);
  tcase_add_test(tc, test_idx_claims_beyond_the_file);
  tcase_add_test(tc, test_idx_memory_is_the_tensor);
  tcase_add_test(tc, test_print_empty_with_a_huge_axis);
  tcase_add_test(tc, test_to_categorical_out_of_range);
  tcase_add_test(tc, test_dataset_from_nnc_data);
  tcase_add_test(tc, test_dataset_search_order);
  tcase_add_test(tc, test_dataset_missing);
  tcase_add_test(tc, test_dataset_environment_through_cli);
  tcase_add_test(tc, test_dataset_bad_contents);
  tcase_add_test(tc, test_to_categorical);
  tcase_add_test(tc, test_real_fashion_mnist);
  return tc;
}
