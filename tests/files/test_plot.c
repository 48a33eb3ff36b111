/* nnc.plot and nnc.show_images: the PNGs decoded by PIL and checked for
 * size, content (axes and text, each curve by its matplotlib colour, the
 * images' pixels, red captions where a prediction is wrong), and bad calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/files/suites.h"

static const char *history =
    "local h = { loss = { 1.2, 0.8, 0.6, 0.5 }, val_loss = { 0.9, 0.7, 0.65, 0.66 },\n"
    "  accuracy = { 0.55, 0.7, 0.78, 0.81 }, val_accuracy = { 0.66, 0.75, 0.79, 0.8 } }\n";

START_TEST(curves_side_by_side) {
  char text[2048];
  snprintf(text, sizeof text, "%snnc.plot(h, 'curves.png', { title = 'run 1' })\n", history);
  free(files_nnc_ok(text));
  /* two 600x450 panels under a 36-pixel title */
  free(files_py_ok("png-curves curves.png 1200x486 2,2"));
}
END_TEST

/* A fit without validation has one curve per panel; "acc" is the user's name. */
START_TEST(curves_from_fit_without_validation) {
  free(files_nnc_ok("local m = nn.Sequential { nn.Dense { 2, activation = 'softmax', input_shape = { 3 } } }\n"
                    "m:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropy', metrics = { 'acc' } }\n"
                    "local h = m:fit(data.tensor { { 1, 2, 3 }, { 3, 2, 1 } }, data.tensor({ 0, 1 }, 'i32'),\n"
                    "  { epochs = 3, verbose = 0 })\n"
                    "h.acc = h.acc or h.accuracy\n"
                    "nnc.plot(h, 'fit.png')\n"));
  free(files_py_ok("png-curves fit.png 1200x450 1,1"));
  free(files_nnc_ok("nnc.plot({ loss = { 3, 2, 1 } }, 'loss.png')\n"));
  free(files_py_ok("png-curves loss.png 600x450 1"));
}
END_TEST

/* Six 28x28 images, black with a white 10x10 square at the top left; the
 * second and fifth predictions are wrong. 3 columns: cells of 112 + 24
 * pixels across, 112 + 22 + 12 down, and a 12-pixel margin below. */
START_TEST(image_grid_with_captions) {
  free(files_nnc_ok("local rows = {}\n"
                    "for i = 1, 6 do\n"
                    "  local img = {}\n"
                    "  for r = 1, 28 do img[r] = {} for c = 1, 28 do img[r][c] = (r <= 10 and c <= 10) and 1 or 0 end end\n"
                    "  rows[i] = img\n"
                    "end\n"
                    "local x = data.tensor(rows)\n"
                    "nnc.show_images(x, 'grid.png', { labels = data.tensor({ 0, 1, 2, 0, 1, 2 }, 'i32'),\n"
                    "  predictions = { 0, 2, 2, 0, 0, 2 }, class_names = { 'zero', 'one', 'two' }, cols = 3 })\n"
                    "nnc.show_images(x:reshape { 6, 28, 28, 1 }, 'plain.png', { labels = { 0, 1, 2, 0, 1, 2 } })\n"));
  free(files_py_ok("png-grid grid.png 408 304 3 6 1,4"));
  free(files_py_ok("png-grid plain.png 544 304 4 6"));
}
END_TEST

static void expect_failure(const char *text, const char *fragment) {
  char *out, *err;
  int rc = files_nnc(text, &out, &err);
  ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
  ck_assert_msg(strstr(err, "script.lua:1:") && strstr(err, fragment), "expected '%s' in: %s", fragment, err);
  free(out), free(err);
}

START_TEST(bad_plot_calls) {
  expect_failure("nnc.plot({ loss = { 1 } }, 'curves.jpg')\n", "ending in .png");
  expect_failure("nnc.plot({ loss = { 1 } }, 'c.png', { titel = 'x' })\n", "unknown option 'titel'");
  expect_failure("nnc.plot({ loss = { 1, 'x' } }, 'c.png')\n", "history.loss[2]");
  expect_failure("nnc.plot({ loss = { 1 } }, '/nonexistent/dir/c.png')\n", "cannot write /nonexistent/dir/c.png");
  expect_failure("nnc.show_images(data.zeros { 2, 3 }, 'g.png')\n", "f32[N,H,W]");
}
END_TEST

TCase *tcase_plots(void) {
  TCase *tc = tcase_create("plots");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, curves_side_by_side);
  tcase_add_test(tc, curves_from_fit_without_validation);
  tcase_add_test(tc, image_grid_with_captions);
  tcase_add_test(tc, bad_plot_calls);
  return tc;
}
