/* `nnc opt`: passes over text IR from the command line (frontend/opt.c). */
#ifndef NNC_OPT_H
#define NNC_OPT_H

/* argv[0] is "opt"; returns the exit status. */
int nnc_opt_main(int argc, char **argv);

#endif
