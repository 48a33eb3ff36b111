/* CSVLogger and ModelCheckpoint: the CSV read by Python's csv module
 * against the history, checkpoint names against Python's str.format of
 * the same pattern, each checkpoint a complete Keras model for h5py, and a
 * kill -9 in the middle of a checkpoint loop leaving only complete files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/files/suites.h"
#include "tests/testutil.h"

/* A small model with validation; dump(h) writes the history to
 * history.txt, one 'key v1 v2 ...' line per log key. */
static const char *setup =
    "local rows, labels = {}, {}\n"
    "for i = 1, 40 do rows[i] = { (i % 7) / 7, (i % 3) / 3, (i % 5) / 5 }; labels[i] = i % 2 end\n"
    "local x, y = data.tensor(rows), data.tensor(labels, 'i32')\n"
    "local m = nn.Sequential { nn.Dense { 8, activation = 'relu', input_shape = { 3 } },\n"
    "  nn.Dense { 2, activation = 'softmax' } }\n"
    "m:compile { optimizer = nn.Adam { learning_rate = 0.05 }, loss = 'sparse_categorical_crossentropy',\n"
    "  metrics = { 'accuracy' } }\n"
    "local function dump(h, path)\n"
    "  local f = io.open(path or 'history.txt', 'w')\n"
    "  for _, k in ipairs { 'loss', 'accuracy', 'val_loss', 'val_accuracy' } do\n"
    "    local v = {}\n"
    "    for i, x in ipairs(h[k]) do v[i] = string.format('%.17g', x) end\n"
    "    f:write(k, ' ', table.concat(v, ' '), '\\n')\n"
    "  end\n"
    "  f:close()\n"
    "end\n";

static void run(const char *body) {
  char text[8192];
  snprintf(text, sizeof text, "%s%s", setup, body);
  free(files_nnc_ok(text));
}

static void sh_ok(const char *cmd) {
  char *out, *err;
  int rc = files_sh(cmd, &out, &err);
  ck_assert_msg(rc == 0, "%s: exit %d\n%s%s", cmd, rc, out, err);
  free(out), free(err);
}

START_TEST(csv_logger_rows_match_history) {
  run("dump(m:fit(x, y, { epochs = 4, batch_size = 8, validation_split = 0.25, verbose = 0,\n"
      "  callbacks = { nn.CSVLogger('log.csv') } }))\n");
  free(files_py_ok("csv-check log.csv history.txt"));
  /* append: a second fit adds rows under the same header; separator ';' */
  run("local cb = nn.CSVLogger('semi.csv', { separator = ';', append = true })\n"
      "m:fit(x, y, { epochs = 4, batch_size = 8, validation_split = 0.25, verbose = 0, callbacks = { cb } })\n"
      "dump(m:fit(x, y, { epochs = 4, batch_size = 8, validation_split = 0.25, verbose = 0, callbacks = { cb } }))\n");
  free(files_py_ok("csv-check semi.csv history.txt ';' 2"));
}
END_TEST

START_TEST(checkpoint_names_from_logs) {
  sh_ok("rm -rf ck && mkdir ck");
  run("dump(m:fit(x, y, { epochs = 5, batch_size = 8, validation_split = 0.25, verbose = 0,\n"
      "  callbacks = { nn.ModelCheckpoint { 'ck/c-{epoch:02d}-{val_loss:.4f}.h5' } } }), 'ck/history.txt')\n");
  free(files_py_ok("checkpoint-check ck 'c-{epoch:02d}-{val_loss:.4f}.h5' history.txt all"));
}
END_TEST

/* A learning rate that overshoots, so val_loss does not fall every epoch:
 * only the epochs that improved on the best so far leave a file. */
