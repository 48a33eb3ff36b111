/* Every setting of a compile and run, in one value: the command line's flags
 * and the environment variables README documents, read once by
 * frontend/options.c and handed down (nnc_pass_ctx, the backends' prepare,
 * codegen). Nothing below the frontend reads a flag or the environment, so a
 * library caller (a test) states what it wants. The zero value is the
 * default, as with no flag and an empty environment: the caller's backend,
 * fused, nnc's own kernels, no dumps, no kernel cache.
 *
 * Strings are borrowed (argv, the environment, literals) and outlive every
 * graph prepared with them; a backend copies what it keeps. */
#ifndef NNC_PASSES_OPTIONS_H
#define NNC_PASSES_OPTIONS_H

#include "passes/lower.h"

/* Where the IR goes after passes: `--dump-ir`, `--dump-ir=PASS`, `--dump-dir DIR`,
 * and as pictures `--dump-graph DIR`. */
typedef struct nnc_dump_opts {
  int enabled;           /* the IR as text */
  const char *graph_dir; /* NULL, or where each pass's graph goes as DOT (and SVG) */
  const char *only_pass; /* NULL: every pass */
  const char *dir;       /* NULL: stdout */
  const char *label;     /* which graph ("forward", "train-step"), part of file names */
} nnc_dump_opts;

typedef struct nnc_options {
  const char *backend; /* --backend: cpu, interp, cuda, cuda-emu; NULL: the caller's choice */
  int no_fuse;         /* --no-fuse: every op on its own */
  /* --lower, else $NNC_LOWER: per op kind of passes/lower.c, the library it runs as. */
  nnc_lower_lib lower[NNC_LOWER_KINDS];
  nnc_dump_opts dump;
  const char *arch;         /* --arch, else $NNC_CUDA_ARCH; NULL: the GPU's own (sm_90 compiling only) */
  const char *dump_kernels; /* --dump-kernels DIR, else $NNC_DUMP_KERNELS; NULL: none */
  /* --precision, else $NNC_PRECISION: of GEMMs on the cuda backends, "fp32"
   * or "tf32"; NULL: TF32 where the target has it (codegen/cuda.h). */
  const char *precision;
  /* $NNC_DEBUG: the detail level (1 memory plans, 2 every node, 4 every
   * CUDA launch) and whether it names `nan` (every value of every step is
   * checked for NaN and infinity). */
  int debug;
  int debug_nan;

  /* The cpu backend. */
  int cpu_threads;      /* $NNC_CPU_THREADS; 0: one per online CPU */
  const char *cpu_conv; /* $NNC_CPU_CONV: gemm, winograd or direct for every convolution; NULL: measured */
  const char *cpu_matmul; /* $NNC_CPU_MATMUL: blas or blocked for every matmul that fits; NULL: measured */
  int no_winograd;      /* $NNC_CPU_WINOGRAD=0: Winograd is never chosen */
  int cpu_poison;       /* $NNC_CPU_POISON: the arena starts as NaN, so a value read before it is written shows */

  /* The cuda backends. */
  int no_cuda_graph;   /* $NNC_CUDA_GRAPH=0: each launch on its own, not one CUDA graph */
  int cuda_device;     /* $NNC_CUDA_DEVICE, else the rank on this machine ($OMPI_COMM_WORLD_LOCAL_RANK), else 0 */
  int cuda_device_set; /* cuda_device came from $NNC_CUDA_DEVICE (for the message when it is missing) */
  int emu_threads;     /* $NNC_EMU_THREADS: cuda-emu's host threads; 0: one per CPU, at most 8 */
  const char *nvrtc;   /* $NNC_NVRTC: the NVRTC library to load; NULL: searched for */
  const char *cc;      /* $NNC_CC, else $CC: cuda-emu's C compiler (may hold arguments); NULL: cc */

  /* Files. The kernel cache is $NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc,
   * else $HOME/.cache/nnc; none without any of them, or with $NNC_NOCACHE. */
  int nocache;
  const char *cache_dir, *xdg_cache_home, *home;
  const char *tmpdir; /* $TMPDIR; NULL: /tmp */
  /* The data sets scripts load by name (frontend/datasets.c): $NNC_DATA is
   * looked in first, $NNC_DATA_URL replaces Keras's address; they are
   * fetched into $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc. */
  const char *data_dir, *data_url;
  /* Where CUDA libraries are looked for (codegen/dl.h). */
  const char *cuda_home, *cuda_path, *virtual_env, *conda_prefix;
} nnc_options;

#endif
