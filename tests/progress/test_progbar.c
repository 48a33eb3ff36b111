/* The progress bar against golden strings. Each expected string is worked
 * out from tf.keras 2.12's Progbar.update (keras/utils/generic_utils.py);
 * the comments give the arithmetic, so a failure can be checked by hand.
 * The clock is injected: start is 0 unless said otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/train/progress.h"
#include "tests/progress/suites.h"

/* Output captured in memory. */
typedef struct {
  FILE *f;
  char *buf;
  size_t len;
} capture;

static void capture_open(capture *c) {
  c->buf = NULL;
  c->len = 0;
  c->f = open_memstream(&c->buf, &c->len);
  ck_assert_ptr_nonnull(c->f);
}

static const char *capture_text(capture *c) {
  fflush(c->f);
  return c->buf ? c->buf : "";
}

static void capture_close(capture *c) {
  fclose(c->f);
  free(c->buf);
}

static const char *const TRAIN[] = {"loss", "accuracy"};
static const char *const EPOCH[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
static const double EPOCH_VALUES[] = {0.3394, 0.8771, 0.3040, 0.8893};

#define FINAL_1407 \
  "1407/1407 [==============================] - 7s 5ms/step - loss: 0.3394 - accuracy: 0.8771 - val_loss: 0.3040 - val_accuracy: 0.8893\n"

/* One epoch of 1407 steps as fit drives it, on a terminal.
 *
 * step 1 at t=0.5: time per step (now - start)/1 = 0.5 s, and step 1's time
 *   is remembered; ETA = 0.5 * 1406 = 703 s > 60 -> 703 // 60 = 11,
 *   703 % 60 = 43 -> "11:43". prog_width = int(30 * 1/1407) = 0: no '=' and
 *   no '>', 30 dots. The count is padded to int(log10(1407)) + 1 = 4.
 * step 16 at t=0.52: 0.02 s after the last redraw < 0.05: nothing drawn.
 * step 32 at t=2.3826: (2.3826 - 0.5)/31 = 0.060729 s/step (step 1 left
 *   out); ETA = 0.060729 * 1375 = 83.5 -> "1:23". Still prog_width =
 *   int(0.682) = 0, so no '>' yet. The line is one character shorter than
 *   the last ("1:23" vs "11:43"): one space of padding.
 * step 1000 at t=5.0: (5.0 - 0.5)/999 = 0.0045045; ETA = 407 * that = 1.83
 *   -> "1s". prog_width = int(21.32) = 21: 20 '=' then '>', then 9 dots.
 *   Three characters shorter than the line before, but that line's width
 *   counted without its padding: 83 + 0 vs 81 -> 2 spaces.
 * step 1407 at t=7.19: ProgbarLogger passes finalize=False even for the
 *   last batch, so this is still an ETA line: ETA = x * 0 -> "0s", and
 *   current == target gives a full bar of '=' with an '=' head.
 * finish at t=7.2: " - %.0fs" of 7.2 -> "7s"; per step (7.2 - 0.5)/1406 =
 *   4.765 ms -> "5ms/step"; the epoch values, val_* appended in order. */
START_TEST(test_terminal_redraw_sequence) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 1407, 1, 1, 0.0);

  nnc_progress_update(p, 1, TRAIN, (double[]){2.3026, 0.1}, 2, 0.5);
  const char *line1 = "\r   1/1407 [..............................] - ETA: 11:43 - loss: 2.3026 - accuracy: 0.1000";
  ck_assert_str_eq(capture_text(&c), line1);

  nnc_progress_update(p, 16, TRAIN, (double[]){2.31, 0.11}, 2, 0.52);
  ck_assert_str_eq(capture_text(&c), line1);

  nnc_progress_update(p, 32, TRAIN, (double[]){2.3026, 0.1}, 2, 2.3826);
  const char *line2 = "\r  32/1407 [..............................] - ETA: 1:23 - loss: 2.3026 - accuracy: 0.1000 ";
  const char *line3 = "\r1000/1407 [====================>.........] - ETA: 1s - loss: 0.5000 - accuracy: 0.8000  ";
  const char *line4 = "\r1407/1407 [==============================] - ETA: 0s - loss: 0.3400 - accuracy: 0.8770";
  char want[1024];

  snprintf(want, sizeof want, "%s%s", line1, line2);
  ck_assert_str_eq(capture_text(&c), want);

  nnc_progress_update(p, 1000, TRAIN, (double[]){0.5, 0.8}, 2, 5.0);
  snprintf(want, sizeof want, "%s%s%s", line1, line2, line3);
  ck_assert_str_eq(capture_text(&c), want);

  nnc_progress_update(p, 1407, TRAIN, (double[]){0.34, 0.877}, 2, 7.19);
  snprintf(want, sizeof want, "%s%s%s%s", line1, line2, line3, line4);
  ck_assert_str_eq(capture_text(&c), want);

  nnc_progress_finish(p, EPOCH, EPOCH_VALUES, 4, 7.2);
  snprintf(want, sizeof want, "%s%s%s%s\r%s", line1, line2, line3, line4, FINAL_1407);
  ck_assert_str_eq(capture_text(&c), want);

  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

