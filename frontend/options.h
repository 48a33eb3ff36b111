/* The environment's half of nnc_options (passes/options.h): every variable
 * README documents is read here, once, by the command line (frontend/main.c
 * adds the flags on top) and by test programs that want what nnc would do. */
#ifndef NNC_FRONTEND_OPTIONS_H
#define NNC_FRONTEND_OPTIONS_H

#include "ir/status.h"
#include "passes/options.h"

/* Fills o from the environment, from a zero value. The one variable that
 * can be wrong is $NNC_LOWER: -1 with the message naming it (o holds the
 * rest). */
int nnc_options_from_env(nnc_options *o, nnc_status *st);

#endif
