/* What the generated kernels stand on, for both targets: the prelude (the
 * names that differ between CUDA and the host, the Philox generator, the
 * tensor views GEMM-shaped kernels read through), the translation unit, and
 * cuda-emu's launchers, which run a kernel's blocks on the host: thread
 * after thread, or, for cooperative kernels, each thread on its own stack so
 * that __syncthreads can be honoured.
 *
 * A name a kernel needs on both targets goes in target_defs; a device
 * function both share goes in common_code. */
#include <stdio.h>
#include <string.h>

#include "codegen/cuda.h"

/* What differs between the targets is this table: a name the kernels use,
 * its CUDA definition (NULL: CUDA's own), and the host's. */
typedef struct target_def {
  const char *name, *cuda, *host;
} target_def;

static const target_def target_defs[] = {
    {"NNC_KERNEL", "extern \"C\" __global__", "static"},
    {"NNC_DEVICE", "static __device__ __forceinline__", "static inline"},
    {"NNC_RESTRICT", "__restrict__", "restrict"},
    /* Shared arrays read as nnc_f4 (16-byte vectors). */
    {"NNC_ALIGN16", "__align__(16)", "_Alignas(16)"},
    {"NNC_INF", "__int_as_float(0x7f800000)", "INFINITY"},
    /* Register tiles must be unrolled to stay in registers on the GPU. */
    {"NNC_UNROLL", "_Pragma(\"unroll\")", ""},
    /* The high word of a 32x32-bit product (Philox). */
    {"nnc_mulhi(a, b)", "__umulhi((a), (b))", "((nnc_u32)(((nnc_u64)(a) * (nnc_u64)(b)) >> 32))"},
    /* CUDA's own names, emulated on the host. A block runs on one host
     * thread at a time and each host thread runs one block at a time, so a
     * host thread's own copy of a __shared__ array is the block's. */
    {"__global__", NULL, ""},
    {"__device__", NULL, ""},
    {"__forceinline__", NULL, "inline"},
    {"__shared__", NULL, "static _Thread_local"},
    {"__syncthreads()", NULL, "nnc_emu_syncthreads()"},
    {"atomicAdd(p, v)", NULL, "nnc_emu_atomic_add((p), (v))"},
};

/* Host-only support for the names above: codegen/prelude/host.c, a real C
 * file whose text the build embeds (scripts/embed_text.cmake). */
extern const char nnc_emu_host_source[];


/* CUDA only: the tensor-core instructions that codegen/prelude/host.c
 * emulates (there, with the fragment layouts they use), for sm_80 and newer. */
static const char cuda_support[] =
    "#if __CUDA_ARCH__ >= 800\n"
    "NNC_DEVICE float nnc_tf32(float x) {\n"
    "  unsigned r;\n"
    "  asm(\"cvt.rna.tf32.f32 %0, %1;\" : \"=r\"(r) : \"f\"(x));\n"
    "  return __uint_as_float(r);\n"
    "}\n"
    "NNC_DEVICE void nnc_mma_tf32(float *d, const float *a, const float *b) {\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, \"\n"
    "               \"{%0,%1,%2,%3};\"\n"
    "               : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
    "               : \"r\"(__float_as_uint(a[0])), \"r\"(__float_as_uint(a[1])), \"r\"(__float_as_uint(a[2])),\n"
    "                 \"r\"(__float_as_uint(a[3])), \"r\"(__float_as_uint(b[0])), \"r\"(__float_as_uint(b[1])));\n"
    "}\n"
    "#endif\n"
    "/* cp.async, sm_80 and newer: `bytes` (0 up to the copy's size) of src to\n"
    " * shared dst, the rest zero-filled; src must be a valid address even\n"
    " * when bytes is 0. 16-byte copies bypass L1 (.cg), as a tile's rows are\n"
    " * read once per block; 4-byte ones may not (.ca). Done only at a wait. */\n"
    "#if __CUDA_ARCH__ >= 800\n"
    "NNC_DEVICE void nnc_cp_async4(float *dst, const float *src, int bytes) {\n"
    "  asm volatile(\"{ .reg .u64 s; cvta.to.shared.u64 s, %0; cp.async.ca.shared.global [s], [%1], 4, %2; }\"\n"
    "               :: \"l\"(dst), \"l\"(src), \"r\"(bytes) : \"memory\");\n"
    "}\n"
    "NNC_DEVICE void nnc_cp_async16(float *dst, const float *src, int bytes) {\n"
    "  asm volatile(\"{ .reg .u64 s; cvta.to.shared.u64 s, %0; cp.async.cg.shared.global [s], [%1], 16, %2; }\"\n"
    "               :: \"l\"(dst), \"l\"(src), \"r\"(bytes) : \"memory\");\n"
    "}\n"
    "NNC_DEVICE void nnc_cp_async_commit(void) { asm volatile(\"cp.async.commit_group;\" ::: \"memory\"); }\n"
    "#define nnc_cp_async_wait(n) asm volatile(\"cp.async.wait_group %0;\" :: \"n\"(n) : \"memory\")\n"
    "#endif\n"
    "typedef float4 nnc_f4;\n";

