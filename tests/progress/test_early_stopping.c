/* EarlyStopping against sequences whose outcome is worked out by hand from
 * tf.keras 2.12's EarlyStopping.on_epoch_end:
 *
 *   wait += 1
 *   if monitor_op(current - min_delta, best):
 *       best, best_epoch = current, epoch   (snapshot if restore_best_weights)
 *       if baseline is None or monitor_op(current - min_delta, baseline): wait = 0
 *       return
 *   if wait >= patience and epoch > 0: stop (restore if restore_best_weights)
 *
 * with best = +inf for "min", -inf for "max", min_delta = -|d| for "min" and
 * +|d| for "max". Each test traces the state epoch by epoch. */
#include <math.h>
#include <string.h>

#include "runtime/train/early_stopping.h"
#include "tests/progress/suites.h"

typedef struct {
  int stop_epoch; /* the epoch on_epoch returned 1 for; -1 if none */
  int improved[16];
  int snapshot[16];
  int restore[16];
} run_result;

/* Feeds values for epochs 0, 1, ... until a stop, as fit would. */
static run_result run(nnc_early_stopping *es, const double *values, int n) {
  run_result r;
  memset(&r, 0, sizeof r);
  r.stop_epoch = -1;
  for (int epoch = 0; epoch < n; epoch++) {
    int improved = -1;
    int stop = nnc_early_stopping_on_epoch(es, epoch, values[epoch], &improved);
    r.improved[epoch] = improved;
    r.snapshot[epoch] = es->snapshot;
    r.restore[epoch] = es->restore;
    if (stop) {
      r.stop_epoch = epoch;
      break;
    }
  }
  return r;
}

static void init_ok(nnc_early_stopping *es, const char *monitor, int patience, double min_delta, const char *mode,
                    int restore) {
  nnc_status st = {0};
  int rc = nnc_early_stopping_init(es, monitor, patience, min_delta, mode, restore, &st);
  ck_assert_msg(rc == 0, "init failed: %s", st.msg);
}

/* val_loss [1.0, 0.9, 0.95, 0.96, 0.97], patience 2, "auto" -> min:
 *   e0: wait 1; 1.0 < inf: best 1.0, best_epoch 0, wait 0
 *   e1: wait 1; 0.9 < 1.0: best 0.9, best_epoch 1, wait 0
 *   e2: wait 1; 0.95 < 0.9? no; 1 >= 2? no
 *   e3: wait 2; 0.96 < 0.9? no; 2 >= 2 and e3 > 0: stop after epoch 3
 *   (the fourth), best epoch 1, and epoch 4's 0.97 is never seen. */
START_TEST(test_stops_after_patience) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 2, 0, "auto", 0);
  ck_assert_int_eq(es.maximize, 0);
  run_result r = run(&es, (double[]){1.0, 0.9, 0.95, 0.96, 0.97}, 5);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(es.stopped_epoch, 3);
  ck_assert_int_eq(es.best_epoch, 1);
  ck_assert_double_eq(es.best, 0.9);
  ck_assert_int_eq(es.wait, 2);
  ck_assert_int_eq(r.improved[0], 1);
  ck_assert_int_eq(r.improved[1], 1);
  ck_assert_int_eq(r.improved[2], 0);
  ck_assert_int_eq(r.improved[3], 0);
  /* Without restore_best_weights nothing is snapshotted or restored. */
  for (int e = 0; e <= 3; e++) ck_assert_int_eq(r.snapshot[e] + r.restore[e], 0);
}
END_TEST

/* Equal is not better: the comparison is strict.
 *   e0 improves (1.0 < inf); e1: wait 1, 1.0 < 1.0? no, 1 >= 1 and e1 > 0: stop. */
START_TEST(test_equal_value_is_no_improvement) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 1, 0, "min", 0);
  run_result r = run(&es, (double[]){1.0, 1.0, 0.5}, 3);
  ck_assert_int_eq(r.stop_epoch, 1);
  ck_assert_int_eq(es.best_epoch, 0);
}
END_TEST

/* min_delta 0.05 on val_loss (a negative min_delta means the same: abs is
 * taken), patience 2. min_delta is stored as -0.05, so an epoch improves when
 * value + 0.05 < best:
 *   e0: 1.0 + 0.05 < inf: best 1.0, wait 0
 *   e1: wait 1; 0.96 + 0.05 = 1.01 < 1.0? no (a plain comparison would take it)
 *   e2: wait 0 after 0.90 + 0.05 = 0.95 < 1.0: best 0.90 (the value itself, not
 *       the shifted one), best_epoch 2
 *   e3: wait 1; 0.88 + 0.05 = 0.93 < 0.90? no
 *   e4: wait 2; 0.86 + 0.05 = 0.91 < 0.90? no; 2 >= 2: stop at epoch 4. */
