/* --backend on the command line: cpu is the default, interp the reference,
 * and both train a script to the same history. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cpu/suites.h"
#include "tests/testutil.h"

static const char *script =
    "local train = data.fashion_mnist()\n"
    "local x, y = train.x:slice(1, 320), train.y:slice(1, 320)\n"
    "local m = nn.Sequential { nn.Conv2D { 4, 3, activation = 'relu', input_shape = { 28, 28, 1 } },\n"
    "  nn.MaxPool2D { 2 }, nn.Dropout(0.3), nn.Flatten(), nn.Dense { 10, activation = 'softmax' } }\n"
    "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "local h = m:fit(x, y, { epochs = 2, batch_size = 32, validation_split = 0.25, verbose = 0 })\n"
    "for _, k in ipairs { 'loss', 'val_loss' } do print(string.format('%.9g %.9g', h[k][1], h[k][2])) end\n";

/* Runs the script with extra flags and reads back its four losses. */
static void losses_with(const char *flags, double losses[4]) {
  const char *path = nnc_test_write_temp("backend.lua", script);
  char args[1024], *out, *err;
  snprintf(args, sizeof args, "'%s' %s", path, flags);
  int rc = nnc_test_run_cli(args, &out, &err);
  ck_assert_msg(rc == 0, "%s: %s", flags, err);
  ck_assert_int_eq(sscanf(out, "%lf %lf %lf %lf", &losses[0], &losses[1], &losses[2], &losses[3]), 4);
  free(out), free(err);
}

START_TEST(test_backends_train_alike) {
  double cpu[4], interp[4], plain[4];
  losses_with("--backend cpu", cpu);
  losses_with("--backend interp", interp);
  losses_with("", plain);
  for (int i = 0; i < 4; i++) {
    ck_assert_msg(fabs(cpu[i] - interp[i]) <= 1e-4 * fabs(interp[i]), "loss %d: cpu %.9g, interp %.9g", i, cpu[i],
                  interp[i]);
    ck_assert_msg(plain[i] == cpu[i], "the default backend is not cpu: %.9g vs %.9g", plain[i], cpu[i]);
  }
}
END_TEST

START_TEST(test_unknown_backend) {
  char *out, *err;
  ck_assert_int_eq(nnc_test_run_cli("models/mlp.lua --backend gpu", &out, &err), 1);
  ck_assert_str_eq(err, "nnc: error: unknown backend 'gpu'; did you mean 'cpu'? (backends: cpu, interp, cuda, cuda-emu)\n");
  free(out), free(err);
  ck_assert_int_eq(nnc_test_run_cli("models/mlp.lua --backend", &out, &err), 1);
  ck_assert_str_eq(err, "nnc: error: --backend needs a value\n");
  free(out), free(err);
}
END_TEST

TCase *tcase_cpu_cli(void) {
  TCase *tc = tcase_create("cpu_cli");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_backends_train_alike);
  tcase_add_test(tc, test_unknown_backend);
  return tc;
}
