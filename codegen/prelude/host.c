/* cuda-emu's host prelude: what the names codegen/cuda_prelude.c defines
 * for the host stand on. The build embeds this file's text in nnc
 * (scripts/embed_text.cmake) and cuda-emu compiles it before the kernels;
 * codegen/prelude/check_host.c compiles it on its own, with nnc's warnings.
 *
 * Cooperative kernels run each CUDA thread of a block on its own stack (a
 * fiber). At __syncthreads a thread hands over to the next, and the last
 * one back to the first, so every thread of the block has reached the
 * barrier before any passes it; when the last thread returns, the block is
 * done. Threads must all wait at the same barriers, as CUDA requires; a
 * block whose threads disagree (one returns while thread 0 waits) aborts
 * with a message rather than deadlocking.
 *
 * On x86-64 the switch saves only what the ABI asks a callee to keep (six
 * registers, MXCSR and the x87 control word): swapcontext also saves the
 * signal mask with a system call, which costs microseconds, and a tiled
 * kernel switches at every K step of every thread. Other hosts, or
 * -DNNC_EMU_UCONTEXT, use swapcontext. Fiber code runs only inside this
 * uninstrumented object, so sanitizers in the host program see heap memory
 * used as stacks and nothing else. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef struct nnc_dim3 { unsigned x, y, z; } nnc_dim3;
static _Thread_local nnc_dim3 blockIdx, threadIdx, blockDim, gridDim;

#define NNC_EMU_STACK (64 * 1024)
static void nnc_emu_fiber_main(void);
#if defined(__x86_64__) && !defined(NNC_EMU_UCONTEXT)
typedef struct nnc_emu_ctx { void *sp; } nnc_emu_ctx;
/* Saves the callee-saved state on this stack, its address in *from, and
 * resumes the stack saved in *to. */
__attribute__((visibility("hidden"))) void nnc_emu_switch(nnc_emu_ctx *from, nnc_emu_ctx *to);
__asm__(".pushsection .text\n"
        ".globl nnc_emu_switch\n.hidden nnc_emu_switch\n.type nnc_emu_switch, @function\n"
        "nnc_emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n  movq (%rsi), %rsp\n"
        "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n.size nnc_emu_switch, .-nnc_emu_switch\n.popsection\n");
/* A stack that nnc_emu_switch resumes into nnc_emu_fiber_main, aligned as
 * if it had been called (which never returns). */
static void nnc_emu_ctx_init(nnc_emu_ctx *c, char *stack, size_t size) {
  void **sp = (void **)((uintptr_t)(stack + size) & ~(uintptr_t)15);
  *--sp = 0;
  *--sp = (void *)nnc_emu_fiber_main;
  for (int i = 0; i < 6; i++) *--sp = 0;
  --sp;
  unsigned mxcsr;
  unsigned short fpcw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpcw));
  memcpy(sp, &mxcsr, 4);
  memcpy((char *)sp + 4, &fpcw, 2);
  c->sp = sp;
}
#else
#include <ucontext.h>
typedef struct nnc_emu_ctx { ucontext_t uc; } nnc_emu_ctx;
static void nnc_emu_switch(nnc_emu_ctx *from, nnc_emu_ctx *to) { swapcontext(&from->uc, &to->uc); }
static void nnc_emu_ctx_init(nnc_emu_ctx *c, char *stack, size_t size) {
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = stack;
  c->uc.uc_stack.ss_size = size;
  c->uc.uc_link = NULL;
  makecontext(&c->uc, nnc_emu_fiber_main, 0);
}
#endif

typedef void nnc_emu_thread_fn(void *const *args);
typedef struct nnc_f4 { float x, y, z, w; } nnc_f4;

/* One thread's cp.async copies not yet waited for: the data read at the
 * issue, where it goes, and the commit group it belongs to (the count of
 * groups committed before it; the open group is `committed`). */
