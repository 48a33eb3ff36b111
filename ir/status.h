/* Errors as values: library code fills an nnc_status and returns -1; only
 * main() turns a status into an exit code. Messages are written for the
 * user and already carry the script place, layer and shapes. */
#ifndef NNC_STATUS_H
#define NNC_STATUS_H

#include <stdarg.h>

typedef struct nnc_status {
  int failed;
  char msg[1536];
} nnc_status;

/* Records a message and returns -1, so callers can `return nnc_fail(...)`. */
int nnc_fail(nnc_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nnc_failv(nnc_status *st, const char *fmt, va_list ap);
/* Puts context in front of an existing message ("loading x: " + msg). */
int nnc_fail_prefix(nnc_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The end of a process that cannot get the few bytes of its own
 * bookkeeping (a graph's tables, a string, a pass's maps): no caller could
 * do better with a status there. It prints "nnc: error: out of memory
 * (what)" and exits with 1: never a signal or a core dump. Allocations a
 * script or a file sizes are checked (ir/size.h) and fail as statuses. */
_Noreturn void nnc_out_of_memory(const char *what);

/* The closest valid name to `name` among `choices` (NULL-terminated), by
 * edit distance, for "did you mean" hints; NULL if nothing is close. */
const char *nnc_closest_name(const char *name, const char *const *choices);

#endif