/* Shared by both targets: integer types, Philox-4x32-10 exactly as
 * runtime/rng.c computes it (so dropout masks agree bit for bit). */
static const char common_code[] =
    "typedef unsigned int nnc_u32;\n"
    "typedef unsigned long long nnc_u64;\n"
    "typedef long long nnc_i64;\n"
    "/* The run's constants, in device memory (runtime/cuda/cuda_layout.h, nnc_cuda_run_consts). */\n"
    "typedef struct nnc_run_consts { nnc_u64 seed, step, first_row, global_rows; int training; } nnc_run_consts;\n"
    "\n"
    "/* Philox-4x32-10 on counter {counter lo, counter hi, stream, 0} under key\n"
    " * {seed lo, seed hi}; word 0 of the result (runtime/rng.c, nnc_philox). */\n"
    "NNC_DEVICE nnc_u32 nnc_philox_word0(nnc_u64 seed, nnc_u32 stream, nnc_u64 counter) {\n"
    "  nnc_u32 c0 = (nnc_u32)counter, c1 = (nnc_u32)(counter >> 32), c2 = stream, c3 = 0u;\n"
    "  nnc_u32 k0 = (nnc_u32)seed, k1 = (nnc_u32)(seed >> 32);\n"
    "  for (int round = 0; round < 10; round++) {\n"
    "    nnc_u32 hi0 = nnc_mulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;\n"
    "    nnc_u32 hi1 = nnc_mulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;\n"
    "    nnc_u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;\n"
    "    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;\n"
    "    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;\n"
    "  }\n"
    "  return c0;\n"
    "}\n"
    "\n"
    "/* Uniform in [0, 1) from 24 bits (nnc_rng_uniform). */\n"
    "NNC_DEVICE float nnc_uniform(nnc_u64 seed, nnc_u32 stream, nnc_u64 counter) {\n"
    "  return (float)(nnc_philox_word0(seed, stream, counter) >> 8) * (1.0f / 16777216.0f);\n"
    "}\n"
    "\n";

/* The NHWC views that convolutions read as GEMM operands without an im2col
 * buffer, written twice: with nnc_ix nnc_i64 and @ empty, and with nnc_ix
 * int and @ _i32 for GEMMs whose every index fits in 32 bits (a 64-bit
 * division is several times a 32-bit one's instructions). The views' sizes
 * are literals at every call, so they fold. */