/* The same calls into a file: nothing until the end, then exactly the final
 * line, with no '\r' and no padding. */
START_TEST(test_file_gets_one_final_line) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 1407, 1, 0, 0.0);
  nnc_progress_update(p, 1, TRAIN, (double[]){2.3026, 0.1}, 2, 0.5);
  nnc_progress_update(p, 16, TRAIN, (double[]){2.31, 0.11}, 2, 0.52);
  nnc_progress_update(p, 32, TRAIN, (double[]){2.3026, 0.1}, 2, 2.3826);
  nnc_progress_update(p, 1000, TRAIN, (double[]){0.5, 0.8}, 2, 5.0);
  nnc_progress_update(p, 1407, TRAIN, (double[]){0.34, 0.877}, 2, 7.19);
  ck_assert_str_eq(capture_text(&c), "");
  nnc_progress_finish(p, EPOCH, EPOCH_VALUES, 4, 7.2);
  ck_assert_str_eq(capture_text(&c), FINAL_1407);
  nnc_progress_free(p);

  /* A second epoch appends its own single line. */
  p = nnc_progress_new(c.f, 1407, 1, 0, 7.3);
  nnc_progress_update(p, 1, TRAIN, (double[]){0.3, 0.9}, 2, 7.4);
  nnc_progress_finish(p, EPOCH, (double[]){0.2875, 0.8938, 0.2950, 0.8917}, 4, 13.9);
  /* 13.9 - 7.3 = 6.6 -> "7s"; (13.9 - 7.4)/1406 = 4.62 ms -> "5ms". */
  ck_assert_str_eq(capture_text(&c),
                   FINAL_1407 "1407/1407 [==============================] - 7s 5ms/step - loss: 0.2875 - accuracy: "
                              "0.8938 - val_loss: 0.2950 - val_accuracy: 0.8917\n");
  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

/* Without a terminal the first-step time is still tracked as if drawing, so
 * the final time per step leaves the slow first step out, as Keras does:
 * step 1 at t=5.0 (tracing), step 10 at t=5.9 -> (5.9 - 5.0)/9 = 100 ms,
 * where counting step 1 would give 5.9/10 = 590 ms. */
START_TEST(test_first_step_left_out) {
  for (int dynamic = 0; dynamic <= 1; dynamic++) {
    capture c;
    capture_open(&c);
    nnc_progress *p = nnc_progress_new(c.f, 10, 1, dynamic, 0.0);
    nnc_progress_update(p, 1, (const char *const[]){"loss"}, (double[]){1.5}, 1, 5.0);
    for (int step = 2; step <= 10; step++)
      nnc_progress_update(p, step, (const char *const[]){"loss"}, (double[]){1.0}, 1, 5.0 + 0.1 * (step - 1));
    nnc_progress_finish(p, (const char *const[]){"loss"}, (double[]){0.9}, 1, 5.9);
    const char *text = capture_text(&c);
    const char *want = "10/10 [==============================] - 6s 100ms/step - loss: 0.9000\n";
    if (dynamic) {
      /* The final redraw is the text after the last '\r'. */
      const char *last = text;
      for (const char *s = text; *s; s++)
        if (*s == '\r') last = s + 1;
      ck_assert_str_eq(last, want);
    } else {
      ck_assert_str_eq(text, want);
    }
    nnc_progress_free(p);
    capture_close(&c);
  }
}
END_TEST

/* Names keep the order they were first seen in: the epoch's values may come
 * in another order, and new ones (val_*) go at the end. */
START_TEST(test_value_order) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 2, 1, 0, 0.0);
  nnc_progress_update(p, 1, TRAIN, (double[]){0.7, 0.6}, 2, 1.0);
  nnc_progress_finish(p, (const char *const[]){"val_loss", "accuracy", "loss", "val_accuracy"},
                      (double[]){0.5, 0.75, 0.6, 0.8}, 4, 2.0);
  /* 2.0 s since start -> "2s"; per step (2.0 - 1.0)/1 = 1 s -> "1s/step". */
  ck_assert_str_eq(capture_text(&c),
                   "2/2 [==============================] - 2s 1s/step - loss: 0.6000 - accuracy: 0.7500 - val_loss: "
                   "0.5000 - val_accuracy: 0.8000\n");
  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