enum { NNC_EMU_ASYNC = 64 };
typedef struct nnc_emu_async {
  struct { float *dst; float data[4]; unsigned words, group; } q[NNC_EMU_ASYNC];
  unsigned n, committed;
} nnc_emu_async;
enum { NNC_EMU_AT_BARRIER = 1, NNC_EMU_RETURNED = 2, NNC_EMU_AT_WARP = 3, NNC_EMU_WARP = 32 };
/* One cooperative block in flight on this host thread: ctx[t] is CUDA
 * thread t's saved state, ctx[threads] the launcher's. */
typedef struct nnc_emu_block {
  nnc_emu_thread_fn *fn;
  void *const *args;
  unsigned threads, current;
  int thread0; /* what thread 0 did last at a block's barrier: NNC_EMU_AT_BARRIER or NNC_EMU_RETURNED */
  int lane0[1024 / NNC_EMU_WARP]; /* what each warp's lane 0 did last, warp barriers included */
  char *stacks;
  nnc_emu_ctx *ctx;
  nnc_emu_async *async; /* per thread */
} nnc_emu_block;
static _Thread_local nnc_emu_block *nnc_emu_now;

static const char *nnc_emu_what(int what) {
  return what == NNC_EMU_RETURNED  ? "returned"
         : what == NNC_EMU_AT_WARP ? "waits at a warp-wide instruction"
                                   : "waits at __syncthreads";
}

/* Thread `me` has reached a barrier, a warp-wide instruction (what ==
 * NNC_EMU_AT_WARP) or returned: on to the next thread. Threads run in
 * order and a warp's last lane at a warp-wide instruction resumes the
 * warp's lane 0, so a warp passes it once all its lanes are there, and the
 * block passes a barrier once all its warps are. Lane 0 of each warp says
 * what the warp's other lanes must be doing, and thread 0 what the other
 * warps must be doing at a barrier. */
static void nnc_emu_hand_over(nnc_emu_block *b, unsigned me, int what) {
  unsigned lane0 = me / NNC_EMU_WARP * NNC_EMU_WARP, last = lane0 + NNC_EMU_WARP - 1;
  unsigned other = me != lane0 ? lane0 : what != NNC_EMU_AT_WARP && me != 0 ? 0 : me;
  int want = other == me ? what : other == lane0 ? b->lane0[me / NNC_EMU_WARP] : b->thread0;
  if (want != what) {
    fprintf(stderr, "nnc: cuda-emu: in block %u, thread %u %s but thread %u %s\n", blockIdx.x, me,
            nnc_emu_what(what), other, nnc_emu_what(want));
    abort();
  }
  if (me == lane0) b->lane0[me / NNC_EMU_WARP] = what;
  if (me == 0 && what != NNC_EMU_AT_WARP) b->thread0 = what;
  if (last >= b->threads) last = b->threads - 1;
  unsigned next = what == NNC_EMU_AT_WARP ? (me == last ? lane0 : me + 1)
                  : me + 1 < b->threads ? me + 1
                  : what == NNC_EMU_RETURNED ? b->threads
                                             : 0;
  b->current = next;
  nnc_emu_switch(&b->ctx[me], &b->ctx[next]);
  threadIdx.x = me;
}

static void nnc_emu_fiber_main(void) {
  nnc_emu_block *b = nnc_emu_now;
  unsigned me = b->current;
  threadIdx.x = me;
  b->fn(b->args);
  nnc_emu_hand_over(b, me, NNC_EMU_RETURNED);
  abort(); /* a returned thread is never resumed */
}

static void nnc_emu_syncthreads(void) {
  if (nnc_emu_now) nnc_emu_hand_over(nnc_emu_now, threadIdx.x, NNC_EMU_AT_BARRIER);
  else if (blockDim.x * blockDim.y * blockDim.z > 1) {
    fprintf(stderr, "nnc: cuda-emu: a kernel not marked cooperative waits at __syncthreads\n");
    abort();
  }
}

/* TF32 tensor-core instructions, as the kernels call them (the CUDA
 * branch of the prelude, codegen/cuda_prelude.c, has the real ones);
 * nnc_tf32, cvt.rna.tf32.f32, comes before this file (codegen/prelude/tf32.c). */

/* A warp-wide instruction's meeting point: every lane of the warp gets
 * here before any goes on. Only cooperative kernels' threads are fibers. */
