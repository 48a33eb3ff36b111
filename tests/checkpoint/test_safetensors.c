/* safetensors checkpoints: round trips bit for bit, files with known bytes in
 * both directions, and every way a file can be wrong giving a message that
 * names the file (and tensor) while leaving the caller's buffers untouched.
 * Files for the error cases are written byte by byte here, so each case says
 * exactly what is on disk. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store/safetensors.h"
#include "tests/checkpoint/suites.h"
#include "tests/testutil.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
/* Destination buffers are filled with this byte before a load that should
 * fail, and must still hold it afterwards. */
#define SENTINEL 0x5A

/* The known answer used throughout: f32[2] = {1.0f, -2.5f}, little-endian. */
static const unsigned char w_bytes[8] = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0};
#define W_ENTRY "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

typedef struct path_buf {
  char s[512];
} path_buf;

/* ---- helpers */

/* A path in the test's temporary folder with nothing at it yet. */
static path_buf temp_path(const char *name) {
  path_buf p;
  snprintf(p.s, sizeof p.s, "%s", nnc_test_write_temp(name, ""));
  unlink(p.s);
  return p;
}

static void write_bytes(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(*len + 1);
  ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
  fclose(f);
  return buf;
}

/* A file from parts: the u64 length of `header`, the header verbatim, then
 * `data_len` bytes of data. */
static path_buf write_safetensors(const char *name, const char *header, const void *data, size_t data_len) {
  size_t hlen = strlen(header);
  unsigned char *buf = malloc(8 + hlen + data_len);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(buf + 8, header, hlen);
  if (data_len) memcpy(buf + 8 + hlen, data, data_len);
  path_buf p = temp_path(name);
  write_bytes(p.s, buf, 8 + hlen + data_len);
  free(buf);
  return p;
}

static int64_t numel(const nnc_named_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->shape[i];
  return n;
}

/* A tensor owning zeroed data of the given shape. */
static nnc_named_tensor make_tensor(const char *name, int rank, const int64_t *shape) {
  nnc_named_tensor t = {.name = name, .rank = rank};
  memcpy(t.shape, shape, (size_t)rank * sizeof *shape);
  t.data = calloc((size_t)numel(&t) + 1, sizeof(float));
  return t;
}

static void free_tensors(nnc_named_tensor *t, int count) {
  for (int i = 0; i < count; i++) free(t[i].data);
}

/* Fills with arbitrary bits, including the values a float round trip could
 * disturb: NaN payloads, -0.0, infinities and denormals. */
static void fill_bits(nnc_named_tensor *t, uint32_t seed) {
  static const uint32_t special[] = {0x7FC01234u, 0xFFA00001u, 0x80000000u, 0x7F800000u, 0x00000001u, 0x807FFFFFu};
  uint32_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < numel(t); i++) {
    x = x * 1664525u + 1013904223u;
    uint32_t bits = i % 5 == 0 ? special[(i / 5) % 6] : x;
    memcpy(&t->data[i], &bits, 4);
  }
}

static void save_ok(const char *path, const nnc_named_tensor *t, int count) {
  nnc_status st = {0};
  int rc = nnc_safetensors_save(path, t, count, &st);
  ck_assert_msg(rc == 0 && !st.failed, "save failed: %s", st.msg);
}

static void load_ok(const char *path, nnc_named_tensor *t, int count) {
  nnc_status st = {0};
  int rc = nnc_safetensors_load(path, t, count, &st);
  ck_assert_msg(rc == 0 && !st.failed, "load failed: %s", st.msg);
}

/* Expects a failed load whose message contains `fragment`, with every
 * destination buffer exactly as it was before. */