static const char view_code[] =
    "/* Element (r, p) of the im2col matrix of x [*, ih, iw, ic] under a window\n"
    " * of kw columns with strides (sh, sw) and padding (ph, pw) before: row r is\n"
    " * output pixel (n, oy, ox) of [*, oh, ow], column p is tap (i, j, c), in\n"
    " * the reference's order; taps in the padding read zero. */\n"
    "NNC_DEVICE float nnc_im2col@(const float *x, nnc_ix r, nnc_ix p, nnc_ix ih, nnc_ix iw, nnc_ix ic, nnc_ix oh,\n"
    "                            nnc_ix ow, nnc_ix kw, nnc_ix sh, nnc_ix sw, nnc_ix ph, nnc_ix pw) {\n"
    "  const nnc_ix c = p % ic, j = p / ic % kw, i = p / ic / kw;\n"
    "  const nnc_ix ox = r % ow, oy = r / ow % oh, n = r / ow / oh;\n"
    "  const nnc_ix y = oy * sh + i - ph, xx = ox * sw + j - pw;\n"
    "  return y >= 0 && y < ih && xx >= 0 && xx < iw ? x[((n * ih + y) * iw + xx) * ic + c] : 0.0f;\n"
    "}\n"
    "\n"
    "/* The gradient of a convolution's input as a GEMM: row r is input pixel\n"
    " * (n, y, x) of [*, ih, iw]; column p is (ti, tj, o) for kernel tap\n"
    " * (i, j) = (kh-1-ti, kw-1-tj), so taps come in decreasing order, the\n"
    " * order in which the outputs reading (y, x) rise. Element (r, p) is\n"
    " * dy[n, oy, ox, o] of the output whose window reads (y, x) through tap\n"
    " * (i, j), or zero where the stride skips it or it lies outside. */\n"
    "NNC_DEVICE float nnc_im2col_grad@(const float *dy, nnc_ix r, nnc_ix p, nnc_ix ih, nnc_ix iw, nnc_ix oh,\n"
    "                                 nnc_ix ow, nnc_ix oc, nnc_ix kh, nnc_ix kw, nnc_ix sh, nnc_ix sw, nnc_ix ph,\n"
    "                                 nnc_ix pw) {\n"
    "  const nnc_ix o = p % oc, j = kw - 1 - p / oc % kw, i = kh - 1 - p / oc / kw;\n"
    "  const nnc_ix x = r % iw, y = r / iw % ih, n = r / iw / ih;\n"
    "  const nnc_ix ty = y + ph - i, tx = x + pw - j;\n"
    "  if (ty < 0 || tx < 0 || ty % sh != 0 || tx % sw != 0 || ty / sh >= oh || tx / sw >= ow) return 0.0f;\n"
    "  return dy[((n * oh + ty / sh) * ow + tx / sw) * oc + o];\n"
    "}\n"
    "\n"
    "/* The kernel w [kh, kw, ic, oc] as the matching operand: row p is\n"
    " * (ti, tj, o) as in nnc_im2col_grad, column c the input channel. */\n"
    "NNC_DEVICE float nnc_kernel_flipped@(const float *w, nnc_ix p, nnc_ix c, nnc_ix kh, nnc_ix kw, nnc_ix ic,\n"
    "                                    nnc_ix oc) {\n"
    "  const nnc_ix o = p % oc, j = kw - 1 - p / oc % kw, i = kh - 1 - p / oc / kw;\n"
    "  return w[((i * kw + j) * ic + c) * oc + o];\n"
    "}\n";

static void render_defs(nnc_strbuf *b, int host) {
  for (size_t i = 0; i < sizeof target_defs / sizeof target_defs[0]; i++) {
    const target_def *d = &target_defs[i];
    const char *def = host ? d->host : d->cuda;
    if (def) nnc_strbuf_appendf(b, "#define %s %s\n", d->name, def);
  }
}

/* view_code with nnc_ix and @ replaced. */
static void append_views(nnc_strbuf *b, const char *type, const char *suffix) {
  for (const char *p = view_code; *p;) {
    if (!strncmp(p, "nnc_ix", 6)) nnc_strbuf_append(b, type), p += 6;
    else if (*p == '@') nnc_strbuf_append(b, suffix), p++;
    else nnc_strbuf_appendf(b, "%c", *p++);
  }
}

