/* --dump-graph: a DOT file per pass that Graphviz's own parser accepts
 * (dot renders it to SVG), with fused groups as clusters and each node's
 * op, type and script line; an SVG beside it where dot is installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/files/suites.h"
#include "tests/testutil.h"

START_TEST(graph_per_pass_with_clusters) {
  char *out, *err;
  nnc_test_write_temp("graph.lua",
                      "local m = nn.Sequential { nn.Conv2D { 4, 3, activation = 'relu', input_shape = { 8, 8, 1 } },\n"
                      "  nn.Flatten(), nn.Dense { 3, activation = 'softmax' } }\n"
                      "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
                      "m:fit(data.zeros { 4, 8, 8, 1 }, data.zeros({ 4 }, 'i32'), { epochs = 1, verbose = 0 })\n");
  /* the graph after fuse, whatever its place in the pipeline, copied to a fixed name */
  int rc = files_sh("rm -rf g && mkdir g && $NNC graph.lua --dump-graph g && ls g && "
                    "cp g/train-step.*-fuse.dot g/fused.dot && cp g/train-step.*-fuse.svg g/fused.svg",
                    &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  /* the train-step graph after each of its passes */
  const char *want[] = {"train-step.00-verify.dot", "train-step.00-verify.svg", "-autodiff.dot", "-fuse.dot",
                        "-plan-memory.svg", "forward.00-verify.dot", NULL};
  for (const char *const *w = want; *w; w++) ck_assert_msg(strstr(out, *w), "no %s in:\n%s", *w, out);
  free(out), free(err);
  char path[600];
  snprintf(path, sizeof path, "%s/g/fused.dot", files_dir());
  char *dot = nnc_test_read_file(path);
  ck_assert_ptr_nonnull(dot);
  ck_assert_msg(strstr(dot, "subgraph cluster_0") && strstr(dot, "label=\"fused #0: "), "%.2000s", dot);
  ck_assert_msg(strstr(dot, "conv2d\\nf32[?,6,6,4]\\nconv2d graph.lua:1"), "%.3000s", dot);
  ck_assert_msg(strstr(dot, "conv2d/kernel\\nf32[3,3,1,4]"), "%.3000s", dot);
  free(dot);
  /* Graphviz parses it: dot -Tplain lists every node */
  rc = files_sh("dot -Tplain g/fused.dot | grep -c ^node", &out, &err);
  ck_assert_msg(rc == 0 && atoi(out) > 20, "%s%s", out, err);
  free(out), free(err);
  snprintf(path, sizeof path, "%s/g/fused.svg", files_dir());
  char *svg = nnc_test_read_file(path);
  ck_assert_msg(svg && strstr(svg, "<svg") && strstr(svg, "fused #0"), "svg: %.300s", svg ? svg : "(none)");
  free(svg);
}
END_TEST

START_TEST(unwritable_graph_dir) {
  char *out, *err;
  nnc_test_write_temp("graph2.lua", "local m = nn.Sequential { nn.Dense { 2, input_shape = { 3 } } }\n"
                                    "m:compile { optimizer = 'sgd', loss = 'mse' }\n"
                                    "m:fit(data.zeros { 2, 3 }, data.zeros { 2, 2 }, { verbose = 0 })\n");
  /* the folder is made as mkdir -p; a file in the way cannot be */
  int rc = files_sh("$NNC graph2.lua --dump-graph graph2.lua/dir", &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "--dump-graph: cannot make the folder graph2.lua: Not a directory"), "%s", err);
  free(out), free(err);
}
END_TEST

TCase *tcase_dot(void) {
  TCase *tc = tcase_create("dot");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, graph_per_pass_with_clusters);
  tcase_add_test(tc, unwritable_graph_dir);
  return tc;
}
