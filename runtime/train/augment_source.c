/* The worker pool behind fit on a flow (see augment_source.h).
 *
 * Slot g % Q of the ring holds batch g. A worker claims the next g, waits
 * until fit has let go of that slot's previous batch (g - Q), fills it
 * outside the lock, and marks it ready. fit's next() waits for its g to be
 * ready and hands the slot's arrays out; the slot stays fit's until the
 * following call. Each flow epoch's sample order is computed once, under
 * the lock, into a cache indexed by epoch mod (Q + 1): the batches in the
 * ring span at most Q consecutive g, so at most Q flow epochs are in use. */
#include "runtime/train/augment_source.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct slot {
  int state;
  int64_t g, rows;
  float *x;
  void *y;
} slot;

typedef struct order_entry {
  int64_t epoch; /* -1: empty */
  int64_t *order;
} order_entry;

struct nnc_flow_source {
  nnc_batch_source base;
  nnc_image_source flow;
  int64_t first, steps, end; /* end: one past the last batch fit may take */
  int64_t epoch;             /* fit's current epoch */
  int64_t taken;
  int queue, workers;
  slot *slots;
  order_entry *orders;
  int norders;
  int64_t next_claim, held; /* held: the g fit holds, -1 none */
  int stop;
  pthread_mutex_t mu;
  pthread_cond_t changed;
  pthread_t *threads;
  int started;
  float **scratch; /* one image per worker, and one for fit's thread (the last) */
  struct worker_arg *args;
};

/* The order of flow epoch e, computed on first use. Called with the lock held. */
static const int64_t *order_of(nnc_flow_source *s, int64_t e) {
  order_entry *o = &s->orders[e % s->norders];
  if (o->epoch != e) {
    nnc_image_source_order(&s->flow, e, o->order);
    o->epoch = e;
  }
  return o->order;
}

static void fill(nnc_flow_source *s, slot *sl, int64_t g, const int64_t *order, float *scratch) {
  int64_t per_epoch = nnc_image_source_batches(&s->flow);
  sl->rows = nnc_image_source_batch(&s->flow, order, g / per_epoch, g % per_epoch, sl->x, sl->y, scratch);
}

typedef struct worker_arg {
  nnc_flow_source *s;
  float *scratch;
} worker_arg;

