/* The ranks of a data-parallel run and the collectives between them.
 *
 * One process per device, the same train-step graph on each: `mpirun -np N
 * nnc SCRIPT` starts N ranks, each trains on its rows of every global batch,
 * and the gradients are summed by an all-reduce inserted by a pass
 * (passes/allreduce.c) before the optimizer update. The transport is MPI
 * (Open MPI's libmpi, opened with dlopen as the CUDA libraries are, so nnc
 * builds and runs without it). Every wait has a deadline: a rank that died
 * or stopped ends the job with a message instead of a hang. */
#ifndef NNC_COMM_H
#define NNC_COMM_H

#include <stdint.h>

#include "ir/status.h"

typedef struct nnc_comm nnc_comm;
typedef struct nnc_comm_request nnc_comm_request; /* a collective in flight */

/* The world of an `mpirun` launch of `size` ranks (the launcher's
 * environment says so; main reads it). timeout_s bounds every wait. */
nnc_comm *nnc_comm_open(int size, double timeout_s, nnc_status *st);
void nnc_comm_close(nnc_comm *c);
int nnc_comm_rank(const nnc_comm *c);
int nnc_comm_size(const nnc_comm *c);
/* The deadline of every wait, in seconds (--collective-timeout). */
double nnc_comm_timeout(const nnc_comm *c);

/* Sums count floats (or doubles) across ranks in place. start returns at
 * once; wait returns 0 once every rank has contributed, or -1 with the
 * reason (deadline passed, MPI error). test advances a request without
 * waiting: 1 when done. */
nnc_comm_request *nnc_comm_sum_start(nnc_comm *c, float *data, int64_t count, nnc_status *st);
int nnc_comm_test(nnc_comm_request *r);
int nnc_comm_wait(nnc_comm_request *r, const char *what, nnc_status *st);
int nnc_comm_sum_doubles(nnc_comm *c, double *data, int count, const char *what, nnc_status *st);
/* Rank 0's bytes to every rank (NCCL's unique id). */
int nnc_comm_broadcast(nnc_comm *c, void *data, int bytes, const char *what, nnc_status *st);
/* Ends every rank of the job at once, after this rank printed why. */
void nnc_comm_abort(nnc_comm *c, int code);

#endif
