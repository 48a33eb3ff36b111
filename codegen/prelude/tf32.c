/* cvt.rna.tf32.f32 on the host: a float to 10 mantissa bits, to nearest
 * with ties away from zero (adding half the dropped bits' weight to the
 * magnitude does that, carrying into the exponent and past the largest
 * float to infinity); NaN becomes the canonical NaN. One definition for
 * cuda-emu's kernels (the build puts this file's text before
 * codegen/prelude/host.c's) and for its cuBLAS/cuDNN emulation
 * (runtime/cuda/cuda_lib_emu.c includes it), so a TF32 GEMM rounds its
 * inputs alike whichever runs it. */
#include <string.h>

static float nnc_tf32(float x) {
  unsigned u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  else if (u & 0x007fffffu) u = 0x7fffffffu;
  memcpy(&x, &u, 4);
  return x;
}
