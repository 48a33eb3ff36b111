/* The machine's float32 FMA peak, measured: every thread (one per online
 * CPU, or argv[1]) runs independent chains of fused multiply-adds on the
 * widest vectors the compiler targets, enough chains to cover the FMA
 * latency on two pipes. Each thread's rate is taken over its own CPU time,
 * so other work on a shared machine does not lower it (two threads on one
 * core's SMT siblings still share its pipes and show it); the peak is the
 * sum of the threads' rates, best of five runs, printed as
 *   FMA_PEAK <GFLOP/s> <threads> <lanes>
 * bench/vs_torch builds it with -march=native and divides the models'
 * GFLOP/s by it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define LANES 16
typedef __m512 vec;
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SET1(s) _mm512_set1_ps(s)
#elif defined(__FMA__)
#include <immintrin.h>
#define LANES 8
typedef __m256 vec;
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET1(s) _mm256_set1_ps(s)
#else
#define LANES 4
typedef float vec __attribute__((vector_size(16)));
#define FMA(a, b, c) ((a) * (b) + (c))
#define SET1(s) ((vec){s, s, s, s})
#endif

#define CHAINS 12 /* latency 4 x 2 pipes, and some room: EACH below */
#define ITERATIONS 5000000L

static double thread_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Twelve named accumulators, so each stays in a register. */
#define EACH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* arg: two floats, a result that keeps the loop, and the GFLOP/s measured. */
static void *chains(void *arg) {
  float *result = arg;
  double start = thread_seconds();
  vec x = SET1(0.999999f), y = SET1(1e-7f);
#define INIT(c) vec a##c = SET1((float)c);
  EACH(INIT)
  for (long i = 0; i < ITERATIONS; i++) {
#define STEP(c) a##c = FMA(a##c, x, y);
    EACH(STEP)
  }
  vec sum = SET1(0.0f);
#define ADD(c) sum = sum + a##c;
  EACH(ADD)
  result[0] = ((float *)&sum)[0];
  result[1] = (float)(2.0 * LANES * CHAINS * (double)ITERATIONS / (thread_seconds() - start) / 1e9);
  return NULL;
}

int main(int argc, char **argv) {
  long threads = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1 || threads > 256) threads = 1;
  pthread_t tid[256];
  float out[256][2];
  double best = 0;
  for (int run = 0; run < 5; run++) {
    double rate = 0;
    for (long t = 0; t < threads; t++) pthread_create(&tid[t], NULL, chains, out[t]);
    for (long t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    for (long t = 0; t < threads; t++) rate += out[t][1];
    if (rate > best) best = rate;
  }
  printf("FMA_PEAK %.1f %ld %d\n", best, threads, LANES);
  return out[0][0] == 12345.0f;
}
