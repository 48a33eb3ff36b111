/* The one random generator: Philox-4x32-10, counter based, so a value is a
 * pure function of (seed, stream, counter). Every backend that draws the same
 * triple gets the same number: dropout masks, initializers and shuffles
 * agree across interp, cpu, cuda-emu and cuda without sharing state. */
#ifndef NNC_RNG_H
#define NNC_RNG_H

#include <stdint.h>

/* The Philox-4x32-10 block function itself: ten rounds on a 128-bit counter
 * under a 64-bit key, as published by Salmon et al. (Random123). */
void nnc_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);
/* Four independent 32-bit words for (seed, stream, counter): the block
 * function on counter words {counter lo, counter hi, stream, 0} under key
 * {seed lo, seed hi}. */
void nnc_philox(uint64_t seed, uint32_t stream, uint64_t counter, uint32_t out[4]);
/* Uniform in [0, 1), 24 bits of mantissa. */
float nnc_rng_uniform(uint64_t seed, uint32_t stream, uint64_t counter);
/* Standard normal by Box-Muller from the counter's four words. */
float nnc_rng_normal(uint64_t seed, uint32_t stream, uint64_t counter);
/* order = a permutation of 0..n-1 by Fisher-Yates, draw i of pass `pass`
 * being (seed, stream, pass * n + i): the same on every backend. */
void nnc_rng_shuffle(int64_t *order, int64_t n, uint64_t seed, uint32_t stream, uint64_t pass);
/* A stream number from a name ("conv2d/kernel"), for per-weight streams. */
uint32_t nnc_rng_stream_of(const char *name);

#endif
