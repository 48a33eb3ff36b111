/* The test cases of the ir suite, one TCase per file in tests/ir/. Adding a
 * file means declaring its TCase here and listing it in main.c. */
#ifndef NNC_TESTS_IR_SUITES_H
#define NNC_TESTS_IR_SUITES_H

#include <check.h>

TCase *nnc_tcase_atomic_file(void);
TCase *nnc_tcase_graph(void);
TCase *nnc_tcase_strbuf(void);
TCase *nnc_tcase_size(void);
TCase *nnc_tcase_text(void);

#endif