static void expect_load_error(const char *path, nnc_named_tensor *t, int count, const char *fragment) {
  for (int i = 0; i < count; i++) memset(t[i].data, SENTINEL, (size_t)numel(&t[i]) * 4);
  nnc_status st = {0};
  ck_assert_int_eq(nnc_safetensors_load(path, t, count, &st), -1);
  ck_assert(st.failed);
  ck_assert_msg(strstr(st.msg, fragment), "expected '%s' in: %s", fragment, st.msg);
  for (int i = 0; i < count; i++) {
    const unsigned char *b = (const unsigned char *)t[i].data;
    int64_t j = 0, n = numel(&t[i]) * 4;
    while (j < n && b[j] == SENTINEL) j++;
    ck_assert_msg(j == n, "tensor '%s' byte %lld changed by a failed load", t[i].name, (long long)j);
  }
}

/* The same, for a message known in full ("<path>: " + rest). */
static void expect_load_message(const char *path, nnc_named_tensor *t, int count, const char *rest) {
  char want[1536];
  snprintf(want, sizeof want, "%s: %s", path, rest);
  expect_load_error(path, t, count, want);
  nnc_status st = {0};
  nnc_safetensors_load(path, t, count, &st);
  ck_assert_str_eq(st.msg, want);
}

/* How many files in path's folder are temporaries of path. */
static int count_temps(const char *path) {
  char dir[512], prefix[512];
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

static uint64_t le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
  return v;
}

/* ---- files that load */

START_TEST(test_round_trip_bit_for_bit) {
  enum { N = 7 };
  nnc_named_tensor out[N] = {
      make_tensor("conv2d/kernel:0", 4, SHAPE(3, 3, 1, 32)),
      make_tensor("conv2d/bias:0", 1, SHAPE(32)),
      make_tensor("dense/kernel:0", 2, SHAPE(784, 64)),
      make_tensor("dense/bias:0", 1, SHAPE(64)),
      make_tensor("step", 0, SHAPE(0)),
      make_tensor("empty", 2, SHAPE(0, 5)),
      make_tensor("we\"ird\\name\t/poids_\xc3\xa9", 1, SHAPE(3)),
  };
  nnc_named_tensor in[N];
  for (int i = 0; i < N; i++) {
    fill_bits(&out[i], (uint32_t)i + 1);
    in[i] = make_tensor(out[i].name, out[i].rank, out[i].shape);
  }
  path_buf p = temp_path("round_trip.safetensors");
  save_ok(p.s, out, N);
  ck_assert_int_eq(count_temps(p.s), 0);
  /* Loading in another order than saved: matching is by name. */
  nnc_named_tensor reversed[N];
  for (int i = 0; i < N; i++) reversed[i] = in[N - 1 - i];
  load_ok(p.s, reversed, N);
  for (int i = 0; i < N; i++)
    ck_assert_msg(memcmp(in[i].data, out[i].data, (size_t)numel(&out[i]) * 4) == 0, "tensor '%s' differs",
                  out[i].name);
  free_tensors(out, N);
  free_tensors(in, N);
}
END_TEST

