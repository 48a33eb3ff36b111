/* The ir test executable: one Suite built from the TCases in suites.h. */
#include "tests/ir/suites.h"
#include "tests/testutil.h"

typedef TCase *tcase_fn(void);

/* Add a TCase by adding one line here (and its declaration in suites.h). */
static tcase_fn *const tcases[] = {
    nnc_tcase_atomic_file,
    nnc_tcase_graph,
    nnc_tcase_strbuf,
    nnc_tcase_size,
    nnc_tcase_text,
};

int main(void) {
  Suite *suite = suite_create("ir");
  for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) suite_add_tcase(suite, tcases[i]());
  return nnc_test_main(suite);
}