TCase *tcase_progbar_verbose1(void) {
  TCase *tc = tcase_create("progbar_verbose1");
  tcase_add_test(tc, test_terminal_redraw_sequence);
  tcase_add_test(tc, test_file_gets_one_final_line);
  tcase_add_test(tc, test_first_step_left_out);
  tcase_add_test(tc, test_value_order);
  return tc;
}

/* The ETA from step 1 of 3: per step = now - start, ETA = 2 * that.
 *   2.5 -> 5 s: "5s".  30 -> 60 s: not > 60, so "60s".
 *   41.5 -> 83 s: 83 // 60 = 1, 83 % 60 = 23: "1:23".
 *   1800 -> 3600 s: not > 3600, so 3600 // 60 = 60: "60:00".
 *   1850 -> 3700 s: 3700 // 3600 = 1, (3700 % 3600) // 60 = 1, 3700 % 60 = 40:
 *   "1:01:40". prog_width = int(30/3) = 10: nine '=' and the '>'. */
START_TEST(test_eta_formats) {
  static const struct {
    double now;
    const char *eta;
  } cases[] = {{2.5, "5s"}, {30, "60s"}, {41.5, "1:23"}, {1800, "60:00"}, {1850, "1:01:40"}, {0.4, "0s"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    capture c;
    capture_open(&c);
    nnc_progress *p = nnc_progress_new(c.f, 3, 1, 1, 0.0);
    nnc_progress_update(p, 1, (const char *const[]){"loss"}, (double[]){1.0}, 1, cases[i].now);
    char want[256];
    snprintf(want, sizeof want, "\r1/3 [=========>....................] - ETA: %s - loss: 1.0000", cases[i].eta);
    ck_assert_str_eq(capture_text(&c), want);
    nnc_progress_free(p);
    capture_close(&c);
  }
}
END_TEST

/* Time per step on the final line of a one-step epoch (per step = now -
 * start): >= 1 s or exactly 0 in s, >= 1 ms in ms, else us. The unit is
 * picked before rounding, so 0.9996 s is "1000ms", as in Keras. The first
 * field is the epoch time with %.0f: 0.9996 -> "1s", 0.005 -> "0s". */
START_TEST(test_step_time_units) {
  static const struct {
    double now;
    const char *times;
  } cases[] = {
      {2.0, "2s 2s/step"},      {0.005, "0s 5ms/step"},    {0.00005, "0s 50us/step"}, {0.0, "0s 0s/step"},
      {0.9996, "1s 1000ms/step"}, {0.001, "0s 1ms/step"}, {125.4, "125s 125s/step"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    capture c;
    capture_open(&c);
    nnc_progress *p = nnc_progress_new(c.f, 1, 1, 0, 0.0);
    nnc_progress_finish(p, (const char *const[]){"loss"}, (double[]){1.0}, 1, cases[i].now);
    char want[256];
    snprintf(want, sizeof want, "1/1 [==============================] - %s - loss: 1.0000\n", cases[i].times);
    ck_assert_str_eq(capture_text(&c), want);
    nnc_progress_free(p);
    capture_close(&c);
  }
}
END_TEST

/* Values: '%.4f' when abs(v) > 1e-3, else '%.4e' (so exactly 1e-3 and 0 are
 * in exponent form). NaN prints "nan" whatever its sign, as Python does. */
START_TEST(test_value_formats) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 1, 1, 0, 0.0);
  nnc_progress_finish(p, (const char *const[]){"loss", "a", "b", "c", "d", "e", "f"},
                      (double[]){0.00042, 0.001, 0.0, -0.5, -0.0001, 12345.678, -NAN}, 7, 1.0);
  ck_assert_str_eq(capture_text(&c),
                   "1/1 [==============================] - 1s 1s/step - loss: 4.2000e-04 - a: 1.0000e-03 - b: "
                   "0.0000e+00 - c: -0.5000 - d: -1.0000e-04 - e: 12345.6780 - f: nan\n");
  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

/* target unknown (<= 0): "%7d/Unknown" and time per step instead of an ETA
 * while running; finish takes the steps seen as the target.
 *   step 1 at 0.5: 0.5 s/step -> "500ms"; step 5 at 1.3: (1.3 - 0.5)/4 =
 *   200 ms; finish at 1.4: (1.4 - 0.5)/4 = 225 ms, bar "5/5". */
START_TEST(test_unknown_target) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 0, 1, 1, 0.0);
  nnc_progress_update(p, 1, (const char *const[]){"loss"}, (double[]){1.0}, 1, 0.5);
  nnc_progress_update(p, 5, (const char *const[]){"loss"}, (double[]){0.5}, 1, 1.3);
  nnc_progress_finish(p, (const char *const[]){"loss"}, (double[]){0.5}, 1, 1.4);
  ck_assert_str_eq(capture_text(&c),
                   "\r      1/Unknown - 0s 500ms/step - loss: 1.0000"
                   "\r      5/Unknown - 1s 200ms/step - loss: 0.5000"
                   "\r5/5 [==============================] - 1s 225ms/step - loss: 0.5000\n");
  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

