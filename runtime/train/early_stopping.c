/* Keras's EarlyStopping (TF 2.12); the rules and where they came from are in
 * early_stopping.h. The function bodies follow the order of Keras's
 * on_epoch_end line by line, since the order is the semantics: wait is
 * incremented before the improvement test, the improvement returns before
 * the patience test, and the patience test skips epoch 0. */
#include "runtime/train/early_stopping.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix) {
  size_t ls = strlen(s), lx = strlen(suffix);
  return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* EarlyStopping._is_improvement: monitor_op(value - min_delta, reference),
 * with min_delta already signed. */
static int is_improvement(const nnc_early_stopping *es, double value, double reference) {
  double shifted = value - es->min_delta;
  return es->maximize ? shifted > reference : shifted < reference;
}

int nnc_early_stopping_init(nnc_early_stopping *es, const char *monitor, int patience, double min_delta,
                            const char *mode, int restore_best_weights, nnc_status *st) {
  static const char *const modes[] = {"auto", "min", "max", NULL};
  if (!monitor) monitor = "val_loss";
  if (!mode) mode = "auto";
  memset(es, 0, sizeof *es);

  if (strcmp(mode, "auto") != 0 && strcmp(mode, "min") != 0 && strcmp(mode, "max") != 0) {
    const char *hint = nnc_closest_name(mode, modes);
    if (hint)
      return nnc_fail(st, "EarlyStopping: unknown mode '%s'; did you mean '%s'? (one of auto, min, max)", mode,
                      hint);
    return nnc_fail(st, "EarlyStopping: unknown mode '%s' (one of auto, min, max)", mode);
  }
  if (patience < 0)
    return nnc_fail(st, "EarlyStopping: patience must be 0 or more, got %d", patience);
  if (strlen(monitor) >= sizeof es->monitor)
    return nnc_fail(st, "EarlyStopping: monitor name is too long (%zu characters, at most %zu)", strlen(monitor),
                    sizeof es->monitor - 1);
  memcpy(es->monitor, monitor, strlen(monitor) + 1);
  es->patience = patience;
  es->restore_best_weights = restore_best_weights != 0;

  if (strcmp(mode, "min") == 0)
    es->maximize = 0;
  else if (strcmp(mode, "max") == 0)
    es->maximize = 1;
  else /* auto */
    es->maximize = ends_with(monitor, "acc") || ends_with(monitor, "accuracy") || ends_with(monitor, "auc");

  /* self.min_delta = abs(min_delta), then *= 1 for np.greater, *= -1 for np.less. */
  es->min_delta = es->maximize ? fabs(min_delta) : -fabs(min_delta);
  nnc_early_stopping_reset(es);
  return 0;
}

void nnc_early_stopping_reset(nnc_early_stopping *es) {
  es->wait = 0;
  es->stopped_epoch = 0;
  es->best = es->maximize ? -INFINITY : INFINITY;
  es->has_snapshot = 0;
  es->best_epoch = 0;
  es->snapshot = 0;
  es->restore = 0;
}

int nnc_early_stopping_on_epoch(nnc_early_stopping *es, int epoch, double value, int *improved) {
  es->snapshot = 0;
  es->restore = 0;
  if (improved) *improved = 0;
  /* Still in the warm-up (start_from_epoch): the epoch is not looked at. */
  if (epoch < es->start_from_epoch) return 0;
  /* Keep the first monitored epoch's weights in case no epoch ever improves. */
  if (es->restore_best_weights && !es->has_snapshot) {
    es->has_snapshot = 1;
    es->snapshot = 1;
  }

  es->wait += 1;
  if (is_improvement(es, value, es->best)) {
    es->best = value;
    es->best_epoch = epoch;
    if (improved) *improved = 1;
    if (es->restore_best_weights) es->snapshot = 1;
    /* Only restart wait if we beat both the baseline and our previous best. */
    if (!es->has_baseline || is_improvement(es, value, es->baseline)) es->wait = 0;
    return 0;
  }

  if (es->wait >= es->patience && epoch > 0) {
    es->stopped_epoch = epoch;
    if (es->restore_best_weights && es->has_snapshot) es->restore = 1;
    return 1;
  }
  return 0;
}

int nnc_early_stopping_find_monitor(const nnc_early_stopping *es, const char *const *names, int count,
                                    nnc_status *st) {
  for (int i = 0; i < count; i++)
    if (names[i] && strcmp(names[i], es->monitor) == 0) return i;

  char list[512] = "";
  size_t used = 0;
  for (int i = 0; i < count; i++) {
    if (!names[i]) continue;
    int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", names[i]);
    if (n < 0 || (size_t)n >= sizeof list - used) break;
    used += (size_t)n;
  }
  /* nnc_closest_name wants a NULL-terminated list. */
  const char *choices[65];
  int nchoices = 0;
  for (int i = 0; i < count && nchoices < 64; i++)
    if (names[i]) choices[nchoices++] = names[i];
  choices[nchoices] = NULL;
  const char *hint = nnc_closest_name(es->monitor, choices);
  if (hint)
    return nnc_fail(st, "EarlyStopping: monitor '%s' is not among the logged values (%s); did you mean '%s'?",
                    es->monitor, list, hint);
  return nnc_fail(st, "EarlyStopping: monitor '%s' is not among the logged values (%s)", es->monitor, list);
}