START_TEST(test_min_delta) {
  for (int sign = -1; sign <= 1; sign += 2) {
    nnc_early_stopping es;
    init_ok(&es, "val_loss", 2, sign * 0.05, "auto", 0);
    ck_assert_double_eq(es.min_delta, -0.05);
    run_result r = run(&es, (double[]){1.0, 0.96, 0.90, 0.88, 0.86, 0.5}, 6);
    ck_assert_int_eq(r.stop_epoch, 4);
    ck_assert_int_eq(es.best_epoch, 2);
    ck_assert_double_eq(es.best, 0.90);
    ck_assert_int_eq(r.improved[1], 0);
    ck_assert_int_eq(r.improved[2], 1);
  }
}
END_TEST

/* mode "max" on val_accuracy with min_delta 0.01 (stored +0.01: improves when
 * value - 0.01 > best), patience 2:
 *   e0: 0.50 - 0.01 > -inf: best 0.50
 *   e1: 0.60 - 0.01 = 0.59 > 0.50: best 0.60, best_epoch 1
 *   e2: wait 1; 0.605 - 0.01 = 0.595 > 0.60? no
 *   e3: wait 2; 0.55 no; 2 >= 2: stop at epoch 3. */
START_TEST(test_mode_max) {
  nnc_early_stopping es;
  init_ok(&es, "val_accuracy", 2, 0.01, "max", 0);
  ck_assert_int_eq(es.maximize, 1);
  ck_assert_double_eq(es.min_delta, 0.01);
  ck_assert(es.best == -INFINITY);
  run_result r = run(&es, (double[]){0.50, 0.60, 0.605, 0.55, 0.9}, 5);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(es.best_epoch, 1);
  ck_assert_double_eq(es.best, 0.60);
}
END_TEST

/* "auto" maximizes names ending in acc, accuracy or auc and minimizes the
 * rest (TF 2.12's rule: a suffix test, and no "fmeasure" prefix rule). An
 * explicit mode wins over the name. */
START_TEST(test_mode_auto) {
  static const struct {
    const char *monitor, *mode;
    int maximize;
  } cases[] = {
      {"val_accuracy", "auto", 1}, {"accuracy", "auto", 1}, {"val_acc", "auto", 1},  {"acc", "auto", 1},
      {"val_auc", "auto", 1},      {"val_loss", "auto", 0}, {"loss", "auto", 0},     {"val_acc_top5", "auto", 0},
      {"fmeasure", "auto", 0},     {"mse", "auto", 0},      {"val_accuracy", "min", 0}, {"val_loss", "max", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nnc_early_stopping es;
    init_ok(&es, cases[i].monitor, 0, 0, cases[i].mode, 0);
    ck_assert_msg(es.maximize == cases[i].maximize, "%s with mode %s: maximize %d, want %d", cases[i].monitor,
                  cases[i].mode, es.maximize, cases[i].maximize);
    ck_assert(es.best == (es.maximize ? -INFINITY : INFINITY));
  }
  /* Defaults: monitor val_loss, mode auto. */
  nnc_early_stopping es;
  init_ok(&es, NULL, 0, 0, NULL, 0);
  ck_assert_str_eq(es.monitor, "val_loss");
  ck_assert_int_eq(es.maximize, 0);
  /* auto on val_accuracy really maximizes: rising values keep training,
   * e0..e2 all improve; e3: wait 1, 0.7 > 0.8? no, 1 >= 1: stop. */
  init_ok(&es, "val_accuracy", 1, 0, "auto", 0);
  run_result r = run(&es, (double[]){0.5, 0.6, 0.8, 0.7}, 4);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(es.best_epoch, 2);
}
END_TEST

/* patience 0 (Keras's default), [1.0, 0.9, 0.8, 0.85]:
 *   e0..e2 improve and return before the patience test, so they never stop;
 *   e3: wait 1; 0.85 < 0.8? no; 1 >= 0 and e3 > 0: stop at epoch 3.
 * (TF 2.6-2.11, without the early return, stopped at epoch 1 here.) */
START_TEST(test_patience_zero) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 0, 0, "auto", 0);
  run_result r = run(&es, (double[]){1.0, 0.9, 0.8, 0.85}, 4);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(es.best_epoch, 2);
}
END_TEST

