/* Keras 2 HDF5 weights: the layout checked by h5py against Keras's
 * save_weights_to_hdf5_group, values against the safetensors save of the
 * same model, files written by h5py alone loaded by nnc, and bad files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/files/suites.h"
#include "tests/testutil.h"

/* conv2d 3x3x1x3, flatten, dense 48x4: trained a little so no weight is zero. */
static const char *small_model =
    "local function make(opts)\n"
    "  local m = nn.Sequential { nn.Conv2D { 3, 3, activation = 'relu', input_shape = { 6, 6, 1 } },\n"
    "    nn.Flatten(), nn.Dense { 4, activation = 'softmax' } }\n"
    "  m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "  return m\n"
    "end\n"
    "local x = data.zeros { 8, 6, 6, 1 } + 0.5\n"
    "local y = data.tensor({ 0, 1, 2, 3, 0, 1, 2, 3 }, 'i32')\n"
    "local m = make()\n"
    "m:fit(x, y, { epochs = 2, batch_size = 4, verbose = 0 })\n";

START_TEST(sequential_weights_in_keras_layout) {
  char text[4096];
  snprintf(text, sizeof text, "%sm:save_weights('w.h5')\nm:save_weights('w.safetensors')\n", small_model);
  free(files_nnc_ok(text));
  free(files_py_ok("h5-layout w.h5 w.safetensors conv2d=kernel:3x3x1x3,bias:3 flatten= dense=kernel:48x4,bias:4"));
}
END_TEST

/* A functional model lists its InputLayer, as Keras's model.layers does. */
START_TEST(functional_weights_in_keras_layout) {
  const char *text =
      "local inputs = nn.Input { 5 }\n"
      "local h = nn.Dense { 3, activation = 'relu', name = 'hidden' }(inputs)\n"
      "local m = nn.Model { inputs = inputs, outputs = nn.Dense { 2 }(h) }\n"
      "m:save_weights('f.weights.h5')\nm:save_weights('f.safetensors')\n";
  free(files_nnc_ok(text));
  free(files_py_ok("h5-layout f.weights.h5 f.safetensors input_1= hidden=kernel:5x3,bias:3 dense=kernel:3x2,bias:2"));
}
END_TEST

/* A BatchNormalization without beta (center=false) holds gamma and the
 * moving statistics, one without gamma (scale=false) beta and them, as
 * Keras 2 saves them. */
START_TEST(batch_norm_weights_in_keras_layout) {
  free(files_nnc_ok("local m = nn.Sequential { nn.Dense { 3, input_shape = { 4 } },\n"
                    "  nn.BatchNormalization { center = false }, nn.BatchNormalization { scale = false } }\n"
                    "m:compile { optimizer = 'adam', loss = 'mse' }\n"
                    "m:fit(data.tensor { { 1, 2, 3, 4 }, { 0, 1, -1, 2 } }, data.tensor { { 1, 0, 1 }, { 0, 1, 0 } },\n"
                    "  { epochs = 2, batch_size = 2, verbose = 0 })\n"
                    "m:save_weights('bn.h5')\nm:save_weights('bn.safetensors')\n"));
  free(files_py_ok("h5-layout bn.h5 bn.safetensors dense=kernel:4x3,bias:3 "
                   "batch_normalization=gamma:3,moving_mean:3,moving_variance:3 "
                   "batch_normalization_1=beta:3,moving_mean:3,moving_variance:3"));
}
END_TEST

/* h5py writes Keras's layout with other layer names (matched by order, as
 * Keras's load_weights does), fixed- or variable-length names, float32 or
 * float64 data; nnc loads it and its safetensors save holds the values. */
static void load_h5py_file(const char *flags) {
  char args[256], text[4096];
  snprintf(args, sizeof args, "h5-write keras.h5 %s", flags);
  free(files_py_ok(args));
  snprintf(text, sizeof text, "%sm:load_weights('keras.h5')\nm:save_weights('loaded.safetensors')\n", small_model);
  free(files_nnc_ok(text));
  free(files_py_ok("h5-matches loaded.safetensors"));
}

START_TEST(loads_a_file_h5py_wrote) { load_h5py_file(""); }
END_TEST

START_TEST(loads_variable_length_names_and_float64) { load_h5py_file("--vlen"); }
END_TEST

