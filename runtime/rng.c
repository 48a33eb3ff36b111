#include "runtime/rng.h"

#include <math.h>

/* Constants from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3". */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

/* Each round multiplies words 0 and 2 by the round constants, swaps the
 * halves around and mixes in the key; the key is bumped by the Weyl
 * constants between rounds. */
void nnc_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  uint32_t k[2] = {key[0], key[1]};
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, c[0], &hi0, &lo0);
    mulhilo(PHILOX_M1, c[2], &hi1, &lo1);
    uint32_t n0 = hi1 ^ c[1] ^ k[0], n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0, c[1] = lo1, c[2] = n2, c[3] = lo0;
    k[0] += PHILOX_W0, k[1] += PHILOX_W1;
  }
  for (int i = 0; i < 4; i++) out[i] = c[i];
}

void nnc_philox(uint64_t seed, uint32_t stream, uint64_t counter, uint32_t out[4]) {
  const uint32_t c[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), stream, 0};
  const uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  nnc_philox4x32_10(c, k, out);
}

float nnc_rng_uniform(uint64_t seed, uint32_t stream, uint64_t counter) {
  uint32_t r[4];
  nnc_philox(seed, stream, counter, r);
  return (float)(r[0] >> 8) * (1.0f / 16777216.0f);
}

float nnc_rng_normal(uint64_t seed, uint32_t stream, uint64_t counter) {
  uint32_t r[4];
  nnc_philox(seed, stream, counter, r);
  /* u1 in (0, 1] so the log is finite. */
  double u1 = ((double)(r[0] >> 8) + 1.0) / 16777216.0;
  double u2 = (double)(r[1] >> 8) / 16777216.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void nnc_rng_shuffle(int64_t *order, int64_t n, uint64_t seed, uint32_t stream, uint64_t pass) {
  for (int64_t i = 0; i < n; i++) order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    uint32_t r[4];
    nnc_philox(seed, stream, pass * (uint64_t)n + (uint64_t)i, r);
    int64_t j = (int64_t)(((uint64_t)r[0] * (uint64_t)(i + 1)) >> 32);
    int64_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

uint32_t nnc_rng_stream_of(const char *name) {
  uint32_t h = 2166136261u;
  for (; *name; name++) h = (h ^ (unsigned char)*name) * 16777619u;
  return h;
}