/* Epoch 0 never stops: a NaN first value does not improve (NaN < inf is
 * false), wait becomes 1 >= 0 but epoch 0 is exempt; e1: 1.0 < inf improves;
 * e2: NaN again, wait 1 >= 0 and e2 > 0: stop. */
START_TEST(test_epoch_zero_never_stops) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 0, 0, "auto", 0);
  run_result r = run(&es, (double[]){NAN, 1.0, NAN}, 3);
  ck_assert_int_eq(r.stop_epoch, 2);
  ck_assert_int_eq(r.improved[0], 0);
  ck_assert_int_eq(r.improved[1], 1);
  ck_assert_int_eq(es.best_epoch, 1);
}
END_TEST

/* restore_best_weights with the first example:
 *   e0: the first monitored epoch snapshots (Keras's best_weights is None),
 *       and it improves too: snapshot
 *   e1: improves: snapshot (the weights of epoch 1)
 *   e2: no snapshot
 *   e3: stop, restore the snapshot: the weights from the end of epoch 1,
 *       which Keras reports as "the best epoch: 2" (best_epoch + 1). */
START_TEST(test_restore_best_weights) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 2, 0, "auto", 1);
  run_result r = run(&es, (double[]){1.0, 0.9, 0.95, 0.96, 0.97}, 5);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(r.snapshot[0], 1);
  ck_assert_int_eq(r.snapshot[1], 1);
  ck_assert_int_eq(r.snapshot[2], 0);
  ck_assert_int_eq(r.snapshot[3], 0);
  ck_assert_int_eq(r.restore[0] + r.restore[1] + r.restore[2], 0);
  ck_assert_int_eq(r.restore[3], 1);
  ck_assert_int_eq(es.best_epoch, 1);
}
END_TEST

/* When no epoch ever improves, the first monitored epoch's weights are the
 * snapshot: [NaN, NaN] with patience 1 snapshots at e0 without improving,
 * and e1 (wait 2 >= 1) stops and restores it. */
START_TEST(test_restore_without_improvement) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 1, 0, "auto", 1);
  run_result r = run(&es, (double[]){NAN, NAN}, 2);
  ck_assert_int_eq(r.stop_epoch, 1);
  ck_assert_int_eq(r.improved[0], 0);
  ck_assert_int_eq(r.snapshot[0], 1);
  ck_assert_int_eq(r.restore[1], 1);
}
END_TEST

/* Training that runs out of epochs is not restored (TF 2.12 restores only
 * at the stop): no restore flag ever comes up. */
START_TEST(test_no_restore_without_stop) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 3, 0, "auto", 1);
  run_result r = run(&es, (double[]){1.0, 0.9, 0.95}, 3);
  ck_assert_int_eq(r.stop_epoch, -1);
  ck_assert_int_eq(r.restore[0] + r.restore[1] + r.restore[2], 0);
  ck_assert_int_eq(es.stopped_epoch, 0);
}
END_TEST

/* baseline 0.5 on loss, patience 2, [0.8, 0.7, 0.6, 0.65]:
 *   e0: wait 1; improves (best 0.8) but 0.8 < 0.5? no: wait stays 1; return
 *   e1: wait 2; improves (0.7), baseline not beaten, wait 2; return: an
 *       improving epoch never stops, though wait >= patience
 *   e2: wait 3; improves (0.6); return
 *   e3: wait 4; 0.65 < 0.6? no; 4 >= 2: stop at epoch 3, best epoch 2.
 * Beating the baseline resets wait: [0.8, 0.4] leaves wait 0 after e1. */
START_TEST(test_baseline) {
  nnc_early_stopping es;
  init_ok(&es, "loss", 2, 0, "auto", 0);
  es.has_baseline = 1;
  es.baseline = 0.5;
  run_result r = run(&es, (double[]){0.8, 0.7, 0.6, 0.65}, 4);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(es.best_epoch, 2);
  ck_assert_int_eq(es.wait, 4);

  nnc_early_stopping_reset(&es);
  r = run(&es, (double[]){0.8, 0.4}, 2);
  ck_assert_int_eq(r.stop_epoch, -1);
  ck_assert_int_eq(es.wait, 0);
}
END_TEST

