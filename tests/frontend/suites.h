/* The front end's test cases, one line each. main.c includes this list twice:
 * once to declare the functions (the default below) and once with its own
 * NNC_TCASE to add them to the suite. To add a case, add a line. */
#include <check.h>

#ifndef NNC_TCASE
#define NNC_TCASE(fn) TCase *fn(void);
#endif

NNC_TCASE(nnc_tensor_tcase)
NNC_TCASE(nnc_data_tcase)
NNC_TCASE(nnc_fetch_tcase)
NNC_TCASE(nnc_imagegen_tcase)

#undef NNC_TCASE
