/* Tensor types, op attributes and the op enum shared by every module. */
#ifndef NNC_TYPES_H
#define NNC_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define NNC_MAX_RANK 6
#define NNC_MAX_SRC 4
/* A dimension not known until run time: the batch, printed as None/?. */
#define NNC_DIM_ANY (-1)

/* u8 exists for host tensors (raw image bytes, as Keras's load_data gives
 * them); graphs compute in f32 and i32 only. */
typedef enum nnc_dtype { NNC_F32, NNC_I32, NNC_U8 } nnc_dtype;

typedef enum nnc_pad { NNC_PAD_VALID, NNC_PAD_SAME } nnc_pad;

/* Which attribute fields an op reads (ops.def's third column). */
enum {
  NNC_A_STRIDE = 1 << 0,
  NNC_A_WINDOW = 1 << 1,
  NNC_A_PAD = 1 << 2,
  NNC_A_TRANS_A = 1 << 3,
  NNC_A_TRANS_B = 1 << 4,
  NNC_A_RATE = 1 << 5,
  NNC_A_STREAM = 1 << 6,
  NNC_A_SHAPE = 1 << 7,
  NNC_A_ALPHA = 1 << 8,
  NNC_A_EPS = 1 << 9,
  NNC_A_INDEX = 1 << 10,
  NNC_A_BUCKET = 1 << 11,
};

enum {
  NNC_OPF_LEAF = 1 << 0,        /* input or parameter: no operands, typed by the spec */
  NNC_OPF_ELEMENTWISE = 1 << 1, /* output element i depends on input element i only */
  NNC_OPF_UPDATE = 1 << 2,      /* elementwise but for a trailing f32[] scalar operand */
  NNC_OPF_CONTRACTION = 1 << 3, /* a GEMM: FLOPs grow faster than bytes, so fusion can hide the work
                                   around it but not its own */
  NNC_OPF_COLLECTIVE = 1 << 4,  /* exchanges data between ranks: never fused, run by the runtime's
                                   communicator rather than a kernel */
};

/* One flat struct for every op's attributes: small, hashable as bytes (the
 * graph zeroes it before filling), and printable from a field table. */
typedef struct nnc_attrs {
  int32_t stride[2];
  int32_t window[2];
  int32_t pad;
  int32_t trans_a, trans_b;
  int32_t stream; /* dropout: random stream, so every backend draws the same mask */
  float rate;
  float alpha; /* ema: weight of the new value; momentum */
  float eps;   /* optimizer epsilon; batch normalization's epsilon */
  int32_t index; /* bn_moving: the row of bn_stats it follows */
  int32_t bucket; /* allreduce: the members of one bucket are reduced as one message */
  int32_t shape_rank;
  int64_t shape[NNC_MAX_RANK];
} nnc_attrs;

typedef enum nnc_op {
#define X(ENUM, name, arity, attrs, flags) NNC_OP_##ENUM,
#include "ir/ops.def"
#undef X
  NNC_OP_COUNT
} nnc_op;

typedef struct nnc_cost {
  double flops;
  double bytes;
} nnc_cost;

const char *nnc_dtype_name(nnc_dtype t);
size_t nnc_dtype_size(nnc_dtype t);

#endif
