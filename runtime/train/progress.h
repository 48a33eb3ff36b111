/* The progress bar of fit and evaluate, as Keras 2 prints it.
 *
 * This follows tf.keras's `Progbar` (keras/utils/generic_utils.py) as
 * `ProgbarLogger` drives it in TF 2.12: one bar per epoch, 30 wide, steps
 * counted as batches ("step" units), the values shown exactly as given (Keras
 * marks the loss and every compiled metric "stateful", so the running means
 * the training loop computes are displayed as-is, not averaged again).
 *
 *   verbose=1, a terminal (dynamic=1): the line is redrawn in place, at most
 *     every 0.05 s, each redraw starting with '\r' and padded with spaces
 *     when it is shorter than the one before:
 *       \r  32/1407 [..............................] - ETA: 1:23 - loss: 2.3026 - accuracy: 0.1000
 *     and the epoch ends with the final line and '\n':
 *       1407/1407 [==============================] - 7s 5ms/step - loss: 0.3394 - accuracy: 0.8771 - val_loss: 0.3040 - val_accuracy: 0.8893
 *   verbose=1, not a terminal (dynamic=0): nothing during the epoch, then the
 *     same final line (no '\r', no padding).
 *   verbose=2: one line per epoch, at the end:
 *       1407/1407 - 7s - loss: 0.3394 - accuracy: 0.8771 - val_loss: 0.3040 - val_accuracy: 0.8893 - 7s/epoch - 5ms/step
 *   verbose=0 (or anything else): nothing.
 *
 * Where nnc differs from the bytes Keras writes, on purpose:
 *   - Keras puts a run of '\b' (one per character of the previous line) in
 *     front of each '\r'. A terminal shows the same either way; nnc writes
 *     the '\r' alone.
 *   - On POSIX, Keras 2.4+ always takes its "dynamic" path ('posix' is in
 *     sys.modules), so a log file receives every redraw glued together by
 *     '\b' and '\r'. What such a file shows once rendered is the final line;
 *     nnc writes only that line when dynamic=0, as the model-script
 *     contract asks.
 *   - Earlier TF 2.x Progbars ended the verbose=2 line after the metrics;
 *     the " - 7s/epoch - 5ms/step" tail is what TF 2.12 prints, so nnc
 *     prints it.
 *
 * Time is passed in by the caller (seconds, any origin), so output is a pure
 * function of the calls and can be tested byte for byte.
 */
#ifndef NNC_PROGRESS_H
#define NNC_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct nnc_progress nnc_progress;

/* A bar for one epoch (or one evaluate) of target_steps batches, writing to
 * `out` (NULL: silent). target_steps <= 0 means "unknown", as Keras's
 * target=None: the bar shows "     12/Unknown" until finish, which takes the
 * last step seen as the target. start_time is the epoch's start, on the same
 * clock as the `now` arguments below. NULL only when out of memory. */
nnc_progress *nnc_progress_new(FILE *out, int64_t target_steps, int verbose, int dynamic, double start_time);
/* After batch `step` (1-based: the number of batches done). names/values are
 * the running values to show, in order; a name not seen before is appended
 * to the display order, as Keras does. Only verbose=1 draws anything; the
 * other modes ignore batch updates entirely, since Keras does not call its
 * batch hooks then. */
void nnc_progress_update(nnc_progress *p, int64_t step, const char *const *names, const double *values,
                         int nvalues, double now);
/* The end of the epoch: draws the final line with the epoch's values (those
 * of the last update, replaced or extended by these, e.g. with val_loss and
 * val_accuracy). Call once. */
void nnc_progress_finish(nnc_progress *p, const char *const *names, const double *values, int nvalues,
                         double now);
void nnc_progress_free(nnc_progress *p);

/* "Epoch 3/10\n" before an epoch, for 0-based `epoch` (Keras's callback
 * index, so the first epoch is epoch 0 and prints "Epoch 1/10"). Keras prints
 * it only when there is more than one epoch, and only when verbose is not 0:
 * the caller checks verbose; this prints nothing when epochs <= 1. */
void nnc_progress_epoch_header(FILE *out, int epoch, int epochs);

#endif
