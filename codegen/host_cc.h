/* The host C compiler, found at run time, turning generated source into a
 * shared object for cuda-emu. The compiler is o->cc ($NNC_CC, else $CC), else cc;
 * results are cached by content (codegen/cache.h). */
#ifndef NNC_CODEGEN_HOST_CC_H
#define NNC_CODEGEN_HOST_CC_H

#include "ir/status.h"
#include "passes/options.h"

typedef struct nnc_host_so {
  char path[4096];   /* the shared object, ready for dlopen */
  char tmpdir[2048]; /* a private folder to remove after loading, or "" */
} nnc_host_so;

/* Compiles `source` (a C11 translation unit). On failure the message shows
 * the compiler's first lines of errors and where the source was written;
 * `what` names the unit in messages and file names. */
int nnc_host_compile(const nnc_options *o, const char *what, const char *source, nnc_host_so *out,
                     nnc_status *st);
/* Whether the compiler runs (its --version, asked once per compiler named):
 * cuda-emu asks when it is chosen, so a missing compiler is said at once. */
int nnc_host_cc_probe(const nnc_options *o, nnc_status *st);
/* Removes the private folder, if any (the object stays mapped once loaded). */
void nnc_host_so_cleanup(nnc_host_so *so);

#endif