static void nnc_emu_warp_sync(void) {
  if (!nnc_emu_now) {
    fprintf(stderr, "nnc: cuda-emu: a kernel not marked cooperative uses a warp-wide instruction\n");
    abort();
  }
  nnc_emu_hand_over(nnc_emu_now, threadIdx.x, NNC_EMU_AT_WARP);
}

/* mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 with D = C in place:
 * each lane passes its fragments (lane = 4 g + t; a0..a3 hold (g, t),
 * (g+8, t), (g, t+4), (g+8, t+4) of the 16x8 A; b0, b1 hold (t, g) and
 * (t+4, g) of the 8x8 B; d0..d3 hold (g, 2t), (g, 2t+1), (g+8, 2t),
 * (g+8, 2t+1) of the 16x8 D). The lanes post their fragments, meet, and
 * each computes its own four sums from the warp's. The hardware reads only
 * an operand's TF32 bits, and multiplies exactly (two 11-bit significands
 * fit a float's 24); the order in which it adds is not specified: here C
 * first, then k = 0..7, in float. Posts alternate between two buffers, so
 * one meeting per instruction suffices: a lane writes a buffer again only
 * after the next meeting, which every lane reaches after reading it. */
static _Thread_local float nnc_emu_mma_a[2][1024][4], nnc_emu_mma_b[2][1024][2];
static _Thread_local unsigned char nnc_emu_mma_buffer[1024];
static float nnc_emu_tf32_bits(float x) {
  unsigned u;
  memcpy(&u, &x, 4);
  u &= 0xffffe000u;
  memcpy(&x, &u, 4);
  return x;
}
static void nnc_mma_tf32(float *d, const float *a, const float *b) {
  const unsigned me = threadIdx.x, lane0 = me / NNC_EMU_WARP * NNC_EMU_WARP, p = nnc_emu_mma_buffer[me];
  nnc_emu_mma_buffer[me] = (unsigned char)(p ^ 1u);
  memcpy(nnc_emu_mma_a[p][me], a, sizeof nnc_emu_mma_a[p][me]);
  memcpy(nnc_emu_mma_b[p][me], b, sizeof nnc_emu_mma_b[p][me]);
  nnc_emu_warp_sync();
  const unsigned g = (me - lane0) / 4, t = (me - lane0) % 4;
  for (unsigned r = 0; r < 4; r++) {
    const unsigned row = g + 8 * (r / 2), col = 2 * t + r % 2;
    float sum = d[r];
    for (unsigned k = 0; k < 8; k++) {
      float x = nnc_emu_tf32_bits(nnc_emu_mma_a[p][lane0 + row % 8 * 4 + k % 4][row / 8 + 2 * (k / 4)]);
      float y = nnc_emu_tf32_bits(nnc_emu_mma_b[p][lane0 + col * 4 + k % 4][k / 4]);
      sum += x * y;
    }
    d[r] = sum;
  }
}

/* cp.async: the destination is undefined until a wait_group that covers
 * the copy, so the issue fills it with NaN and the wait writes the data (a
 * missing wait, or a missing barrier before another thread's data is read,
 * shows as NaN in the result); bytes past `bytes` are zero-filled. Each
 * thread waits only for its own copies, as on the GPU. */