START_TEST(checkpoint_best_only) {
  sh_ok("rm -rf best && mkdir best");
  run("m:compile { optimizer = nn.SGD { learning_rate = 3 }, loss = 'sparse_categorical_crossentropy',\n"
      "  metrics = { 'accuracy' } }\n"
      "dump(m:fit(x, y, { epochs = 8, batch_size = 8, validation_split = 0.25, verbose = 0,\n"
      "  callbacks = { nn.ModelCheckpoint { 'best/b-{epoch:02d}.h5', save_best_only = true } } }), 'best/history.txt')\n");
  free(files_py_ok("checkpoint-check best 'b-{epoch:02d}.h5' history.txt best"));
}
END_TEST

/* kill -9 at several moments of a loop that saves over one name every
 * epoch and a new file per epoch: whatever is under a checkpoint's name
 * opens in h5py with all its weights. */
START_TEST(kill_during_checkpoints_leaves_complete_files) {
  char text[8192];
  snprintf(text, sizeof text,
           "%s"
           "local big = nn.Sequential { nn.Dense { 512, input_shape = { 3 } }, nn.Dense { 512 },\n"
           "  nn.Dense { 2, activation = 'softmax' } }\n"
           "big:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy' }\n"
           "big:fit(x, y, { epochs = 100000, batch_size = 40, verbose = 0, callbacks = {\n"
           "  nn.ModelCheckpoint { 'kill/last.h5', monitor = 'loss' }, nn.ModelCheckpoint { 'kill/e-{epoch:04d}.h5' } } })\n",
           setup);
  nnc_test_write_temp("killme.lua", text);
  char *out, *err;
  int total = 0;
  for (int i = 0; i < 4; i++) {
    char cmd[1024];
    /* wait for the first checkpoint (at most 20 s), then kill at a moment that differs each round */
    snprintf(cmd, sizeof cmd,
             "rm -rf kill && mkdir kill && ($NNC killme.lua >/dev/null 2>&1 & pid=$!; n=0; "
             "while [ ! -e kill/last.h5 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; "
             "sleep 0.%d; kill -9 $pid; wait $pid; $PY complete-files \"kill/*.h5\")",
             1 + 2 * i);
    int rc = files_sh(cmd, &out, &err);
    ck_assert_msg(rc == 0, "after kill %d: exit %d\n%s%s", i, rc, out, err);
    total += atoi(out);
    free(out), free(err);
  }
  ck_assert_msg(total >= 8, "only %d checkpoints were written before the kills", total);
}
END_TEST

static void expect_failure(const char *body, const char *fragment) {
  char text[8192], *out, *err;
  snprintf(text, sizeof text, "%s%s", setup, body);
  int rc = files_nnc(text, &out, &err);
  ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
  ck_assert_msg(strstr(err, "script.lua:") && strstr(err, fragment), "expected '%s' in: %s", fragment, err);
  free(out), free(err);
}

START_TEST(bad_file_callbacks) {
  expect_failure("m:fit(x, y, { epochs = 1, verbose = 0, callbacks = { nn.ModelCheckpoint { 'c-{epch}.h5' } } })\n",
                 "{epch}");
  expect_failure("nn.ModelCheckpoint { 'c.ckpt' }\n", ".safetensors");
  expect_failure("nn.ModelCheckpoint { 'c.safetensors' }\n", "save_weights_only");
  expect_failure("nn.ModelCheckpoint { 'c.h5', save_freq = 10 }\n", "save_freq");
  expect_failure("nn.CSVLogger('l.csv', { sep = ';' })\n", "unknown keyword 'sep'");
  expect_failure("m:fit(x, y, { epochs = 1, verbose = 0, callbacks = { nn.CSVLogger('/nonexistent/l.csv') } })\n",
                 "cannot write /nonexistent/l.csv");
}
END_TEST

TCase *tcase_file_callbacks(void) {
  TCase *tc = tcase_create("file_callbacks");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, csv_logger_rows_match_history);
  tcase_add_test(tc, checkpoint_names_from_logs);
  tcase_add_test(tc, checkpoint_best_only);
  tcase_add_test(tc, kill_during_checkpoints_leaves_complete_files);
  tcase_add_test(tc, bad_file_callbacks);
  return tc;
}