const char *nnc_cuda_prelude(void) {
  static char *prelude;
  if (prelude) return prelude;
  nnc_strbuf b;
  nnc_strbuf_init(&b);
  nnc_strbuf_append(&b,
                    "/* generated by nnc: the kernel prelude. NVRTC reads the CUDA branch; cuda-emu\n"
                    " * compiles the same text with the host C compiler. */\n"
                    "#if defined(__CUDACC__)\n");
  render_defs(&b, 0);
  nnc_strbuf_append(&b, cuda_support);
  nnc_strbuf_append(&b, "#else\n");
  render_defs(&b, 1);
  nnc_strbuf_append(&b, nnc_emu_host_source);
  nnc_strbuf_append(&b, "#endif\n");
  nnc_strbuf_append(&b, common_code);
  append_views(&b, "nnc_i64", "");
  append_views(&b, "int", "_i32");
  /* Built once and kept for the process: a benign race would build it twice. */
  prelude = nnc_strbuf_take(&b);
  return prelude;
}

void nnc_cuda_render_unit(const nnc_cuda_kernel *const *kernels, int count, nnc_strbuf *out) {
  nnc_strbuf_append(out, nnc_cuda_prelude());
  for (int i = 0; i < count; i++) {
    nnc_strbuf_append(out, "\n");
    nnc_strbuf_append(out, kernels[i]->source);
  }
}

/* Each kernel parameter as a local a<i>, read from cuLaunchKernel-style args. */
static void render_unpack(const nnc_cuda_kernel *k, nnc_strbuf *out) {
  for (int i = 0; i < k->nargs; i++) {
    switch (k->args[i].kind) {
    case NNC_CUDA_ARG_OUT:
    case NNC_CUDA_ARG_WS_OUT: nnc_strbuf_appendf(out, "  float *a%d = *(float *const *)args[%d];\n", i, i); break;
    case NNC_CUDA_ARG_IN:
    case NNC_CUDA_ARG_WS_IN: nnc_strbuf_appendf(out, "  const void *a%d = *(const void *const *)args[%d];\n", i, i); break;
    case NNC_CUDA_ARG_RUN:
      nnc_strbuf_appendf(out, "  const nnc_run_consts *a%d = *(const nnc_run_consts *const *)args[%d];\n", i, i);
      break;
    }
  }
}

static void render_invoke(const nnc_cuda_kernel *k, const char *indent, nnc_strbuf *out) {
  nnc_strbuf_appendf(out, "%s%s(", indent, k->name);
  for (int i = 0; i < k->nargs; i++) nnc_strbuf_appendf(out, "%sa%d", i ? ", " : "", i);
  nnc_strbuf_append(out, ");\n");
}

void nnc_cuda_render_host_launcher(const nnc_cuda_kernel *k, nnc_strbuf *out) {
  if (k->cooperative) {
    nnc_strbuf_appendf(out, "\n/* cuda-emu: one thread of %s */\nstatic void %s_thread(void *const *args) {\n", k->name,
                       k->name);
    render_unpack(k, out);
    render_invoke(k, "  ", out);
    nnc_strbuf_append(out, "}\n");
  }
  nnc_strbuf_appendf(out,
                     "\n/* cuda-emu: blocks [first, last) of %s's launch */\n"
                     "void %s_emu(void *const *args, unsigned grid, unsigned block, unsigned first, unsigned last) {\n"
                     "  gridDim.x = grid, gridDim.y = gridDim.z = 1;\n"
                     "  blockDim.x = block, blockDim.y = blockDim.z = 1;\n"
                     "  blockIdx.y = blockIdx.z = threadIdx.y = threadIdx.z = 0;\n",
                     k->name, k->name);
  if (k->cooperative) {
    nnc_strbuf_appendf(out, "  nnc_emu_run_cooperative(%s_thread, args, block, first, last);\n}\n", k->name);
    return;
  }
  /* Without barriers the threads of a block may run one after another. */
  render_unpack(k, out);
  nnc_strbuf_append(out,
                    "  for (unsigned bx = first; bx < last; bx++) {\n"
                    "    blockIdx.x = bx;\n"
                    "    for (unsigned tx = 0; tx < block; tx++) {\n"
                    "      threadIdx.x = tx;\n");
  render_invoke(k, "      ", out);
  nnc_strbuf_append(out, "    }\n  }\n}\n");
}