/* start_from_epoch 2: epochs 0 and 1 are not looked at (no snapshot, no
 * wait), so with patience 1 [5, 6, 1.0, 1.1] stops at epoch 3, not 1. */
START_TEST(test_start_from_epoch) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 1, 0, "auto", 1);
  es.start_from_epoch = 2;
  run_result r = run(&es, (double[]){5, 6, 1.0, 1.1}, 4);
  ck_assert_int_eq(r.stop_epoch, 3);
  ck_assert_int_eq(r.snapshot[0] + r.snapshot[1], 0);
  ck_assert_int_eq(r.snapshot[2], 1);
  ck_assert_int_eq(es.best_epoch, 2);
}
END_TEST

/* reset (on_train_begin) clears the state for another fit. */
START_TEST(test_reset_for_another_fit) {
  nnc_early_stopping es;
  init_ok(&es, "val_loss", 1, 0, "auto", 1);
  run_result r = run(&es, (double[]){1.0, 2.0}, 2);
  ck_assert_int_eq(r.stop_epoch, 1);
  nnc_early_stopping_reset(&es);
  ck_assert_int_eq(es.wait, 0);
  ck_assert_int_eq(es.stopped_epoch, 0);
  ck_assert_int_eq(es.best_epoch, 0);
  ck_assert(es.best == INFINITY);
  r = run(&es, (double[]){3.0, 2.0, 2.5}, 3);
  ck_assert_int_eq(r.snapshot[0], 1);
  ck_assert_int_eq(r.stop_epoch, 2);
  ck_assert_int_eq(es.best_epoch, 1);
}
END_TEST

/* Bad configuration is an error that helps. */
START_TEST(test_init_errors) {
  nnc_early_stopping es;
  nnc_status st = {0};
  ck_assert_int_eq(nnc_early_stopping_init(&es, "val_loss", 2, 0, "maxx", 0, &st), -1);
  ck_assert_msg(strstr(st.msg, "unknown mode 'maxx'") && strstr(st.msg, "did you mean 'max'"), "%s", st.msg);

  st = (nnc_status){0};
  ck_assert_int_eq(nnc_early_stopping_init(&es, "val_loss", 2, 0, "biggest", 0, &st), -1);
  ck_assert_msg(strstr(st.msg, "unknown mode 'biggest'") && strstr(st.msg, "auto, min, max"), "%s", st.msg);

  st = (nnc_status){0};
  ck_assert_int_eq(nnc_early_stopping_init(&es, "val_loss", -1, 0, "auto", 0, &st), -1);
  ck_assert_msg(strstr(st.msg, "patience") != NULL, "%s", st.msg);
}
END_TEST

/* The monitored name is looked up among the epoch's logged names. */
START_TEST(test_find_monitor) {
  static const char *const logged[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
  nnc_early_stopping es;
  init_ok(&es, "val_accuracy", 0, 0, "auto", 0);
  nnc_status st = {0};
  ck_assert_int_eq(nnc_early_stopping_find_monitor(&es, logged, 4, &st), 3);

  init_ok(&es, "val_los", 0, 0, "auto", 0);
  ck_assert_int_eq(nnc_early_stopping_find_monitor(&es, logged, 4, &st), -1);
  ck_assert_msg(strstr(st.msg, "monitor 'val_los'") && strstr(st.msg, "loss, accuracy, val_loss, val_accuracy") &&
                    strstr(st.msg, "did you mean 'val_loss'"),
                "%s", st.msg);
}
END_TEST

TCase *tcase_early_stopping(void) {
  TCase *tc = tcase_create("early_stopping");
  tcase_add_test(tc, test_stops_after_patience);
  tcase_add_test(tc, test_equal_value_is_no_improvement);
  tcase_add_test(tc, test_min_delta);
  tcase_add_test(tc, test_mode_max);
  tcase_add_test(tc, test_mode_auto);
  tcase_add_test(tc, test_patience_zero);
  tcase_add_test(tc, test_epoch_zero_never_stops);
  tcase_add_test(tc, test_restore_best_weights);
  tcase_add_test(tc, test_restore_without_improvement);
  tcase_add_test(tc, test_no_restore_without_stop);
  tcase_add_test(tc, test_baseline);
  tcase_add_test(tc, test_start_from_epoch);
  tcase_add_test(tc, test_reset_for_another_fit);
  tcase_add_test(tc, test_init_errors);
  tcase_add_test(tc, test_find_monitor);
  return tc;
}