START_TEST(test_header_is_json_naming_every_tensor) {
  nnc_named_tensor t[3] = {
      make_tensor("conv2d/kernel:0", 4, SHAPE(3, 3, 1, 32)),
      make_tensor("conv2d/bias:0", 1, SHAPE(32)),
      make_tensor("a\"b", 2, SHAPE(2, 3)),
  };
  path_buf p = temp_path("header.safetensors");
  save_ok(p.s, t, 3);

  /* By simple checks on the raw bytes. */
  size_t len;
  unsigned char *file = read_bytes(p.s, &len);
  uint64_t n = le64(file);
  ck_assert_uint_eq(n % 8, 0);
  ck_assert_uint_eq(len, 8 + n + 4 * (288 + 32 + 6));
  char *header = strndup((const char *)file + 8, n);
  ck_assert_int_eq(header[0], '{');
  size_t end = n;
  while (end > 0 && header[end - 1] == ' ') end--;
  ck_assert_int_eq(header[end - 1], '}');
  ck_assert_uint_lt(n - end, 8);
  ck_assert_ptr_nonnull(strstr(header, "\"__metadata__\":{\"format\":\"nnc\"}"));
  ck_assert_ptr_nonnull(strstr(header, "\"conv2d/kernel:0\":{\"dtype\":\"F32\",\"shape\":[3,3,1,32]"));
  ck_assert_ptr_nonnull(strstr(header, "\"conv2d/bias:0\":{\"dtype\":\"F32\",\"shape\":[32]"));
  ck_assert_ptr_nonnull(strstr(header, "\"a\\\"b\":{"));

  /* By the module's parser, which checks the whole file. */
  nnc_safetensors_index idx;
  nnc_status st = {0};
  ck_assert_msg(nnc_safetensors_read_index(p.s, &idx, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(idx.count, 3);
  ck_assert_str_eq(idx.format, "nnc");
  ck_assert_int_eq(idx.data_start, 8 + (int64_t)n);
  ck_assert_int_eq(idx.data_start + idx.data_size, (int64_t)len);
  int64_t offset = 0;
  for (int i = 0; i < 3; i++) {
    const nnc_safetensors_entry *e = &idx.entries[i];
    ck_assert_str_eq(e->name, t[i].name);
    ck_assert_str_eq(e->dtype, "F32");
    ck_assert_int_eq(e->rank, t[i].rank);
    for (int d = 0; d < e->rank; d++) ck_assert_int_eq(e->shape[d], t[i].shape[d]);
    ck_assert_int_eq(e->begin, offset);
    ck_assert_int_eq(e->end, offset + 4 * numel(&t[i]));
    offset = e->end;
  }
  nnc_safetensors_index_free(&idx);
  free(header), free(file);
  free_tensors(t, 3);
}
END_TEST

START_TEST(test_load_known_bytes) {
  path_buf p = write_safetensors("known.safetensors", "{" W_ENTRY "}", w_bytes, 8);
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  load_ok(p.s, &w, 1);
  ck_assert(w.data[0] == 1.0f);
  ck_assert(w.data[1] == -2.5f);
  free_tensors(&w, 1);
}
END_TEST

START_TEST(test_save_known_bytes) {
  static const char header[] = "{\"__metadata__\":{\"format\":\"nnc\"}," W_ENTRY "}";
  float values[2] = {1.0f, -2.5f};
  nnc_named_tensor w = {.name = "w", .rank = 1, .shape = {2}, .data = values};
  path_buf p = temp_path("known_save.safetensors");
  save_ok(p.s, &w, 1);

  /* The header padded with spaces to a multiple of 8, then the data. */
  size_t hlen = (strlen(header) + 7) / 8 * 8, len;
  unsigned char want[256];
  memset(want, ' ', sizeof want);
  for (int i = 0; i < 8; i++) want[i] = (unsigned char)(hlen >> (8 * i));
  memcpy(want + 8, header, strlen(header));
  memcpy(want + 8 + hlen, w_bytes, 8);
  unsigned char *got = read_bytes(p.s, &len);
  ck_assert_uint_eq(len, 8 + hlen + 8);
  ck_assert_msg(memcmp(got, want, len) == 0, "file bytes differ; header: %.*s", (int)hlen, (const char *)got + 8);
  free(got);
}
END_TEST

/* What other writers may do: tensors stored in another order than listed,
 * keys in any order, whitespace, no padding, escapes in names, and metadata
 * of any JSON type. */
START_TEST(test_load_foreign_file) {
  static const char header[] =
      "{ \"b\\u00e9\\ud83d\\ude00\" : {\"data_offsets\": [8, 16], \"shape\": [2], \"dtype\": \"F32\"},\n"
      "\t\"__metadata__\": {\"format\": \"pt\", \"epochs\": 1.5e3, \"x\": [true, false, null, {\"y\": -0.25}],"
      " \"note\": \"a\\nb\\\"\\/\"},\r\n"
      "  \"a\": {\"dtype\": \"F32\", \"shape\": [1, 2], \"data_offsets\": [0, 8]} }";
  unsigned char data[16];
  memcpy(data, w_bytes + 4, 4), memcpy(data + 4, w_bytes, 4), memcpy(data + 8, w_bytes, 8);
  path_buf p = write_safetensors("foreign.safetensors", header, data, 16);
  nnc_named_tensor t[2] = {make_tensor("a", 2, SHAPE(1, 2)), make_tensor("b\xc3\xa9\xf0\x9f\x98\x80", 1, SHAPE(2))};
  load_ok(p.s, t, 2);
  ck_assert(t[0].data[0] == -2.5f && t[0].data[1] == 1.0f);
  ck_assert(t[1].data[0] == 1.0f && t[1].data[1] == -2.5f);

  nnc_safetensors_index idx;
  nnc_status st = {0};
  ck_assert_msg(nnc_safetensors_read_index(p.s, &idx, &st) == 0, "%s", st.msg);
  ck_assert_str_eq(idx.format, "pt");
  ck_assert_int_eq(idx.count, 2);
  nnc_safetensors_index_free(&idx);
  free_tensors(t, 2);
}
END_TEST

START_TEST(test_save_replaces_existing_file) {
  path_buf p = temp_path("replace.safetensors");
  nnc_named_tensor a = make_tensor("a", 1, SHAPE(100)), b = make_tensor("b", 1, SHAPE(2));
  fill_bits(&a, 1);
  save_ok(p.s, &a, 1);
  fill_bits(&b, 2);
  save_ok(p.s, &b, 1);
  nnc_named_tensor got = make_tensor("b", 1, SHAPE(2));
  load_ok(p.s, &got, 1);
  ck_assert(memcmp(got.data, b.data, 8) == 0);
  ck_assert_int_eq(count_temps(p.s), 0);
  free_tensors(&a, 1), free_tensors(&b, 1), free_tensors(&got, 1);
}
END_TEST

START_TEST(test_no_tensors) {
  path_buf p = temp_path("none.safetensors");
  save_ok(p.s, NULL, 0);
  load_ok(p.s, NULL, 0);
  size_t len;
  unsigned char *file = read_bytes(p.s, &len);
  ck_assert_uint_eq(len, 8 + le64(file));
  free(file);
}
END_TEST

/* ---- malformed headers */

START_TEST(test_malformed_json) {
  static const struct {
    const char *header, *message;
  } cases[] = {
      {"{\"w\" {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "at byte 13: expected ':'"},
      {"{" W_ENTRY ",}", "expected '\"'"},
      {"{" W_ENTRY, "expected ',' or '}'"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2] \"data_offsets\":[0,8]}}", "expected ',' or '}'"},
      {"{\"w", "at byte 9: unterminated string"},
      {"{\"w\\q\":{}}", "invalid escape '\\q'"},
      {"{\"w\n\":{}}", "control character 0x0a in a string"},
      {"{\"\\ud800\":{}}", "unpaired UTF-16 surrogate"},
      {"{\"\\u12g4\":{}}", "expected 4 hex digits after '\\u'"},
      {"{\"\\u0000\":{}}", "'\\u0000' in a string"},
      {"", "at byte 8: expected '{'"},
      {"[1]", "at byte 8: expected '{'"},
      {" {" W_ENTRY "}", "at byte 8: expected '{'"},
      {"{" W_ENTRY "}x", "unexpected data after the header object"},
      {"{\"w\":[1]}", "expected '{'"},
      {"{\"w\":{\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]}}", "expected '\"'"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", "expected an integer"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", "expected an integer"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "expected a non-negative integer"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", "number with a leading zero"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", "number too large"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", "shape has more than 6"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", "data_offsets has more than 2"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", "data_offsets must be [begin, end]"},
      {"{\"w\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'w' has unknown dtype 'F99'"},
      {"{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'w' has no 'dtype'"},
      {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "tensor 'w' has no 'shape'"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "tensor 'w' has no 'data_offsets'"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}}",
       "tensor 'w' has unexpected key 'foo'"},
      {"{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
       "tensor 'w' has 'dtype' twice"},
      {"{" W_ENTRY "," W_ENTRY "}", "tensor 'w' appears twice"},
      {"{\"__metadata__\":{},\"__metadata__\":{}," W_ENTRY "}", "__metadata__ appears twice"},
      {"{\"__metadata__\":[]," W_ENTRY "}", "expected '{'"},
      {"{\"__metadata__\":{\"a\":tru}," W_ENTRY "}", "expected a value"},
      {"{\"__metadata__\":{\"a\":1.}," W_ENTRY "}", "expected a digit"},
      {"{\"__metadata__\":{\"a\":[1 2]}," W_ENTRY "}", "expected ',' or ']'"},
      {"{\"__metadata__\":{\"a\":"
       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
       "}," W_ENTRY "}",
       "nested deeper than 64 levels"},
  };
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    path_buf p = write_safetensors("malformed.safetensors", cases[i].header, w_bytes, 8);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: malformed header", p.s);
    expect_load_error(p.s, &w, 1, prefix);
    expect_load_error(p.s, &w, 1, cases[i].message);
  }
  free_tensors(&w, 1);
}
END_TEST

