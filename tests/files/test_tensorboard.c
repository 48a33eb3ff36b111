/* nn.TensorBoard: the event files decoded by protoc's Python output of
 * runtime/store/tensorboard.proto (python3-protobuf), the TFRecord CRCs checked
 * by a bitwise CRC32C, scalars against the history, histograms, the graph;
 * and an unwritable log_dir failing before training. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/files/suites.h"

static const char *setup =
    "local rows, labels = {}, {}\n"
    "for i = 1, 40 do rows[i] = { (i % 7) / 7, (i % 3) / 3, (i % 5) / 5 }; labels[i] = i % 2 end\n"
    "local x, y = data.tensor(rows), data.tensor(labels, 'i32')\n"
    "local m = nn.Sequential { nn.Dense { 8, activation = 'relu', input_shape = { 3 } },\n"
    "  nn.Dense { 2, activation = 'softmax' } }\n"
    "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "local function dump(h)\n"
    "  local f = io.open('history.txt', 'w')\n"
    "  for _, k in ipairs { 'loss', 'accuracy', 'val_loss', 'val_accuracy' } do\n"
    "    local v = {}\n"
    "    for i, x in ipairs(h[k]) do v[i] = string.format('%.17g', x) end\n"
    "    f:write(k, ' ', table.concat(v, ' '), '\\n')\n"
    "  end\n"
    "  f:close()\n"
    "end\n";

static void sh_ok(const char *cmd) {
  char *out, *err;
  int rc = files_sh(cmd, &out, &err);
  ck_assert_msg(rc == 0, "%s: exit %d\n%s%s", cmd, rc, out, err);
  free(out), free(err);
}

static void run_and_check(const char *callback, const char *log_dir, int freq, int batches) {
  char text[8192], cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf %s pb && mkdir pb && protoc --python_out=pb -I\"%s/runtime/store\" tensorboard.proto",
           log_dir, NNC_SOURCE_DIR);
  sh_ok(cmd);
  snprintf(text, sizeof text,
           "%sdump(m:fit(x, y, { epochs = 3, batch_size = 8, validation_split = 0.25, verbose = 0,\n"
           "  callbacks = { %s } }))\n",
           setup, callback);
  free(files_nnc_ok(text));
  snprintf(cmd, sizeof cmd, "tb-check pb %s history.txt %d %d", log_dir, freq, batches);
  free(files_py_ok(cmd));
}

START_TEST(epoch_scalars_histograms_graph) {
  run_and_check("nn.TensorBoard { log_dir = 'tb', histogram_freq = 2 }", "tb", 2, 0);
}
END_TEST

/* 30 training rows at batch 8: 4 batches an epoch, 12 in 3 epochs. */
START_TEST(batch_scalars) {
  run_and_check("nn.TensorBoard { log_dir = 'tbb/run1', update_freq = 'batch', histogram_freq = 1 }", "tbb/run1", 1,
                12);
}
END_TEST

START_TEST(unwritable_log_dir) {
  char text[8192], *out, *err;
  snprintf(text, sizeof text,
           "%sm:fit(x, y, { epochs = 3, verbose = 1, callbacks = { nn.TensorBoard { log_dir = '/proc/nnc-logs' } } })\n",
           setup);
  int rc = files_nnc(text, &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "script.lua:16:") && strstr(err, "/proc/nnc-logs"), "%s", err);
  ck_assert_msg(!strstr(out, "Epoch 1/3"), "trained before failing: %s", out);
  free(out), free(err);
  snprintf(text, sizeof text, "%snn.TensorBoard { log_dir = 'x', write_images = 1 }\n", setup);
  rc = files_nnc(text, &out, &err);
  ck_assert_msg(rc == 1 && strstr(err, "write_images must be true or false"), "%s", err);
  free(out), free(err);
}
END_TEST

/* write_images: a conv kernel [3,3,1,4] is 3 of its 4 3x3 images, a dense
 * kernel [36,2] one 2x36 image, a bias of n one n x 1 image; each PNG is
 * decoded by PIL and compared, pixel for pixel, with Keras's formula on
 * the weights saved after the last epoch. */
START_TEST(weight_images) {
  sh_ok("rm -rf tbi pb && mkdir pb && protoc --python_out=pb -I\"" NNC_SOURCE_DIR "/runtime/store\" tensorboard.proto");
  free(files_nnc_ok("local rows, labels = {}, {}\n"
                    "for i = 1, 12 do\n"
                    "  local img = {}\n"
                    "  for r = 1, 5 do img[r] = {} for c = 1, 5 do img[r][c] = { ((i * 3 + r * c) % 7) / 7 } end end\n"
                    "  rows[i], labels[i] = img, i % 2\n"
                    "end\n"
                    "local m = nn.Sequential { nn.Conv2D { 4, 3, activation = 'relu', input_shape = { 5, 5, 1 } },\n"
                    "  nn.Flatten(), nn.Dense { 2, activation = 'softmax' } }\n"
                    "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy' }\n"
                    "m:fit(data.tensor(rows), data.tensor(labels, 'i32'), { epochs = 2, batch_size = 4, verbose = 0,\n"
                    "  callbacks = { nn.TensorBoard { log_dir = 'tbi', histogram_freq = 1, write_images = true } } })\n"
                    "m:save_weights('final.safetensors')\n"));
  char *out = files_py_ok("tb-images pb tbi final.safetensors 2");
  ck_assert_str_eq(out, "6\n");
  free(out);
}
END_TEST

TCase *tcase_tensorboard(void) {
  TCase *tc = tcase_create("tensorboard");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, epoch_scalars_histograms_graph);
  tcase_add_test(tc, batch_scalars);
  tcase_add_test(tc, unwritable_log_dir);
  tcase_add_test(tc, weight_images);
  return tc;
}
