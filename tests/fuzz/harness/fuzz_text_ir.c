/* The text IR parser (ir/text.c), and its round trip: text that parses
 * prints, parses again and prints the same. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ir/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_string(data, size);
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "fuzz.ir", &st);
  free(text);
  fuzz_outcome(g ? NULL : st.msg);
  if (!g) return 0;
  char *first = nnc_graph_to_text(g);
  nnc_graph_free(g);
  if (!first) fuzz_fail("a parsed graph does not print");
  nnc_status st2 = {0};
  nnc_graph *again = nnc_graph_parse(first, "printed.ir", &st2);
  if (!again) fuzz_fail("the printed graph does not parse: %s\n%s", st2.msg, first);
  char *second = nnc_graph_to_text(again);
  nnc_graph_free(again);
  if (!second || strcmp(first, second))
    fuzz_fail("printing the reparsed graph changed it:\n%s\n---\n%s", first, second ? second : "(nothing)");
  free(first);
  free(second);
  return 0;
}