/* "Epoch 1/2" for the first (0-based 0) of two epochs; nothing for a single
 * epoch, as ProgbarLogger.on_epoch_begin checks epochs > 1. */
START_TEST(test_epoch_header) {
  capture c;
  capture_open(&c);
  nnc_progress_epoch_header(c.f, 0, 2);
  nnc_progress_epoch_header(c.f, 1, 2);
  nnc_progress_epoch_header(c.f, 0, 1);
  ck_assert_str_eq(capture_text(&c), "Epoch 1/2\nEpoch 2/2\n");
  capture_close(&c);
}
END_TEST

TCase *tcase_progbar_formats(void) {
  TCase *tc = tcase_create("progbar_formats");
  tcase_add_test(tc, test_eta_formats);
  tcase_add_test(tc, test_step_time_units);
  tcase_add_test(tc, test_value_formats);
  tcase_add_test(tc, test_unknown_target);
  tcase_add_test(tc, test_epoch_header);
  return tc;
}

/* verbose=2: batch updates draw nothing; the end of the epoch prints
 * "1407/1407 - 7s" (count padded as in verbose 1, %.0f of 7.2 s), the
 * values, then " - 7s/epoch" (end - start = 7.2) and " - 5ms/step"
 * (7.2/1407 = 5.117 ms: the mean over all steps, first included). */
START_TEST(test_verbose2_line) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 1407, 2, 0, 0.0);
  nnc_progress_update(p, 1, TRAIN, (double[]){2.3026, 0.1}, 2, 0.5);
  nnc_progress_update(p, 1407, TRAIN, (double[]){0.34, 0.877}, 2, 7.19);
  ck_assert_str_eq(capture_text(&c), "");
  nnc_progress_finish(p, EPOCH, EPOCH_VALUES, 4, 7.2);
  ck_assert_str_eq(capture_text(&c), "1407/1407 - 7s - loss: 0.3394 - accuracy: 0.8771 - val_loss: 0.3040 - "
                                     "val_accuracy: 0.8893 - 7s/epoch - 5ms/step\n");
  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

/* verbose=2 tests the signed value against 1e-3 (no abs), so a negative
 * value takes the exponent form: -0.5 -> "-5.0000e-01". Epoch 1 s over one
 * step: "1s/epoch - 1s/step". */
START_TEST(test_verbose2_negative_values) {
  capture c;
  capture_open(&c);
  nnc_progress *p = nnc_progress_new(c.f, 1, 2, 1, 0.0);
  nnc_progress_finish(p, (const char *const[]){"loss", "c", "e"}, (double[]){0.00042, -0.5, 12345.678}, 3, 1.0);
  ck_assert_str_eq(capture_text(&c),
                   "1/1 - 1s - loss: 4.2000e-04 - c: -5.0000e-01 - e: 12345.6780 - 1s/epoch - 1s/step\n");
  nnc_progress_free(p);
  capture_close(&c);
}
END_TEST

/* verbose=0 prints nothing at all, on a terminal or not; a NULL stream is
 * silent too. */
START_TEST(test_verbose0_silent) {
  for (int dynamic = 0; dynamic <= 1; dynamic++) {
    capture c;
    capture_open(&c);
    nnc_progress *p = nnc_progress_new(c.f, 1407, 0, dynamic, 0.0);
    nnc_progress_update(p, 1, TRAIN, (double[]){2.3026, 0.1}, 2, 0.5);
    nnc_progress_update(p, 1407, TRAIN, (double[]){0.34, 0.877}, 2, 7.19);
    nnc_progress_finish(p, EPOCH, EPOCH_VALUES, 4, 7.2);
    ck_assert_str_eq(capture_text(&c), "");
    nnc_progress_free(p);
    capture_close(&c);
  }
  nnc_progress *p = nnc_progress_new(NULL, 10, 1, 1, 0.0);
  nnc_progress_update(p, 1, TRAIN, (double[]){2.3026, 0.1}, 2, 0.5);
  nnc_progress_finish(p, EPOCH, EPOCH_VALUES, 4, 7.2);
  nnc_progress_free(p);
  nnc_progress_free(NULL);
}
END_TEST

TCase *tcase_progbar_other_modes(void) {
  TCase *tc = tcase_create("progbar_other_modes");
  tcase_add_test(tc, test_verbose2_line);
  tcase_add_test(tc, test_verbose2_negative_values);
  tcase_add_test(tc, test_verbose0_silent);
  return tc;
}
