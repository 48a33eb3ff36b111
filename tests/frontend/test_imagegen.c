/* data.ImageDataGenerator and flow() from Lua: options as Keras spells them,
 * clear errors with the script line, seeded and repeatable iterators, and
 * seed 001's one-big-batch spelling. The transform itself is checked
 * against SciPy in tests/runtime/test_augment.c. */
#include "tests/frontend/lua_harness.h"
#include "tests/frontend/suites.h"

static lua_State *L;

static void setup(void) {
  L = nnc_test_lua_new();
  /* 12 images of 6x5, one channel, pixel = 10 * image + column. */
  NNC_LUA_OK(L, "local t = {} for i = 1, 12 do t[i] = {} for r = 1, 6 do t[i][r] = {} for c = 1, 5 do "
                "t[i][r][c] = {10 * i + c} end end end x = data.tensor(t) "
                "local l = {} for i = 1, 12 do l[i] = i - 1 end y = data.tensor(l, 'i32')");
}

static void teardown(void) { lua_close(L); }

START_TEST(test_generator_options) {
  NNC_LUA_OK(L, "g = data.ImageDataGenerator { rotation_range = 10, zoom_range = 0.1, shear_range = 0.5, "
                "width_shift_range = 0.1, height_shift_range = 0.1, horizontal_flip = true, fill_mode = 'constant', "
                "cval = 0, rescale = 1 / 255, featurewise_center = false, data_format = 'channels_last' }");
  NNC_LUA_OK(L, "data.ImageDataGenerator() data.ImageDataGenerator {} data.ImageDataGenerator { zoom_range = {0.5, 1} }");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { rotation_rang = 10 }",
                "ImageDataGenerator got an unknown option 'rotation_rang' (did you mean 'rotation_range'?)");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { rotation_range = -10 }",
                "ImageDataGenerator: rotation_range is -10; ranges are >= 0");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { width_shift_range = -0.1 }", "width_shift_range is -0.1; ranges are >= 0");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { width_shift_range = {-1, 0, 1} }", "a list of values is not supported");
  /* inf would reach the sampler as a coordinate and an integer cast. */
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { width_shift_range = 1/0 }", "width_shift_range is inf; ranges are finite");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { rotation_range = math.huge }", "rotation_range is inf; ranges are finite");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { zoom_range = 1.5 }", "zoom_range gives zoom factors -0.5..2.5");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { zoom_range = {1.2, 0.8} }", "lower <= upper");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { fill_mode = 'neares' }",
                "unknown fill_mode 'neares' (did you mean 'nearest'?) (valid: nearest, constant, reflect, wrap)");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { featurewise_center = true }",
                "ImageDataGenerator: featurewise_center = true is not supported by nnc");
  NNC_LUA_FAILS(L, "data.ImageDataGenerator { brightness_range = {0.5, 1.5} }", "brightness_range");
  /* The script's own line, not the binding's. */
  NNC_LUA_FAILS(L, "local a = 1\nlocal g = data.ImageDataGenerator { shear_range = -1 }", "]:2: ImageDataGenerator");
}
END_TEST

START_TEST(test_flow_batches) {
  NNC_LUA_OK(L, "g = data.ImageDataGenerator { rotation_range = 20, horizontal_flip = true } "
                "it = g:flow(x, y, { batch_size = 5, seed = 7 })");
  ck_assert_int_eq(nnc_test_lua_num(L, "#it"), 3);
  ck_assert_int_eq(nnc_test_lua_num(L, "it.n"), 12);
  ck_assert_int_eq(nnc_test_lua_num(L, "it.batch_size"), 5);
  /* One epoch: 5, 5 and 2 rows, every label once. */
  NNC_LUA_OK(L, "seen = {} sizes = {} for b = 1, 3 do local xb, yb = it:next() sizes[b] = #xb "
                "assert(#yb == #xb and xb.dtype == 'f32' and table.concat(xb.shape, ',', 2) == '6,5,1') "
                "for i = 1, #yb do seen[yb[i]] = (seen[yb[i]] or 0) + 1 end end");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(sizes, ',')"), "5,5,2");
  NNC_LUA_OK(L, "for k = 0, 11 do assert(seen[k] == 1, 'label ' .. k) end");
  /* The same seed repeats its batches; the next epoch is another shuffle. */
  NNC_LUA_OK(L, "a = g:flow(x, y, { batch_size = 5, seed = 7 }) b = g:flow(x, y, { batch_size = 5, seed = 7 }) "
                "c = g:flow(x, y, { batch_size = 5, seed = 8 }) "
                "xa, ya = a:next() xb, yb = b:next() xc, yc = c:next() "
                "assert((xa - xb):abs():max() == 0 and (ya - yb):abs():max() == 0) "
                "assert((xa - xc):abs():max() > 0) "
                "a:next() a:next() xa2, ya2 = a:next() assert((ya2 - ya):abs():max() > 0)");
  /* reset() starts over. */
  NNC_LUA_OK(L, "a:reset() xr, yr = a:next() assert((xr - xb):abs():max() == 0)");
  /* u8 images give what the same values as f32 give. */
  NNC_LUA_OK(L, "u = data.tensor({{{{1}, {2}}, {{3}, {250}}}}, 'u8') "
                "fu = g:flow(u, { seed = 3 }):next() ff = g:flow(u:astype('f32'), { seed = 3 }):next() "
                "assert((fu - ff):abs():max() == 0 and fu.dtype == 'f32')");
}
END_TEST