START_TEST(test_malformed_message_in_full) {
  path_buf p = write_safetensors("colon.safetensors", "{\"weights\" 1}", w_bytes, 8);
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  expect_load_message(p.s, &w, 1, "malformed header at byte 19: expected ':'");
  free_tensors(&w, 1);
}
END_TEST

START_TEST(test_truncated_header) {
  static const unsigned char short_header[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' '};
  path_buf p = temp_path("short_header.safetensors");
  write_bytes(p.s, short_header, sizeof short_header);
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  expect_load_message(p.s, &w, 1, "truncated: header says 8 bytes of header, file has 3");

  static const unsigned char huge_length[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
  write_bytes(p.s, huge_length, sizeof huge_length);
  expect_load_error(p.s, &w, 1, "truncated: header says 18446744073709551615 bytes of header, file has 2");

  write_bytes(p.s, short_header, 5);
  expect_load_message(p.s, &w, 1, "truncated: 5 bytes, too short for the 8-byte header length");
  free_tensors(&w, 1);
}
END_TEST

START_TEST(test_unreadable_paths) {
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  expect_load_error("/nonexistent/dir/x.safetensors", &w, 1,
                    "cannot read /nonexistent/dir/x.safetensors: No such file or directory");
  expect_load_error("/tmp", &w, 1, "cannot read /tmp: Is a directory");
  free_tensors(&w, 1);
}
END_TEST

/* ---- offsets and sizes */

START_TEST(test_truncated_data) {
  nnc_named_tensor t[2] = {make_tensor("a", 1, SHAPE(4)), make_tensor("b", 1, SHAPE(4))};
  path_buf p = temp_path("truncated.safetensors");
  save_ok(p.s, t, 2);
  size_t len;
  unsigned char *file = read_bytes(p.s, &len);
  write_bytes(p.s, file, len - 4);
  expect_load_message(p.s, t, 2, "truncated: the tensors need 32 bytes of data, file has 28");
  nnc_safetensors_index idx;
  nnc_status st = {0};
  ck_assert_int_eq(nnc_safetensors_read_index(p.s, &idx, &st), -1);
  ck_assert_ptr_nonnull(strstr(st.msg, "truncated"));
  ck_assert_int_eq(idx.count, 0);
  ck_assert_ptr_null(idx.entries);
  free(file);
  free_tensors(t, 2);
}
END_TEST

START_TEST(test_offsets_out_of_range) {
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  path_buf p = write_safetensors("range.safetensors",
                                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", w_bytes, 8);
  expect_load_message(p.s, &w, 1, "tensor 'w' has data_offsets [8,16] past the end of the data (8 bytes)");
  p = write_safetensors("range.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", w_bytes, 8);
  expect_load_message(p.s, &w, 1, "tensor 'w' has data_offsets [8,0] that end before they begin");
  p = write_safetensors("range.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", w_bytes, 8);
  expect_load_message(p.s, &w, 1, "tensor 'w' has data_offsets [0,8] holding 8 bytes, but F32 [3] needs 12");
  p = write_safetensors("range.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}",
                        w_bytes, 8);
  expect_load_error(p.s, &w, 1, "tensor 'w' has shape [4611686018427387904], too large");
  free_tensors(&w, 1);
}
END_TEST

START_TEST(test_overlapping_offsets) {
  static const unsigned char data[12] = {0};
  nnc_named_tensor t[2] = {make_tensor("a", 1, SHAPE(2)), make_tensor("b", 1, SHAPE(2))};
  path_buf p = write_safetensors("overlap.safetensors",
                                 "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                 data, 12);
  expect_load_message(p.s, t, 2, "tensors 'a' [0,8] and 'b' [4,12] overlap in the data");
  /* The same bytes listed twice is an overlap too. */
  p = write_safetensors("overlap.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                        data, 8);
  expect_load_error(p.s, t, 2, "overlap in the data");
  free_tensors(t, 2);
}
END_TEST

START_TEST(test_gaps_and_trailing_bytes) {
  static const unsigned char data[20] = {0};
  nnc_named_tensor t[2] = {make_tensor("a", 1, SHAPE(2)), make_tensor("b", 1, SHAPE(2))};
  path_buf p = write_safetensors("gap.safetensors",
                                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                                 data, 20);
  expect_load_message(p.s, t, 2, "data bytes 8 to 12 before tensor 'b' belong to no tensor");
  p = write_safetensors("gap.safetensors", "{" W_ENTRY "}", data, 12);
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  expect_load_message(p.s, &w, 1, "4 bytes after the last tensor's data belong to no tensor");
  free_tensors(t, 2), free_tensors(&w, 1);
}
END_TEST

/* ---- files that do not fit the model */

START_TEST(test_missing_tensor) {
  nnc_named_tensor saved[2] = {make_tensor("conv2d/kernel:0", 4, SHAPE(3, 3, 1, 4)),
                               make_tensor("conv2d_1/bias:0", 1, SHAPE(4))};
  path_buf p = temp_path("missing.safetensors");
  save_ok(p.s, saved, 2);
  nnc_named_tensor want[2] = {make_tensor("conv2d/kernel:0", 4, SHAPE(3, 3, 1, 4)),
                              make_tensor("conv2d/bias:0", 1, SHAPE(4))};
  expect_load_message(p.s, want, 2, "missing tensor 'conv2d/bias:0' (the file has 'conv2d_1/bias:0')");
  /* Nothing close in the file: no hint. */
  nnc_named_tensor other = make_tensor("completely_different", 1, SHAPE(4));
  expect_load_error(p.s, &other, 1, "missing tensor 'completely_different'");
  nnc_status st = {0};
  nnc_safetensors_load(p.s, &other, 1, &st);
  ck_assert_ptr_null(strstr(st.msg, "the file has"));
  free_tensors(saved, 2), free_tensors(want, 2), free_tensors(&other, 1);
}
END_TEST

START_TEST(test_wrong_shape) {
  nnc_named_tensor saved = make_tensor("dense/kernel:0", 2, SHAPE(784, 128));
  path_buf p = temp_path("weights.safetensors");
  save_ok(p.s, &saved, 1);
  nnc_named_tensor want = make_tensor("dense/kernel:0", 2, SHAPE(784, 64));
  expect_load_message(p.s, &want, 1,
                      "tensor 'dense/kernel:0' has shape [784,128] in the file, the model needs [784,64]");
  nnc_named_tensor rank3 = make_tensor("dense/kernel:0", 3, SHAPE(784, 128, 1));
  expect_load_message(p.s, &rank3, 1,
                      "tensor 'dense/kernel:0' has shape [784,128] in the file, the model needs [784,128,1]");
  free_tensors(&saved, 1), free_tensors(&want, 1), free_tensors(&rank3, 1);
}
END_TEST

START_TEST(test_wrong_dtype) {
  static const unsigned char f16[4] = {0x00, 0x3C, 0x00, 0xC1}; /* 1.0, -2.5 in IEEE half */
  path_buf p = write_safetensors("half.safetensors",
                                 "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", f16, 4);
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  expect_load_message(p.s, &w, 1, "tensor 'w' has dtype F16 in the file, the model needs F32");
  free_tensors(&w, 1);
}
END_TEST

START_TEST(test_extra_tensors) {
  nnc_named_tensor saved[3] = {make_tensor("a", 1, SHAPE(1)), make_tensor("b", 1, SHAPE(1)),
                               make_tensor("c", 1, SHAPE(1))};
  path_buf p = temp_path("extra.safetensors");
  save_ok(p.s, saved, 3);
  expect_load_message(p.s, saved, 1, "unexpected tensors in the file: 'b', 'c'");
  expect_load_message(p.s, saved, 2, "unexpected tensor 'c' in the file (the model has no such weight)");
  free_tensors(saved, 3);
}
END_TEST

/* Validation covers the whole file: a good first tensor is not copied when a
 * later one is wrong, and neither is anything when the data is cut short. */
START_TEST(test_failed_load_leaves_buffers_untouched) {
  nnc_named_tensor saved[2] = {make_tensor("first", 1, SHAPE(1000)), make_tensor("second", 1, SHAPE(10))};
  fill_bits(&saved[0], 3), fill_bits(&saved[1], 4);
  path_buf p = temp_path("untouched.safetensors");
  save_ok(p.s, saved, 2);
  nnc_named_tensor want[2] = {make_tensor("first", 1, SHAPE(1000)), make_tensor("second", 1, SHAPE(11))};
  expect_load_error(p.s, want, 2, "tensor 'second' has shape [10] in the file, the model needs [11]");
  nnc_named_tensor dup[2] = {make_tensor("first", 1, SHAPE(1000)), make_tensor("first", 1, SHAPE(1000))};
  expect_load_error(p.s, dup, 2, "tensor 'first' is listed twice");
  free_tensors(saved, 2), free_tensors(want, 2), free_tensors(dup, 2);
}
END_TEST

/* ---- saving */

START_TEST(test_unwritable_path) {
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  nnc_status st = {0};
  ck_assert_int_eq(nnc_safetensors_save("/nonexistent/dir/x.safetensors", &w, 1, &st), -1);
  ck_assert_str_eq(st.msg, "cannot write /nonexistent/dir/x.safetensors: No such file or directory");
  ck_assert_int_ne(access("/nonexistent/dir/x.safetensors", F_OK), 0);
  free_tensors(&w, 1);
}
END_TEST

/* The temporary is written but the rename fails: it must be removed. */
START_TEST(test_failed_rename_removes_temp) {
  path_buf p = temp_path("a_directory.safetensors");
  ck_assert_int_eq(mkdir(p.s, 0755), 0);
  nnc_named_tensor w = make_tensor("w", 1, SHAPE(2));
  nnc_status st = {0};
  ck_assert_int_eq(nnc_safetensors_save(p.s, &w, 1, &st), -1);
  char want[600];
  snprintf(want, sizeof want, "cannot write %s: ", p.s);
  ck_assert_msg(strncmp(st.msg, want, strlen(want)) == 0, "got: %s", st.msg);
  ck_assert_int_eq(count_temps(p.s), 0);
  rmdir(p.s);
  free_tensors(&w, 1);
}
END_TEST

/* A write that fails half way (here: over the file size limit) leaves
 * neither the target nor the temporary behind, and an old file intact. */
START_TEST(test_failed_write_removes_temp) {
  path_buf p = temp_path("too_big.safetensors");
  nnc_named_tensor small = make_tensor("w", 1, SHAPE(2)), big = make_tensor("w", 1, SHAPE(100000));
  fill_bits(&small, 5);
  save_ok(p.s, &small, 1);
  size_t old_len;
  unsigned char *old = read_bytes(p.s, &old_len);

  struct rlimit saved;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit limited = saved;
  limited.rlim_cur = 4096;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* so the write fails with EFBIG instead */
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limited), 0);
  nnc_status st = {0};
  int rc = nnc_safetensors_save(p.s, &big, 1, &st);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, old_handler);

  ck_assert_int_eq(rc, -1);
  char want[600];
  snprintf(want, sizeof want, "cannot write %s: %s", p.s, strerror(EFBIG));
  ck_assert_str_eq(st.msg, want);
  ck_assert_int_eq(count_temps(p.s), 0);
  size_t len;
  unsigned char *now = read_bytes(p.s, &len);
  ck_assert(len == old_len && memcmp(now, old, len) == 0);
  free(now), free(old);
  free_tensors(&small, 1), free_tensors(&big, 1);
}
END_TEST

START_TEST(test_invalid_tensors_are_refused) {
  path_buf p = temp_path("invalid.safetensors");
  nnc_named_tensor t[2] = {make_tensor("a", 1, SHAPE(2)), make_tensor("a", 1, SHAPE(3))};
  static const struct {
    const char *name;
    int rank;
    int64_t dim;
    int null_data;
    const char *message;
  } cases[] = {
      {"a", 1, 2, 0, "tensor 'a' is listed twice"},
      {"", 1, 2, 0, "tensor 0 has no name"},
      {"__metadata__", 1, 2, 0, "'__metadata__' is reserved"},
      {"b", 7, 2, 0, "tensor 'b' has rank 7; nnc supports 0 to 6"},
      {"b", 1, -1, 0, "tensor 'b' has invalid shape [-1]"},
      {"b", 1, 2, 1, "tensor 'b' has no data"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nnc_named_tensor bad = {.name = cases[i].name, .rank = cases[i].rank, .shape = {cases[i].dim, 1, 1, 1, 1, 1}};
    bad.data = cases[i].null_data ? NULL : t[1].data;
    nnc_named_tensor list[2] = {i == 1 ? bad : t[0], i == 1 ? t[0] : bad};
    nnc_status st = {0};
    ck_assert_int_eq(nnc_safetensors_save(p.s, list, 2, &st), -1);
    ck_assert_msg(strstr(st.msg, cases[i].message), "case %zu: expected '%s' in: %s", i, cases[i].message, st.msg);
    ck_assert_int_ne(access(p.s, F_OK), 0);
  }
  free_tensors(t, 2);
}
END_TEST

/* ---- registration */

TCase *tcase_safetensors_files(void) {
  TCase *tc = tcase_create("safetensors_files");
  tcase_add_test(tc, test_round_trip_bit_for_bit);
  tcase_add_test(tc, test_header_is_json_naming_every_tensor);
  tcase_add_test(tc, test_load_known_bytes);
  tcase_add_test(tc, test_save_known_bytes);
  tcase_add_test(tc, test_load_foreign_file);
  tcase_add_test(tc, test_save_replaces_existing_file);
  tcase_add_test(tc, test_no_tensors);
  return tc;
}

TCase *tcase_safetensors_header_errors(void) {
  TCase *tc = tcase_create("safetensors_header_errors");
  tcase_add_test(tc, test_malformed_json);
  tcase_add_test(tc, test_malformed_message_in_full);
  tcase_add_test(tc, test_truncated_header);
  tcase_add_test(tc, test_unreadable_paths);
  return tc;
}

TCase *tcase_safetensors_layout_errors(void) {
  TCase *tc = tcase_create("safetensors_layout_errors");
  tcase_add_test(tc, test_truncated_data);
  tcase_add_test(tc, test_offsets_out_of_range);
  tcase_add_test(tc, test_overlapping_offsets);
  tcase_add_test(tc, test_gaps_and_trailing_bytes);
  return tc;
}

TCase *tcase_safetensors_model_errors(void) {
  TCase *tc = tcase_create("safetensors_model_errors");
  tcase_add_test(tc, test_missing_tensor);
  tcase_add_test(tc, test_wrong_shape);
  tcase_add_test(tc, test_wrong_dtype);
  tcase_add_test(tc, test_extra_tensors);
  tcase_add_test(tc, test_failed_load_leaves_buffers_untouched);
  return tc;
}

TCase *tcase_safetensors_save_errors(void) {
  TCase *tc = tcase_create("safetensors_save_errors");
  tcase_add_test(tc, test_unwritable_path);
  tcase_add_test(tc, test_failed_rename_removes_temp);
  tcase_add_test(tc, test_failed_write_removes_temp);
  tcase_add_test(tc, test_invalid_tensors_are_refused);
  return tc;
}
