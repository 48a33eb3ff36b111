/* NNC_DEBUG, read in one place: a comma-separated list of a detail level
 * (NNC_DEBUG=1 reports memory plans, 2 every node, 4 every CUDA launch) and
 * named checks ("nan": every value of every step is checked for NaN and
 * infinity), in any order: NNC_DEBUG=2,nan. */
#ifndef NNC_DEBUG_H
#define NNC_DEBUG_H

/* The detail level: the largest number in the list, 0 without one. */
int nnc_debug_level(void);
/* Whether the list names `check`. */
int nnc_debug_has(const char *check);

#endif
