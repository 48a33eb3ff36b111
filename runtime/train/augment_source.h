/* fit's batch source over an image flow: batches made by worker threads
 * while the train step runs, so augmentation costs no wall time when it is
 * cheaper than the step.
 *
 * The flow is one stream of batches: batch g of it is batch g % B of the
 * flow's epoch g / B (B batches per flow epoch), and its content depends on
 * g alone (runtime/train/augment.c draws each image from its place in the
 * stream). Workers claim g in order and fill a ring of slots; fit takes them
 * in order. Any number of workers, or none, gives the same batches. */
#ifndef NNC_AUGMENT_SOURCE_H
#define NNC_AUGMENT_SOURCE_H

#include "runtime/train/augment.h"
#include "runtime/train/fit.h"

typedef struct nnc_flow_source nnc_flow_source;

/* A source for fit that starts at the flow's batch `first` and gives
 * steps_per_epoch batches per fit epoch (for at most `epochs` epochs), made
 * by `workers` threads (0: made in fit's own thread) at most `queue` batches
 * ahead. The flow's arrays must outlive the source. NULL with st set on
 * failure. */
nnc_flow_source *nnc_flow_source_new(const nnc_image_source *flow, int64_t first, int64_t steps_per_epoch,
                                     int epochs, int workers, int queue, nnc_status *st);
nnc_batch_source *nnc_flow_source_base(nnc_flow_source *s);
/* How many batches fit took from the flow (to move the iterator on). */
int64_t nnc_flow_source_taken(const nnc_flow_source *s);
/* Stops and joins the workers and frees everything. */
void nnc_flow_source_free(nnc_flow_source *s);

#endif
