/* Tensor userdata from Lua: construction, fields, views, arithmetic, printing. */
#include <lauxlib.h>
#include <math.h>

#include "frontend/tensor.h"
#include "tests/frontend/lua_harness.h"
#include "tests/frontend/suites.h"

static lua_State *L;

static void setup(void) { L = nnc_test_lua_new(); }
static void teardown(void) { lua_close(L); }

/* The tensor held by global `name`. */
static nnc_tensor *global_tensor(const char *name) {
  lua_getglobal(L, name);
  nnc_tensor *t = nnc_lua_totensor(L, -1);
  lua_pop(L, 1); /* the global keeps it alive */
  ck_assert_msg(t, "global %s is not a tensor", name);
  return t;
}

START_TEST(test_from_table_and_fields) {
  NNC_LUA_OK(L, "t = data.tensor({{1, 2, 3}, {4, 5, 6}})");
  ck_assert_str_eq(nnc_test_lua_str(L, "t"), "tensor(f32[2,3]) {{1, 2, 3}, {4, 5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t.dtype"), "f32");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(t.shape, 'x')"), "2x3");
  ck_assert_int_eq(nnc_test_lua_num(L, "#t"), 2);
  /* Each access gives a fresh table, so callers may modify it. */
  ck_assert_str_eq(nnc_test_lua_str(L, "t.shape ~= t.shape"), "true");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor({1, 2, 3}, 'i32')"), "tensor(i32[3]) {1, 2, 3}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor({}).shape[1]"), "0");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor{{{1}, {2}}}"), "tensor(f32[1,2,1]) {{{1}, {2}}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.zeros({2, 2}, 'i32')"), "tensor(i32[2,2]) {{0, 0}, {0, 0}}");
}
END_TEST

START_TEST(test_from_table_errors) {
  NNC_LUA_FAILS(L, "data.tensor({{1, 2}, {3}})",
                "entry [2] has 1 entries, the first one at that depth has 2");
  NNC_LUA_FAILS(L, "data.tensor({{1, 2}, 3})", "entry [2] is a number, expected a table of 2 numbers");
  NNC_LUA_FAILS(L, "data.tensor({{1, 'x'}})", "tensor entry [1][2] is a string, expected a number");
  NNC_LUA_FAILS(L, "data.tensor({1, {2}})", "tensor entry [2] is a table, expected a number");
  NNC_LUA_FAILS(L, "data.tensor({1.5}, 'i32')", "tensor entry [1] is 1.5, not an i32 integer");
  NNC_LUA_FAILS(L, "data.tensor({1}, 'int')", "unknown dtype 'int' (did you mean 'i32'?)");
  NNC_LUA_FAILS(L, "data.tensor({{{{{{{1}}}}}}})", "nest deeper than 6 levels");
  NNC_LUA_FAILS(L, "data.zeros({2, -1})", "zeros: shape entry 2 is -1; sizes are >= 0");
  NNC_LUA_FAILS(L, "data.zeros({})", "zeros: a shape has 1 to 6 sizes, got 0");
  NNC_LUA_FAILS(L, "data.zeros({1e6, 1e6, 1e6})", "tensor: shape [1000000,1000000,1000000] needs 3.5 EiB, more than nnc's limit of 1.0 TiB per tensor");
}
END_TEST

START_TEST(test_index) {
  NNC_LUA_OK(L, "t = data.tensor({{1, 2, 3}, {4, 5, 6}}) v = data.tensor({7, 8}, 'i32')");
  ck_assert_int_eq(nnc_test_lua_num(L, "t[2][3]"), 6);
  ck_assert_str_eq(nnc_test_lua_str(L, "t[2]"), "tensor(f32[3]) {4, 5, 6}");
  ck_assert_str_eq(nnc_test_lua_str(L, "math.type(v[2])"), "integer");
  ck_assert_int_eq(nnc_test_lua_num(L, "v[2]"), 8);
  /* Past the ends is nil, as for tables, so ipairs stops at the last row. */
  ck_assert_str_eq(nnc_test_lua_str(L, "v[0] == nil and v[3] == nil and t[1.5] == nil"), "true");
  NNC_LUA_OK(L, "n = 0 for i, x in ipairs(v) do n = n + x end assert(n == 15)");
  NNC_LUA_FAILS(L, "return t.shap", "tensor has no field 'shap' (did you mean 'shape'?)");
  NNC_LUA_FAILS(L, "return t[true]", "indexed by row number or field name, not by a boolean");
  NNC_LUA_FAILS(L, "t[1] = 3", "tensors are read-only (assigning t[1])");
}
END_TEST