static nnc_emu_async *nnc_emu_async_of_thread(const char *what) {
  if (!nnc_emu_now) {
    fprintf(stderr, "nnc: cuda-emu: a kernel not marked cooperative uses %s\n", what);
    abort();
  }
  return &nnc_emu_now->async[threadIdx.x];
}
static void nnc_emu_cp_async(float *dst, const float *src, unsigned words, int bytes) {
  nnc_emu_async *a = nnc_emu_async_of_thread("cp.async");
  if (a->n == NNC_EMU_ASYNC || bytes < 0 || (unsigned)bytes > 4 * words) {
    fprintf(stderr, "nnc: cuda-emu: thread %u of block %u: cp.async of %d bytes into %u words, %u copies pending\n",
            threadIdx.x, blockIdx.x, bytes, 4 * words, a->n);
    abort();
  }
  a->q[a->n].dst = dst, a->q[a->n].words = words, a->q[a->n].group = a->committed;
  memset(a->q[a->n].data, 0, sizeof a->q[a->n].data);
  memcpy(a->q[a->n].data, src, (size_t)bytes);
  a->n++;
  for (unsigned i = 0; i < words; i++) dst[i] = NAN;
}
static void nnc_cp_async4(float *dst, const float *src, int bytes) { nnc_emu_cp_async(dst, src, 1, bytes); }
static void nnc_cp_async16(float *dst, const float *src, int bytes) { nnc_emu_cp_async(dst, src, 4, bytes); }
static void nnc_cp_async_commit(void) { nnc_emu_async_of_thread("cp.async.commit_group")->committed++; }
/* cp.async.wait_group n: all but the newest n committed groups are done. */
static void nnc_cp_async_wait(unsigned n) {
  nnc_emu_async *a = nnc_emu_async_of_thread("cp.async.wait_group");
  unsigned kept = 0;
  for (unsigned i = 0; i < a->n; i++) {
    if (a->q[i].group + n < a->committed) memcpy(a->q[i].dst, a->q[i].data, 4 * (size_t)a->q[i].words);
    else a->q[kept++] = a->q[i];
  }
  a->n = kept;
}

/* Each stack starts with a marker that a thread running past its stack
 * would overwrite first; checked after every block. */
static const unsigned long long nnc_emu_marker = 0x6e6e632d73746b21ull;
static void nnc_emu_check_stacks(const nnc_emu_block *b) {
  for (unsigned t = 0; t < b->threads; t++)
    if (memcmp(b->stacks + (size_t)t * NNC_EMU_STACK, &nnc_emu_marker, sizeof nnc_emu_marker)) {
      fprintf(stderr, "nnc: cuda-emu: thread %u of block %u overran its %d-byte stack\n", t, blockIdx.x,
              NNC_EMU_STACK);
      abort();
    }
}

/* Runs blocks [first, last), each as `threads` fibers calling fn(args). */
static void nnc_emu_run_cooperative(nnc_emu_thread_fn *fn, void *const *args, unsigned threads, unsigned first,
                                    unsigned last) {
  nnc_emu_block b = {fn, args, threads, 0, 0, {0}, NULL, NULL, NULL};
  b.stacks = malloc((size_t)threads * NNC_EMU_STACK);
  b.ctx = malloc(sizeof *b.ctx * ((size_t)threads + 1));
  b.async = malloc(sizeof *b.async * threads);
  if (!b.stacks || !b.ctx || !b.async) {
    fprintf(stderr, "nnc: cuda-emu: out of memory for %u thread stacks\n", threads);
    abort();
  }
  nnc_emu_now = &b;
  for (unsigned bx = first; bx < last; bx++) {
    blockIdx.x = bx;
    for (unsigned t = 0; t < threads; t++) {
      memcpy(b.stacks + (size_t)t * NNC_EMU_STACK, &nnc_emu_marker, sizeof nnc_emu_marker);
      nnc_emu_ctx_init(&b.ctx[t], b.stacks + (size_t)t * NNC_EMU_STACK, NNC_EMU_STACK);
      b.async[t].n = b.async[t].committed = 0;
    }
    memset(nnc_emu_mma_buffer, 0, sizeof nnc_emu_mma_buffer);
    b.current = 0;
    nnc_emu_switch(&b.ctx[threads], &b.ctx[0]);
    nnc_emu_check_stacks(&b);
  }
  nnc_emu_now = NULL;
  threadIdx.x = 0;
  free(b.async);
  free(b.ctx);
  free(b.stacks);
}

/* Blocks may run on several host threads at once. */
static float nnc_emu_atomic_add(float *p, float v) {
  unsigned *bits = (unsigned *)p, seen = __atomic_load_n(bits, __ATOMIC_RELAXED), want;
  float old;
  do {
    union { unsigned u; float f; } a, b;
    a.u = seen;
    old = a.f;
    b.f = old + v;
    want = b.u;
  } while (!__atomic_compare_exchange_n(bits, &seen, want, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
