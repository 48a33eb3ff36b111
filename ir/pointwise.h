/* ir/pointwise.def rendered as C: nnc_pw_<name>, one inline function per
 * row, taking the names its row kind binds. The interpreter and the cpu
 * backend call these in their loops, so both compute each element with the
 * same float expression in the same order. */
#ifndef NNC_POINTWISE_H
#define NNC_POINTWISE_H

#include <math.h>

#define ACTIVATION(ENUM, name, GRAD, flops, ...) \
  static inline float nnc_pw_##name(float x, float alpha) {   \
    (void)alpha;                                               \
    return (__VA_ARGS__);                                      \
  }
#define ACTIVATION_GRAD(ENUM, name, flops, ...)                        \
  static inline float nnc_pw_##name(float y, float dy, float alpha) { \
    (void)alpha;                                                \
    return (__VA_ARGS__);                                       \
  }
#define POINTWISE(ENUM, name, operands, flops, ...)                                                   \
  static inline float nnc_pw_##name(float a, float b, float c, float s, float alpha, float eps) { \
    (void)b, (void)c, (void)s, (void)alpha, (void)eps;                                         \
    return (__VA_ARGS__);                                                                      \
  }
#define RANDOM(ENUM, name, flops, ...)                                                  \
  static inline float nnc_pw_##name(float x, float u, float rate, float scale) { \
    return (__VA_ARGS__);                                                        \
  }
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM

#endif