/* A round trip through .h5 evaluates bit for bit the same. */
START_TEST(round_trip_evaluates_identically) {
  char text[4096], *out;
  snprintf(text, sizeof text,
           "%s"
           "m:save_weights('rt.h5')\n"
           "local other = make()\n"
           "other:load_weights('rt.h5')\n"
           "print(string.format('%%a %%a', m:evaluate(x, y, { verbose = 0 }), other:evaluate(x, y, { verbose = 0 })))\n",
           small_model);
  out = files_nnc_ok(text);
  char a[64], b[64];
  ck_assert_int_eq(sscanf(out, "%63s %63s", a, b), 2);
  ck_assert_str_eq(a, b);
  free(out);
}
END_TEST

/* Runs `load` after saving good weights; the load must fail with every
 * fragment in its message and leave the model's loss unchanged. */
static void expect_load_error(const char *prepare, const char *load, const char *const *fragments) {
  char text[8192], *out, *err;
  snprintf(text, sizeof text,
           "%s%s"
           "local before = m:evaluate(x, y, { verbose = 0 })\n"
           "local ok, msg = pcall(function() %s end)\n"
           "print(ok, before == m:evaluate(x, y, { verbose = 0 }))\n"
           "%s\n",
           small_model, prepare, load, load);
  int rc = files_nnc(text, &out, &err);
  ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
  ck_assert_str_eq(out, "false\ttrue\n");
  for (; *fragments; fragments++) ck_assert_msg(strstr(err, *fragments), "expected '%s' in: %s", *fragments, err);
  ck_assert_msg(!strstr(err, "traceback"), "%s", err);
  free(out), free(err);
}

START_TEST(truncated_file_is_an_error) {
  const char *frags[] = {"script.lua:", "cut.h5", "not a readable HDF5 file", NULL};
  expect_load_error("m:save_weights('good.h5')\n"
                    "local f = io.open('good.h5', 'rb'); local s = f:read('a'); f:close()\n"
                    "f = io.open('cut.h5', 'wb'); f:write(s:sub(1, #s // 2)); f:close()\n",
                    "m:load_weights('cut.h5')", frags);
}
END_TEST

START_TEST(file_of_another_model_is_an_error) {
  const char *frags[] = {"script.lua:", "other.h5", "dense", "(48, 4)", "(48, 7)", NULL};
  expect_load_error("local o = nn.Sequential { nn.Conv2D { 3, 3, input_shape = { 6, 6, 1 } }, nn.Flatten(),\n"
                    "  nn.Dense { 7 } }\n"
                    "o:save_weights('other.h5')\n",
                    "m:load_weights('other.h5')", frags);
  const char *count[] = {"fewer.h5", "1 layer(s)", "2 layer(s)", NULL};
  expect_load_error("nn.Sequential { nn.Dense { 2, input_shape = { 3 } } }:save_weights('fewer.h5')\n",
                    "m:load_weights('fewer.h5')", count);
  const char *none[] = {"notes.h5", "not a readable HDF5 file", NULL};
  expect_load_error("local f = io.open('notes.h5', 'w'); f:write('plain text'); f:close()\n",
                    "m:load_weights('notes.h5')", none);
  const char *missing[] = {"absent.h5", "cannot open", NULL};
  expect_load_error("", "m:load_weights('absent.h5')", missing);
}
END_TEST

/* save_weights used to write safetensors under any name; now the name
 * decides, and a name nnc cannot honour is an error. */
START_TEST(extension_chooses_the_format) {
  char text[4096], *out, *err;
  snprintf(text, sizeof text, "%sm:save_weights('w.ckpt')\n", small_model);
  ck_assert_int_eq(files_nnc(text, &out, &err), 1);
  ck_assert_msg(strstr(err, "script.lua:11:") && strstr(err, ".h5") && strstr(err, ".safetensors"), "%s", err);
  free(out), free(err);
  snprintf(text, sizeof text, "%sm:save_weights('/nonexistent/dir/w.h5')\n", small_model);
  ck_assert_int_eq(files_nnc(text, &out, &err), 1);
  ck_assert_msg(strstr(err, "cannot write /nonexistent/dir/w.h5"), "%s", err);
  free(out), free(err);
}
END_TEST

TCase *tcase_h5_weights(void) {
  TCase *tc = tcase_create("h5_weights");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, sequential_weights_in_keras_layout);
  tcase_add_test(tc, functional_weights_in_keras_layout);
  tcase_add_test(tc, batch_norm_weights_in_keras_layout);
  tcase_add_test(tc, loads_a_file_h5py_wrote);
  tcase_add_test(tc, loads_variable_length_names_and_float64);
  tcase_add_test(tc, round_trip_evaluates_identically);
  tcase_add_test(tc, truncated_file_is_an_error);
  tcase_add_test(tc, file_of_another_model_is_an_error);
  tcase_add_test(tc, extension_chooses_the_format);
  return tc;
}
