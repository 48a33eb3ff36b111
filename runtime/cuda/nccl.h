/* NCCL, the all-reduce of data-parallel training on GPUs (opened with
 * dlopen, as the other CUDA libraries are, so nnc builds and runs without
 * it). One communicator per run of ranks, made from a unique id that rank 0
 * draws and MPI broadcasts (runtime/comm.h). */
#ifndef NNC_NCCL_H
#define NNC_NCCL_H

#include <stddef.h>
#include <stdint.h>

#include "ir/status.h"
#include "passes/options.h"
#include "runtime/comm.h"

typedef struct nnc_nccl nnc_nccl;

/* Every rank of c calls this at the same point. Loads NCCL (where o says
 * CUDA libraries are), shares rank
 * 0's unique id and makes the communicator on this process's current CUDA
 * context. NULL with st saying how far it got and why it stopped. */
nnc_nccl *nnc_nccl_open(const nnc_options *o, nnc_comm *c, nnc_status *st);
/* The steps before the communicator (load, unique id, broadcast), for a
 * machine that has no GPU to make one on: 0 and `done` saying what worked,
 * or -1 with st. Collective over c like nnc_nccl_open. */
int nnc_nccl_bootstrap(nnc_comm *c, const nnc_options *o, char *done, size_t size, nnc_status *st);
void nnc_nccl_close(nnc_nccl *n);

/* out = the sum over ranks of share * in (count floats, device memory),
 * enqueued on the CUstream `stream`. */
int nnc_nccl_sum(nnc_nccl *n, const float *in, float *out, int64_t count, float share, void *stream,
                 const char *what, nnc_status *st);
/* Waits for `stream` (a CUstream of the current context) within the
 * communicator's deadline; past it, or on NCCL's asynchronous error, the
 * communicator is aborted and st names the cause: a rank that died must
 * not leave the others waiting for ever. */
int nnc_nccl_wait(nnc_nccl *n, void *stream, const char *what, nnc_status *st);

#endif