START_TEST(test_reshape) {
  NNC_LUA_OK(L, "t = data.tensor({{1, 2, 3}, {4, 5, 6}}) r = t:reshape{3, -1} f = t:reshape{6}");
  ck_assert_str_eq(nnc_test_lua_str(L, "r"), "tensor(f32[3,2]) {{1, 2}, {3, 4}, {5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "f"), "tensor(f32[6]) {1, 2, 3, 4, 5, 6}");
  nnc_tensor *t = global_tensor("t"), *r = global_tensor("r");
  ck_assert_ptr_eq(t->storage, r->storage);
  ck_assert_int_eq(t->storage->refs, 3);
  NNC_LUA_FAILS(L, "t:reshape{4, 2}",
                "reshape: cannot reshape f32[2,3] (6 elements) into [4,2] (8 elements)");
  NNC_LUA_FAILS(L, "t:reshape{4, -1}",
                "cannot reshape f32[2,3] (6 elements) into [4,-1]: 6 is not a multiple of 4");
  NNC_LUA_FAILS(L, "t:reshape{-1, -1}", "[-1,-1] has more than one -1");
  NNC_LUA_FAILS(L, "t:reshape{2, -3}", "shape entry 2 is -3; sizes are >= 0 (or -1 for one inferred size)");
  NNC_LUA_FAILS(L, "t:reshape{2, 'a'}", "reshape: shape entry 2 is a, expected a whole number");
  /* A reshaped slice starts where the slice does. */
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(2, 2):reshape{3}"), "tensor(f32[3]) {4, 5, 6}");
}
END_TEST

START_TEST(test_slice) {
  NNC_LUA_OK(L, "t = data.tensor({{1, 2}, {3, 4}, {5, 6}, {7, 8}})");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(2, 3)"), "tensor(f32[2,2]) {{3, 4}, {5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(4)"), "tensor(f32[1,2]) {{7, 8}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(-2, -1)"), "tensor(f32[2,2]) {{5, 6}, {7, 8}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(3, 2)"), "tensor(f32[0,2]) {}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(2, 4):slice(2, 2)"), "tensor(f32[1,2]) {{5, 6}}");
  NNC_LUA_FAILS(L, "t:slice(0, 2)", "slice(0, 2) is out of bounds for f32[4,2]: rows are 1..4");
  NNC_LUA_FAILS(L, "t:slice(2, 5)", "slice(2, 5) is out of bounds for f32[4,2]");
  NNC_LUA_FAILS(L, "t:slice(3, 1)", "slice(3, 1) is out of bounds");
  NNC_LUA_FAILS(L, "t:slice('a')", "bad argument #1 to 'slice'");
}
END_TEST

/* A view keeps the storage alive after its parent is collected. */
START_TEST(test_view_outlives_parent) {
  NNC_LUA_OK(L, "do local t = data.tensor({{1, 2}, {3, 4}, {5, 6}}) s = t:slice(2, 3) row = t[3] end");
  NNC_LUA_OK(L, "collectgarbage() collectgarbage()");
  nnc_tensor *s = global_tensor("s");
  ck_assert_int_eq(s->storage->refs, 2);
  ck_assert_str_eq(nnc_test_lua_str(L, "s"), "tensor(f32[2,2]) {{3, 4}, {5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "row"), "tensor(f32[2]) {5, 6}");
  NNC_LUA_OK(L, "row = nil collectgarbage()");
  ck_assert_int_eq(s->storage->refs, 1);
  ck_assert_int_eq(nnc_test_lua_num(L, "s[2][2]"), 6);
}
END_TEST

START_TEST(test_rows) {
  NNC_LUA_OK(L, "t = data.tensor({{1, 2}, {3, 4}, {5, 6}})");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:rows{3, 1, 3}"), "tensor(f32[3,2]) {{5, 6}, {1, 2}, {5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:rows(data.tensor({2}, 'i32'))"), "tensor(f32[1,2]) {{3, 4}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(2, 3):rows{2}"), "tensor(f32[1,2]) {{5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor({7, 8, 9}, 'i32'):rows{3, 2}"), "tensor(i32[2]) {9, 8}");
  /* rows copies: the result has storage of its own. */
  NNC_LUA_OK(L, "c = t:rows{1}");
  ck_assert_ptr_ne(global_tensor("c")->storage, global_tensor("t")->storage);
  NNC_LUA_FAILS(L, "t:rows{1, 4}", "rows: index entry 2 is 4, but f32[3,2] has rows 1..3");
  NNC_LUA_FAILS(L, "t:rows{0}", "index entry 1 is 0");
  NNC_LUA_FAILS(L, "t:rows(data.tensor{1.5})", "index entry 1 is 1.5");
  NNC_LUA_FAILS(L, "t:rows{1.5}", "tensor entry [1] is 1.5, not an i32 integer");
  NNC_LUA_FAILS(L, "t:rows{{1}}", "rows: the index must have rank 1, got i32[1,1]");
  NNC_LUA_FAILS(L, "t:rows(3)", "tensor or table of numbers expected");
}
END_TEST

START_TEST(test_arithmetic) {
  NNC_LUA_OK(L, "t = data.tensor({{2, 4}, {6, 8}}) i = data.tensor({255, 51}, 'i32')");
  ck_assert_str_eq(nnc_test_lua_str(L, "t / 2"), "tensor(f32[2,2]) {{1, 2}, {3, 4}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t * 0.5"), "tensor(f32[2,2]) {{1, 2}, {3, 4}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "3 * t"), "tensor(f32[2,2]) {{6, 12}, {18, 24}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t + 1"), "tensor(f32[2,2]) {{3, 5}, {7, 9}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t - 1"), "tensor(f32[2,2]) {{1, 3}, {5, 7}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "10 - t"), "tensor(f32[2,2]) {{8, 6}, {4, 2}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "8 / t"), "tensor(f32[2,2]) {{4, 2}, {1.3333334, 1}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "-t[1]"), "tensor(f32[2]) {-2, -4}");
  /* i32 promotes to f32; the division is float32's, as numpy's. */
  ck_assert_str_eq(nnc_test_lua_str(L, "i / 255"), "tensor(f32[2]) {1, 0.2}");
  ck_assert(nnc_test_lua_num(L, "(i / 255)[2]") == (double)(51.0f / 255.0f));
  /* Views compute from their own offset, not the storage start. */
  ck_assert_str_eq(nnc_test_lua_str(L, "t:slice(2, 2) + 0"), "tensor(f32[1,2]) {{6, 8}}");
  NNC_LUA_FAILS(L, "return t + t[1]",
                "tensor + tensor: shapes f32[2,2] and f32[2] differ; elementwise arithmetic needs equal shapes");
  NNC_LUA_FAILS(L, "return t * 'x'", "tensor * string: tensors combine with numbers and tensors of the same shape");
  NNC_LUA_FAILS(L, "return {} / t", "tensor / table");
}
END_TEST

/* Same-shape tensors combine elementwise in float32, whatever their dtypes. */
START_TEST(test_tensor_arithmetic) {
  NNC_LUA_OK(L, "a = data.tensor({{1, 2}, {3, 4}}) b = data.tensor({{10, 20}, {30, 40}}, 'i32') "
                "u = data.tensor({{1, 2}, {3, 255}}, 'u8')");
  ck_assert_str_eq(nnc_test_lua_str(L, "a + b"), "tensor(f32[2,2]) {{11, 22}, {33, 44}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "b - a"), "tensor(f32[2,2]) {{9, 18}, {27, 36}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "a * a"), "tensor(f32[2,2]) {{1, 4}, {9, 16}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "b / a"), "tensor(f32[2,2]) {{10, 10}, {10, 10}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "u - a"), "tensor(f32[2,2]) {{0, 0}, {0, 251}}");
  /* Reshaped views combine by element order, not storage position. */
  ck_assert_str_eq(nnc_test_lua_str(L, "a[2] - a[1]"), "tensor(f32[2]) {2, 2}");
  ck_assert(nnc_test_lua_num(L, "(u / 255.0)[2][2]") == 1.0);
  ck_assert(nnc_test_lua_num(L, "(u / 255.0)[1][2]") == (double)(2.0f / 255.0f));
}
END_TEST

/* u8 holds raw image bytes, as Keras's load_data gives them. */
START_TEST(test_u8) {
  NNC_LUA_OK(L, "u = data.tensor({{0, 128}, {255, 7}}, 'uint8')");
  ck_assert_str_eq(nnc_test_lua_str(L, "u"), "tensor(u8[2,2]) {{0, 128}, {255, 7}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "u.dtype"), "u8");
  ck_assert_str_eq(nnc_test_lua_str(L, "math.type(u[2][1])"), "integer");
  ck_assert_int_eq(nnc_test_lua_num(L, "u[2][1]"), 255);
  ck_assert_str_eq(nnc_test_lua_str(L, "u:reshape(-1)"), "tensor(u8[4]) {0, 128, 255, 7}");
  ck_assert_str_eq(nnc_test_lua_str(L, "u:rows{2}"), "tensor(u8[1,2]) {{255, 7}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.concat(u, u:slice(1, 1))"),
                   "tensor(u8[3,2]) {{0, 128}, {255, 7}, {0, 128}}");
  NNC_LUA_FAILS(L, "data.tensor({256}, 'u8')", "tensor entry [1] is 256, not a u8 integer");
  NNC_LUA_FAILS(L, "data.tensor({-1}, 'u8')", "tensor entry [1] is -1, not a u8 integer");
  NNC_LUA_FAILS(L, "data.tensor({1}, 'uint')", "unknown dtype 'uint' (did you mean 'uint8'?)");
}
END_TEST

/* x[idx] is x:rows(idx), as numpy's x[idx]; row numbers are 1-based like t[i]. */
START_TEST(test_index_by_rows) {
  NNC_LUA_OK(L, "t = data.tensor({{1, 2}, {3, 4}, {5, 6}})");
  ck_assert_str_eq(nnc_test_lua_str(L, "t[{3, 1, 3}]"), "tensor(f32[3,2]) {{5, 6}, {1, 2}, {5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "t[data.tensor({2}, 'i32')]"), "tensor(f32[1,2]) {{3, 4}}");
  NNC_LUA_FAILS(L, "return t[{4}]", "rows: index entry 1 is 4, but f32[3,2] has rows 1..3");
}
END_TEST

START_TEST(test_reshape_positional) {
  NNC_LUA_OK(L, "t = data.zeros({6, 4})");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(t:reshape(-1, 2, 2, 1).shape, 'x')"), "6x2x2x1");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(t:reshape(24).shape, 'x')"), "24");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(t:reshape(3, -1).shape, 'x')"), "3x8");
  NNC_LUA_FAILS(L, "t:reshape(-1, -1)", "more than one -1");
  NNC_LUA_FAILS(L, "t:reshape(5, -1)", "24 is not a multiple of 5");
  NNC_LUA_FAILS(L, "t:reshape(2, 'x')", "shape entry 2 is x, expected a whole number");
}
END_TEST

START_TEST(test_astype) {
  NNC_LUA_OK(L, "f = data.tensor({0, 1.9, -2.7, 255}) u = data.tensor({3, 250}, 'u8')");
  ck_assert_str_eq(nnc_test_lua_str(L, "f:astype('int32')"), "tensor(i32[4]) {0, 1, -2, 255}");
  ck_assert_str_eq(nnc_test_lua_str(L, "u:astype('float32')"), "tensor(f32[2]) {3, 250}");
  ck_assert_str_eq(nnc_test_lua_str(L, "u:astype('float32') / 255"), "tensor(f32[2]) {0.011764706, 0.98039216}");
  ck_assert_str_eq(nnc_test_lua_str(L, "u:astype('i32')"), "tensor(i32[2]) {3, 250}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor({7, 0}, 'i32'):astype('uint8')"), "tensor(u8[2]) {7, 0}");
  /* A copy, never a view. */
  ck_assert_str_eq(nnc_test_lua_str(L, "rawequal(f:astype('f32'), f)"), "false");
  NNC_LUA_FAILS(L, "f:astype('uint8')", "astype: element 3 is -2.7, outside u8's range 0..255");
  NNC_LUA_FAILS(L, "data.tensor{0/0}:astype('i32')", "astype: element 1 is");
  NNC_LUA_FAILS(L, "f:astype()", "astype: name a dtype");
}
END_TEST

/* argmax counts axes as numpy does; values are 0-based indices (class labels). */
START_TEST(test_argmax) {
  NNC_LUA_OK(L, "p = data.tensor({{0.1, 0.7, 0.2}, {0.5, 0.2, 0.5}, {0, 0, 1}})");
  ck_assert_str_eq(nnc_test_lua_str(L, "p:argmax(1)"), "tensor(i32[3]) {1, 0, 2}");
  ck_assert_str_eq(nnc_test_lua_str(L, "p:argmax(-1)"), "tensor(i32[3]) {1, 0, 2}");
  ck_assert_str_eq(nnc_test_lua_str(L, "p:argmax(0)"), "tensor(i32[3]) {1, 0, 2}");
  ck_assert_int_eq(nnc_test_lua_num(L, "p:argmax()"), 8);
  ck_assert_int_eq(nnc_test_lua_num(L, "p[1]:argmax(0)"), 1);
  ck_assert_str_eq(nnc_test_lua_str(L, "data.zeros{2, 3, 4}:argmax(1).shape[2]"), "4");
  NNC_LUA_OK(L, "c = data.tensor({{{1, 9}, {5, 2}}, {{0, 3}, {8, 8}}}, 'i32')");
  ck_assert_str_eq(nnc_test_lua_str(L, "c:argmax(0)"), "tensor(i32[2,2]) {{0, 0}, {1, 1}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "c:argmax(1)"), "tensor(i32[2,2]) {{1, 0}, {1, 1}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "c:argmax(2)"), "tensor(i32[2,2]) {{1, 0}, {1, 0}}");
  NNC_LUA_FAILS(L, "p:argmax(2)", "argmax: axis 2 is outside -2..1 for f32[3,3]");
  NNC_LUA_FAILS(L, "data.zeros{0}:argmax()", "argmax of an empty tensor f32[0]");
}
END_TEST

START_TEST(test_reductions) {
  NNC_LUA_OK(L, "f = data.tensor({{-1.5, 2}, {4, -0.5}}) i = data.tensor({3, -7, 5}, 'i32') "
                "u = data.tensor({200, 100}, 'u8')");
  ck_assert(nnc_test_lua_num(L, "f:sum()") == 4.0);
  ck_assert(nnc_test_lua_num(L, "f:mean()") == 1.0);
  ck_assert(nnc_test_lua_num(L, "f:min()") == -1.5);
  ck_assert(nnc_test_lua_num(L, "f:max()") == 4.0);
  ck_assert_str_eq(nnc_test_lua_str(L, "f:abs()"), "tensor(f32[2,2]) {{1.5, 2}, {4, 0.5}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "i:abs()"), "tensor(i32[3]) {3, 7, 5}");
  ck_assert_str_eq(nnc_test_lua_str(L, "math.type(i:sum()) .. ' ' .. i:sum()"), "integer 1");
  ck_assert_str_eq(nnc_test_lua_str(L, "i:min() .. ' ' .. i:max()"), "-7 5");
  /* u8 sums do not wrap at 255. */
  ck_assert_str_eq(nnc_test_lua_str(L, "u:sum()"), "300");
  ck_assert(nnc_test_lua_num(L, "u:mean()") == 150.0);
  ck_assert(nnc_test_lua_num(L, "(f - f:abs()):abs():max()") == 3.0);
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor{1, 0/0, 3}:max() ~= data.tensor{1, 0/0, 3}:max()"), "true");
  NNC_LUA_FAILS(L, "data.zeros{0}:min()", "min of an empty tensor f32[0]");
  NNC_LUA_FAILS(L, "return f:summ()", "tensor has no field 'summ' (did you mean 'sum'?)");
}
END_TEST

START_TEST(test_confusion_matrix) {
  NNC_LUA_OK(L, "yt = data.tensor({0, 1, 2, 2, 1}, 'i32') yp = data.tensor({0, 2, 2, 1, 1}, 'i32')");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.confusion_matrix(yt, yp)"),
                   "tensor(i32[3,3]) {{1, 0, 0}, {0, 1, 1}, {0, 1, 1}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.confusion_matrix(yt, yp, 4):sum()"), "5");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.confusion_matrix({1, 1}, {0, 1}, 2)"),
                   "tensor(i32[2,2]) {{0, 0}, {1, 1}}");
  NNC_LUA_FAILS(L, "data.confusion_matrix(yt, yp, 2)", "confusion_matrix: label 2 is outside 0..1 for 2 classes");
  NNC_LUA_FAILS(L, "data.confusion_matrix(yt, data.zeros{5, 3})", "(for predicted probabilities, pass y_pred:argmax(-1))");
  NNC_LUA_FAILS(L, "data.confusion_matrix(yt, data.tensor{0, 1, 2, 2, 0.5})", "y_pred element 5 is 0.5");
}
END_TEST

START_TEST(test_tostring) {
  ck_assert_str_eq(nnc_test_lua_str(L, "data.tensor{0.1, -2.5, 1e-7, 1e10, 3e38 * 10}"),
                   "tensor(f32[5]) {0.1, -2.5, 1e-07, 1e+10, inf}");
  const char *full = nnc_test_lua_str(L, "data.zeros{10, 10}");
  ck_assert_msg(!strstr(full, "..."), "100 elements print in full: %s", full);
  ck_assert_str_eq(nnc_test_lua_str(L, "data.zeros{101}"), "tensor(f32[101]) ...");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.zeros{60000, 28, 28, 1}"), "tensor(f32[60000,28,28,1]) ...");
  /* The printed values read back through data.tensor. */
  NNC_LUA_OK(L,
             "t = data.tensor{{0.1, 2}, {3, 4}} "
             "u = data.tensor(load('return ' .. tostring(t):match('%) (.*)$'))()) "
             "assert(tostring(t) == tostring(u))");
}
END_TEST

START_TEST(test_concat) {
  NNC_LUA_OK(L, "a = data.tensor({{1, 2}}) b = data.tensor({{3, 4}, {5, 6}})");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.concat(a, b)"), "tensor(f32[3,2]) {{1, 2}, {3, 4}, {5, 6}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.concat(b:slice(2, 2), a, a)"),
                   "tensor(f32[3,2]) {{5, 6}, {1, 2}, {1, 2}}");
  ck_assert_str_eq(nnc_test_lua_str(L, "data.concat(data.tensor({1}, 'i32'), data.tensor({2, 3}, 'i32'))"),
                   "tensor(i32[3]) {1, 2, 3}");
  NNC_LUA_FAILS(L, "data.concat(a, data.tensor({{1, 2, 3}}))",
                "concat: argument 2 is f32[1,3] but argument 1 is f32[1,2]; dtypes and all sizes but the "
                "first must match");
  NNC_LUA_FAILS(L, "data.concat(a, data.tensor({{1, 2}}, 'i32'))",
                "argument 2 is i32[1,2] but argument 1 is f32[1,2]");
  NNC_LUA_FAILS(L, "data.concat()", "concat: expected at least one tensor");
  NNC_LUA_FAILS(L, "data.concat(a, {})", "bad argument #2 to 'concat' (nnc.tensor expected, got table)");
}
END_TEST

/* A finalizer elsewhere can hand back a tensor already finalized. */
START_TEST(test_use_after_finalize) {
  NNC_LUA_OK(L, "local t = data.tensor{1, 2} getmetatable(t).__gc(t) saved = t");
  NNC_LUA_FAILS(L, "return #saved", "tensor used after it was finalized");
  NNC_LUA_FAILS(L, "return saved:slice(1)", "tensor used after it was finalized");
  NNC_LUA_FAILS(L, "return saved * 2", "tensor *: tensor used after it was finalized");
}
END_TEST

/* Errors carry the calling script's line. */
START_TEST(test_error_location) {
  NNC_LUA_FAILS(L, "local t = data.zeros{2}\nlocal u = t:reshape{3}", "]:2: reshape: cannot reshape");
}
END_TEST

TCase *nnc_tensor_tcase(void) {
  TCase *tc = tcase_create("tensor");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_from_table_and_fields);
  tcase_add_test(tc, test_from_table_errors);
  tcase_add_test(tc, test_index);
  tcase_add_test(tc, test_reshape);
  tcase_add_test(tc, test_slice);
  tcase_add_test(tc, test_view_outlives_parent);
  tcase_add_test(tc, test_rows);
  tcase_add_test(tc, test_arithmetic);
  tcase_add_test(tc, test_tensor_arithmetic);
  tcase_add_test(tc, test_u8);
  tcase_add_test(tc, test_index_by_rows);
  tcase_add_test(tc, test_reshape_positional);
  tcase_add_test(tc, test_astype);
  tcase_add_test(tc, test_argmax);
  tcase_add_test(tc, test_reductions);
  tcase_add_test(tc, test_confusion_matrix);
  tcase_add_test(tc, test_tostring);
  tcase_add_test(tc, test_concat);
  tcase_add_test(tc, test_use_after_finalize);
  tcase_add_test(tc, test_error_location);
  return tc;
}