static void *worker(void *arg) {
  nnc_flow_source *s = ((worker_arg *)arg)->s;
  float *scratch = ((worker_arg *)arg)->scratch;
  int64_t per_epoch = nnc_image_source_batches(&s->flow);
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    int64_t g = s->next_claim;
    slot *sl = &s->slots[g % s->queue];
    if (g >= s->end || sl->state != SLOT_FREE) {
      pthread_cond_wait(&s->changed, &s->mu);
      continue;
    }
    s->next_claim++;
    sl->state = SLOT_FILLING;
    sl->g = g;
    const int64_t *order = order_of(s, g / per_epoch);
    pthread_mutex_unlock(&s->mu);
    fill(s, sl, g, order, scratch);
    pthread_mutex_lock(&s->mu);
    sl->state = SLOT_READY;
    pthread_cond_broadcast(&s->changed);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static int flow_start_epoch(void *ctx, int epoch, nnc_status *st) {
  (void)st;
  ((nnc_flow_source *)ctx)->epoch = epoch;
  return 0;
}

/* Lets go of the batch fit held; called with the lock held. */
static void release_held(nnc_flow_source *s) {
  if (s->held < 0) return;
  s->slots[s->held % s->queue].state = SLOT_FREE;
  s->held = -1;
  pthread_cond_broadcast(&s->changed);
}

static int flow_next(void *ctx, int64_t step, nnc_batch *out, nnc_status *st) {
  nnc_flow_source *s = ctx;
  if (step >= s->steps) return 1;
  int64_t g = s->first + s->epoch * s->steps + step;
  if (g >= s->end) return nnc_fail(st, "the flow source was asked for more batches than fit's epochs hold");
  slot *sl = &s->slots[g % s->queue];
  pthread_mutex_lock(&s->mu);
  release_held(s);
  if (s->workers == 0) {
    /* No threads: make the batch here, from the same ring and cache. */
    sl->g = g;
    fill(s, sl, g, order_of(s, g / nnc_image_source_batches(&s->flow)), s->scratch[s->workers]);
    sl->state = SLOT_READY;
  }
  while (!(sl->g == g && sl->state == SLOT_READY)) pthread_cond_wait(&s->changed, &s->mu);
  sl->state = SLOT_HELD;
  s->held = g;
  if (g + 1 - s->first > s->taken) s->taken = g + 1 - s->first;
  pthread_mutex_unlock(&s->mu);
  out->x = sl->x;
  out->y = sl->y;
  out->rows = sl->rows;
  return 0;
}

static int allocate(nnc_flow_source *s) {
  int64_t image = s->flow.rows * s->flow.cols * s->flow.channels;
  int64_t batch = s->flow.batch_size < s->flow.count ? s->flow.batch_size : s->flow.count;
  size_t batch_floats = (size_t)(batch * image) + 1;
  s->slots = calloc((size_t)s->queue, sizeof *s->slots);
  s->orders = calloc((size_t)s->norders, sizeof *s->orders);
  s->scratch = calloc((size_t)s->workers + 1, sizeof *s->scratch);
  s->args = calloc((size_t)s->workers + 1, sizeof *s->args);
  if (!s->slots || !s->orders || !s->scratch || !s->args) return -1;
  for (int i = 0; i <= s->workers; i++) {
    s->scratch[i] = malloc(sizeof(float) * (size_t)(image ? image : 1));
    s->args[i] = (worker_arg){s, s->scratch[i]};
    if (!s->scratch[i]) return -1;
  }
  for (int i = 0; i < s->queue; i++) {
    s->slots[i].g = -1;
    s->slots[i].x = malloc(sizeof(float) * batch_floats);
    s->slots[i].y = malloc(4 * (size_t)(s->flow.y ? batch * s->flow.y_row : 1));
    if (!s->slots[i].x || !s->slots[i].y) return -1;
  }
  for (int i = 0; i < s->norders; i++) {
    s->orders[i].epoch = -1;
    s->orders[i].order = malloc(sizeof(int64_t) * (size_t)(s->flow.count ? s->flow.count : 1));
    if (!s->orders[i].order) return -1;
  }
  return 0;
}

nnc_flow_source *nnc_flow_source_new(const nnc_image_source *flow, int64_t first, int64_t steps_per_epoch,
                                     int epochs, int workers, int queue, nnc_status *st) {
  if (flow->count < 1) {
    nnc_fail(st, "the flow has no images");
    return NULL;
  }
  if (steps_per_epoch < 1 || workers < 0 || queue < 1) {
    nnc_fail(st, "steps_per_epoch and max_queue_size must be positive and workers >= 0");
    return NULL;
  }
  nnc_flow_source *s = calloc(1, sizeof *s);
  if (!s) {
    nnc_fail(st, "out of memory");
    return NULL;
  }
  s->flow = *flow;
  s->first = first;
  s->steps = steps_per_epoch;
  s->end = first + steps_per_epoch * (epochs > 0 ? epochs : 0);
  s->workers = workers;
  /* fit holds one slot while the workers fill the rest. */
  s->queue = queue + 1;
  s->norders = s->queue + 1;
  s->next_claim = first;
  s->held = -1;
  s->base = (nnc_batch_source){s, steps_per_epoch, flow_start_epoch, flow_next, 0};
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->changed, NULL);
  s->threads = calloc((size_t)(workers ? workers : 1), sizeof *s->threads);
  if (!s->threads || allocate(s)) {
    nnc_flow_source_free(s);
    nnc_fail(st, "out of memory for %d batches of %lld images", queue, (long long)flow->batch_size);
    return NULL;
  }
  for (; s->started < workers; s->started++)
    if (pthread_create(&s->threads[s->started], NULL, worker, &s->args[s->started])) {
      nnc_flow_source_free(s);
      nnc_fail(st, "cannot start a batch worker thread");
      return NULL;
    }
  return s;
}

nnc_batch_source *nnc_flow_source_base(nnc_flow_source *s) { return &s->base; }

int64_t nnc_flow_source_taken(const nnc_flow_source *s) { return s->taken; }

void nnc_flow_source_free(nnc_flow_source *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->started; i++) pthread_join(s->threads[i], NULL);
  for (int i = 0; s->slots && i < s->queue; i++) {
    free(s->slots[i].x);
    free(s->slots[i].y);
  }
  for (int i = 0; s->orders && i < s->norders; i++) free(s->orders[i].order);
  free(s->slots);
  free(s->orders);
  free(s->threads);
  for (int i = 0; s->scratch && i <= s->workers; i++) free(s->scratch[i]);
  free(s->scratch);
  free(s->args);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->changed);
  free(s);
}
