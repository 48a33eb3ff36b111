/* The CPU backend's thread pool: one per process, shared by every prepared
 * graph, started by the first and stopped by the last.
 *
 * A parallel region publishes its task and a new generation in `work`,
 * one atomic word that also holds the next unclaimed item. Threads claim
 * chunks from it with a compare-and-swap that only succeeds while the
 * generation is still theirs, and the caller waits only for the items
 * claimed, never for a worker that has not woken up: on a busy machine a
 * descheduled worker just takes no chunks. Workers spin for a short while
 * between regions (the next kernel usually follows within microseconds)
 * and then sleep on a condition variable, so an idle pool costs nothing.
 *
 * BLAS runs single-threaded inside the tasks (openblas_set_num_threads(1)):
 * the kernels split GEMMs themselves, which lets a thread do im2col, its
 * GEMM and the fused epilogue on one tile while the tile is in its cache,
 * and keeps OpenBLAS's own threads from competing with ours for the cores. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/cpu/cpu.h"

/* Spins before a worker sleeps: some tens of microseconds. */
#define SPIN_LIMIT 20000
/* `work` = generation << INDEX_BITS | next unclaimed item. */
#define INDEX_BITS 40
#define INDEX_MASK ((UINT64_C(1) << INDEX_BITS) - 1)

typedef struct pool {
  int nthreads; /* the caller included */
  pthread_t threads[NNC_CPU_MAX_THREADS];
  pthread_mutex_t mu;
  pthread_cond_t wake;
  atomic_uint_fast64_t work;
  atomic_llong done;  /* items finished in the current region */
  atomic_int sleepers;
  atomic_int busy; /* a region is running: a second caller runs inline */
  atomic_int stop;
  /* The current task, stable while its generation is current. */
  _Atomic(nnc_cpu_task *) task;
  _Atomic(void *) ctx;
  atomic_llong n, grain;
} pool;

static pool the_pool;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int pool_users;
static uint64_t generation; /* the caller's count of regions */

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of generation gen until none are left. */
static void work(pool *p, uint64_t gen, int thread) {
  nnc_cpu_task *task = atomic_load_explicit(&p->task, memory_order_relaxed);
  void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
  int64_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
  int64_t grain = atomic_load_explicit(&p->grain, memory_order_relaxed);
  uint_fast64_t w = atomic_load(&p->work);
  for (;;) {
    if (w >> INDEX_BITS != gen || (int64_t)(w & INDEX_MASK) >= n) return;
    if (!atomic_compare_exchange_weak(&p->work, &w, w + (uint64_t)grain)) continue;
    int64_t begin = (int64_t)(w & INDEX_MASK), end = begin + grain < n ? begin + grain : n;
    task(ctx, begin, end, thread);
    atomic_fetch_add(&p->done, end - begin);
    w = atomic_load(&p->work);
  }
}

static void *worker(void *arg) {
  pool *p = &the_pool;
  int thread = (int)(intptr_t)arg;
  uint64_t seen = 0;
  for (;;) {
    for (int spins = 0; atomic_load(&p->work) >> INDEX_BITS == seen && spins < SPIN_LIMIT; spins++) relax();
    if (atomic_load(&p->work) >> INDEX_BITS == seen) {
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleepers, 1);
      while (atomic_load(&p->work) >> INDEX_BITS == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->wake, &p->mu);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load(&p->stop)) return NULL;
    seen = atomic_load(&p->work) >> INDEX_BITS;
    work(p, seen, thread);
  }
}

static void publish(pool *p, uint64_t gen) {
  atomic_store(&p->work, gen << INDEX_BITS);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
}

static int threads_wanted(const nnc_options *o) {
  long n = o->cpu_threads ? o->cpu_threads : sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > NNC_CPU_MAX_THREADS ? NNC_CPU_MAX_THREADS : (int)n;
}

int nnc_cpu_pool_acquire(const nnc_options *o, nnc_status *st) {
  pthread_mutex_lock(&pool_lock);
  if (pool_users++ > 0) {
    pthread_mutex_unlock(&pool_lock);
    return the_pool.nthreads;
  }
  pool *p = &the_pool;
  p->nthreads = threads_wanted(o);
  atomic_store(&p->stop, 0);
  generation = 0;
  atomic_store(&p->work, 0);
  atomic_store(&p->sleepers, 0);
  atomic_store(&p->busy, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  openblas_set_num_threads(1);
  for (int t = 1; t < p->nthreads; t++)
    if (pthread_create(&p->threads[t], NULL, worker, (void *)(intptr_t)t)) {
      p->nthreads = t; /* run with the threads we got */
      break;
    }
  (void)st;
  pthread_mutex_unlock(&pool_lock);
  return p->nthreads;
}

void nnc_cpu_pool_release(void) {
  pthread_mutex_lock(&pool_lock);
  if (--pool_users > 0) {
    pthread_mutex_unlock(&pool_lock);
    return;
  }
  pool *p = &the_pool;
  atomic_store(&p->stop, 1);
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->work, ++generation << INDEX_BITS);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->nthreads; t++) pthread_join(p->threads[t], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  p->nthreads = 0;
  pthread_mutex_unlock(&pool_lock);
}

int nnc_cpu_threads(void) { return the_pool.nthreads > 0 ? the_pool.nthreads : 1; }

int64_t nnc_cpu_grain(int64_t n, int per_thread, int64_t min_grain) {
  int64_t chunks = (int64_t)nnc_cpu_threads() * per_thread;
  int64_t grain = (n + chunks - 1) / chunks;
  return grain < min_grain ? min_grain : grain < 1 ? 1 : grain;
}

void nnc_cpu_parallel(int64_t n, int64_t grain, nnc_cpu_task *task, void *ctx) {
  pool *p = &the_pool;
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int expected = 0;
  if (n <= grain || p->nthreads <= 1 || !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
    for (int64_t begin = 0; begin < n; begin += grain) task(ctx, begin, begin + grain < n ? begin + grain : n, 0);
    return;
  }
  atomic_store_explicit(&p->task, task, memory_order_relaxed);
  atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&p->n, n, memory_order_relaxed);
  atomic_store_explicit(&p->grain, grain, memory_order_relaxed);
  atomic_store(&p->done, 0);
  uint64_t gen = ++generation & (UINT64_MAX >> INDEX_BITS);
  publish(p, gen);
  work(p, gen, 0);
  while (atomic_load(&p->done) < n) relax();
  atomic_store(&p->busy, 0);
}