/* Seed 001: gen.flow(x[idx], batch_size=30000, shuffle=False).next(), then
 * concatenated to the training set. */
START_TEST(test_seed001_spelling) {
  NNC_LUA_OK(L, "gen = data.ImageDataGenerator { rotation_range = 10, zoom_range = 0.1, shear_range = 0.5, "
                "width_shift_range = 0.1, height_shift_range = 0.1, horizontal_flip = true } "
                "idx = {} for i = 1, 8 do idx[i] = (i * 5) % 12 + 1 end "
                "x_aug = gen:flow(x[idx], { batch_size = 8, shuffle = false }):next() "
                "y_aug = y[idx] "
                "x_all = data.concat(x, x_aug) y_all = data.concat(y, y_aug)");
  ck_assert_str_eq(nnc_test_lua_str(L, "table.concat(x_all.shape, ',')"), "20,6,5,1");
  ck_assert_str_eq(nnc_test_lua_str(L, "y_aug"), "tensor(i32[8]) {5, 10, 3, 8, 1, 6, 11, 4}");
  /* Unshuffled, image i comes from row idx[i]: its mean is near that row's. */
  NNC_LUA_OK(L, "for i = 1, 8 do local want = x[idx[i]]:mean() "
                "assert(math.abs(x_aug[i]:mean() - want) < 8, i .. ': ' .. x_aug[i]:mean() .. ' vs ' .. want) end");
}
END_TEST

START_TEST(test_flow_errors) {
  NNC_LUA_OK(L, "g = data.ImageDataGenerator { rotation_range = 5 }");
  NNC_LUA_FAILS(L, "g:flow(x:reshape(12, 6, 5))",
                "flow: x must be images f32 or u8 [N,rows,cols,channels], got f32[12,6,5] (add the channel axis: "
                "x:reshape(-1, rows, cols, 1))");
  NNC_LUA_FAILS(L, "g:flow(x, y:slice(1, 3))", "flow: x f32[12,6,5,1] and y i32[3] must have the same number of rows");
  NNC_LUA_FAILS(L, "g:flow(x, y, { batch_sise = 4 })", "flow got an unknown option 'batch_sise' (did you mean 'batch_size'?)");
  NNC_LUA_FAILS(L, "g:flow(x, y, { batch_size = 0 })", "flow: batch_size must be a positive integer, got 0");
  NNC_LUA_FAILS(L, "g:flow(x, y, { save_to_dir = '/tmp' })", "flow: save_to_dir is not supported by nnc");
  NNC_LUA_FAILS(L, "g:flow(x):nxt()", "iterator has no field 'nxt' (did you mean 'next'?)");
  NNC_LUA_FAILS(L, "\ng:flow(x, y, { seed = 1.5 })", "]:2: flow: seed must be an integer, got 1.5");
}
END_TEST

TCase *nnc_imagegen_tcase(void) {
  TCase *tc = tcase_create("imagegen");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_generator_options);
  tcase_add_test(tc, test_flow_batches);
  tcase_add_test(tc, test_seed001_spelling);
  tcase_add_test(tc, test_flow_errors);
  return tc;
}
