/* Keras's EarlyStopping callback as a pure state machine: the training loop
 * feeds it the monitored value after each epoch and it says when to stop,
 * when to snapshot the weights and when to put the snapshot back.
 *
 * Semantics are those of tf.keras in TF 2.12 (keras/callbacks.py):
 *   - mode "min"/"max" picks the comparison; "auto" maximizes monitors whose
 *     name ends in "acc", "accuracy" or "auc" and minimizes everything else.
 *     (Standalone Keras <= 2.3 also maximized names starting with "fmeasure",
 *     and TF <= 2.5 any name containing "acc"; TF 2.12 does neither.)
 *   - min_delta is taken as |min_delta|, negated when minimizing, and an
 *     epoch improves when (value - min_delta) beats best strictly: for "min"
 *     value + |min_delta| < best, for "max" value - |min_delta| > best.
 *   - best starts at +inf ("min") or -inf ("max"); an epoch whose value is
 *     NaN never improves.
 *   - Each monitored epoch: wait += 1; on an improvement best, best_epoch
 *     (and the weight snapshot) are taken, wait goes back to 0 unless a
 *     baseline is set and not beaten, and the epoch never stops training.
 *     Otherwise training stops when wait >= patience and epoch > 0.
 *     So patience=0 stops at the first epoch after the first that does not
 *     improve. (TF 2.6-2.11 had no early return on improvement, so there
 *     patience=0 stopped at epoch 1 even while improving; TF <= 2.5 also
 *     lacked "epoch > 0" and could stop after epoch 0.)
 *   - restore_best_weights: the weights are snapshotted at the first
 *     monitored epoch (so there is something to restore even if no epoch
 *     ever improves) and at every improvement, and restored only when
 *     training is stopped by this callback. TF 2.12 does not restore when
 *     training simply runs out of epochs; tf-keras 2.16 and Keras 3 do.
 *   - Where Keras warns, nnc fails: an unknown mode is an error naming the
 *     closest valid one (Keras fell back to "auto"), and so is a negative
 *     patience (Keras accepted it; Keras 3 rejects it).
 *
 * Epochs are 0-based, as in Keras's on_epoch_end(epoch). Keras's messages,
 * for a caller that prints them with verbose: "Restoring model weights from
 * the end of the best epoch: <best_epoch + 1>." at the stop, and
 * "Epoch <stopped_epoch + 1>: early stopping" after training. */
#ifndef NNC_EARLY_STOPPING_H
#define NNC_EARLY_STOPPING_H

#include "ir/status.h"

typedef struct nnc_early_stopping {
  /* Configuration, set by init. */
  char monitor[128];        /* the logged value watched, e.g. "val_loss" */
  int patience;             /* epochs without improvement before stopping */
  double min_delta;         /* signed as Keras keeps it: +|d| maximizing, -|d| minimizing */
  int maximize;             /* 1: larger is better (np.greater); 0: smaller (np.less) */
  int restore_best_weights; /* snapshot the best weights and restore them at the stop */
  /* Optional configuration: init leaves these off; set them after init. */
  int has_baseline;     /* Keras's baseline is not None */
  double baseline;      /* wait only resets on epochs that also beat this */
  int start_from_epoch; /* epochs before this one are ignored entirely */

  /* State, reset by init and nnc_early_stopping_reset (Keras's on_train_begin). */
  double best;       /* best value so far; +inf or -inf at the start */
  int wait;          /* monitored epochs since the last improvement (see above) */
  int best_epoch;    /* epoch of `best`; 0 before any improvement, as Keras */
  int stopped_epoch; /* the epoch that stopped training; 0 if none */
  int has_snapshot;  /* Keras's best_weights is not None */

  /* Set by each nnc_early_stopping_on_epoch call, for the caller to act on. */
  int snapshot; /* copy the model's weights now (restore_best_weights only) */
  int restore;  /* load the snapshot now: training stops, restore_best_weights */
} nnc_early_stopping;

/* Configures `es` and resets its state. monitor NULL means "val_loss", mode
 * NULL means "auto". Returns 0, or -1 with a message in `st` for an unknown
 * mode, a negative patience or an over-long monitor name. */
int nnc_early_stopping_init(nnc_early_stopping *es, const char *monitor, int patience, double min_delta,
                            const char *mode, int restore_best_weights, nnc_status *st);
/* Clears the state for another fit, keeping the configuration. */
void nnc_early_stopping_reset(nnc_early_stopping *es);
/* After epoch `epoch` (0-based) with the monitored value. Returns 1 when
 * training should stop after this epoch, else 0. *improved (may be NULL) is
 * set to 1 when this epoch is the new best, else 0. es->snapshot and
 * es->restore say what to do with the weights, before continuing. */
int nnc_early_stopping_on_epoch(nnc_early_stopping *es, int epoch, double value, int *improved);
/* Index of the monitored name among the epoch's logged names, or -1 with a
 * message in `st` that lists them and suggests the closest. (Keras only
 * warns and skips the epoch; the caller chooses whether this is an error.) */
int nnc_early_stopping_find_monitor(const nnc_early_stopping *es, const char *const *names, int count,
                                    nnc_status *st);

#endif
