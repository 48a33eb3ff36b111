/* The graph core: interning, leaf identity, the verifier, re-batching and
 * the graph hash. */
#include <string.h>

#include "ir/graph.h"
#include "ir/op.h"
#include "tests/ir/suites.h"

static int32_t leaf(nnc_graph *g, nnc_op op, const char *name, int rank, const int64_t *shape) {
  nnc_node_spec spec;
  nnc_status st = {0};
  memset(&spec, 0, sizeof spec);
  spec.op = op;
  spec.name = name;
  spec.dtype = NNC_F32;
  spec.rank = rank;
  memcpy(spec.shape, shape, sizeof shape[0] * (size_t)rank);
  int32_t id = nnc_graph_add(g, &spec, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static int32_t op1(nnc_graph *g, nnc_op op, int32_t a, const nnc_attrs *attrs) {
  nnc_status st = {0};
  int32_t id = nnc_graph_op(g, op, &a, 1, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static int32_t op2(nnc_graph *g, nnc_op op, int32_t a, int32_t b, const nnc_attrs *attrs) {
  nnc_status st = {0};
  int32_t src[2] = {a, b};
  int32_t id = nnc_graph_op(g, op, src, 2, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

/* x:[?,4] -> matmul w:[4,3] -> bias_add b:[3] -> relu, output "y". */
static nnc_graph *build_dense(void) {
  nnc_graph *g = nnc_graph_new();
  nnc_status st = {0};
  int32_t x = leaf(g, NNC_OP_INPUT, "x", 2, (int64_t[]){NNC_DIM_ANY, 4});
  nnc_graph_set_loc(g, "dense", "Dense", "m.lua", 3);
  int32_t w = leaf(g, NNC_OP_PARAM, "dense/kernel", 2, (int64_t[]){4, 3});
  int32_t b = leaf(g, NNC_OP_PARAM, "dense/bias", 1, (int64_t[]){3});
  int32_t mm = op2(g, NNC_OP_MATMUL, x, w, NULL);
  int32_t r = op1(g, NNC_OP_RELU, op2(g, NNC_OP_BIAS_ADD, mm, b, NULL), NULL);
  ck_assert_int_eq(nnc_graph_add_output(g, "y", r, &st), 0);
  return g;
}

START_TEST(test_intern_merges_identical_nodes) {
  nnc_graph *g = build_dense();
  int before = g->nnodes;
  int32_t r = nnc_graph_output_node(g, "y");
  int32_t again = op1(g, NNC_OP_RELU, g->nodes[r].src[0], NULL);
  ck_assert_int_eq(again, r);
  ck_assert_int_eq(g->nnodes, before);
  /* A different op on the same operand is a new node. */
  ck_assert_int_eq(op1(g, NNC_OP_TANH, g->nodes[r].src[0], NULL), before);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_intern_attributes_distinguish) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", 4, (int64_t[]){1, 8, 8, 2});
  nnc_attrs a = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID};
  nnc_attrs b = a;
  b.pad = NNC_PAD_SAME;
  int32_t pa = op1(g, NNC_OP_MAX_POOL, x, &a);
  int32_t pb = op1(g, NNC_OP_MAX_POOL, x, &b);
  ck_assert_int_ne(pa, pb);
  ck_assert_int_eq(op1(g, NNC_OP_MAX_POOL, x, &a), pa);
  nnc_graph_free(g);
}
END_TEST

/* Fields an op does not read are not part of its identity: a relu given
 * leftover conv attributes is the same relu. */
START_TEST(test_intern_ignores_unused_attributes) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", 2, (int64_t[]){2, 3});
  nnc_attrs junk = {.stride = {3, 3}, .pad = NNC_PAD_SAME, .rate = 0.5f, .shape_rank = 2, .shape = {7, 7}};
  int32_t plain = op1(g, NNC_OP_RELU, x, NULL);
  ck_assert_int_eq(op1(g, NNC_OP_RELU, x, &junk), plain);
  nnc_attrs zero;
  memset(&zero, 0, sizeof zero);
  ck_assert_mem_eq(&g->nodes[plain].attrs, &zero, sizeof zero);
  /* Entries past shape_rank are not part of a reshape either. */
  nnc_attrs r1 = {.shape_rank = 1, .shape = {3}};
  nnc_attrs r2 = {.shape_rank = 1, .shape = {3, 99, 99}};
  ck_assert_int_eq(op1(g, NNC_OP_RESHAPE, x, &r1), op1(g, NNC_OP_RESHAPE, x, &r2));
  /* A nonzero trans_b means transposed, whatever its value. */
  int32_t w = leaf(g, NNC_OP_PARAM, "w", 2, (int64_t[]){4, 3});
  nnc_attrs t1 = {.trans_b = 1}, t5 = {.trans_b = 5};
  ck_assert_int_eq(op2(g, NNC_OP_MATMUL, x, w, &t1), op2(g, NNC_OP_MATMUL, x, w, &t5));
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_leaves_same_name_and_type_merge) {
  nnc_graph *g = nnc_graph_new();
  int32_t a = leaf(g, NNC_OP_PARAM, "w", 2, (int64_t[]){4, 3});
  ck_assert_int_eq(leaf(g, NNC_OP_PARAM, "w", 2, (int64_t[]){4, 3}), a);
  /* Another name, or the same name on another kind of leaf, is another leaf. */
  ck_assert_int_ne(leaf(g, NNC_OP_PARAM, "v", 2, (int64_t[]){4, 3}), a);
  ck_assert_int_ne(leaf(g, NNC_OP_INPUT, "w", 2, (int64_t[]){4, 3}), a);
  ck_assert_int_eq(g->nnodes, 3);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_leaves_same_name_other_type_fail) {
  nnc_graph *g = nnc_graph_new();
  nnc_status st = {0};
  leaf(g, NNC_OP_PARAM, "w", 2, (int64_t[]){4, 3});
  nnc_node_spec spec = {.op = NNC_OP_PARAM, .name = "w", .dtype = NNC_F32, .rank = 2, .shape = {4, 4}};
  ck_assert_int_eq(nnc_graph_add(g, &spec, &st), -1);
  ck_assert_str_eq(st.msg, "param: a param named 'w' already exists with another type");
  ck_assert_int_eq(g->nnodes, 1);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_add_reports_layer_and_shapes) {
  nnc_graph *g = nnc_graph_new();
  nnc_status st = {0};
  int32_t x = leaf(g, NNC_OP_INPUT, "x", 2, (int64_t[]){NNC_DIM_ANY, 4});
  int32_t w = leaf(g, NNC_OP_PARAM, "w", 2, (int64_t[]){5, 3});
  nnc_graph_set_loc(g, "dense", "Dense", "m.lua", 7);
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_MATMUL, (int32_t[]){x, w}, 2, NULL, &st), -1);
  ck_assert_str_eq(st.msg,
                   "dense (Dense) at m.lua:7: inner dimensions differ: f32[?,4] has 4, f32[5,3] has 5");
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_MATMUL, (int32_t[]){x}, 1, NULL, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:7: matmul takes 2 operand(s), got 1");
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_verify_accepts_built_graph) {
  nnc_graph *g = build_dense();
  nnc_status st = {0};
  ck_assert_msg(nnc_graph_verify(g, &st) == 0, "%s", st.msg);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_verify_catches_wrong_type) {
  nnc_graph *g = build_dense();
  nnc_status st = {0};
  nnc_node *r = &g->nodes[nnc_graph_output_node(g, "y")];
  r->shape[1] = 5;
  ck_assert_int_eq(nnc_graph_verify(g, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:3: stored type f32[?,5], but its operands give f32[?,3]");
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_verify_catches_forward_operand) {
  nnc_graph *g = build_dense();
  nnc_status st = {0};
  nnc_node *mm = &g->nodes[3];
  ck_assert_int_eq(mm->op, NNC_OP_MATMUL);
  mm->src[1] = 4;
  ck_assert_int_eq(nnc_graph_verify(g, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:3: operand 1 (%4) does not come before it");
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_verify_catches_bad_arity_and_names) {
  nnc_graph *g = build_dense();
  nnc_status st = {0};
  g->nodes[5].nsrc = 2;
  ck_assert_int_eq(nnc_graph_verify(g, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:3: has 2 operands, relu takes 1");
  g->nodes[5].nsrc = 1;
  g->nodes[2].name = g->nodes[1].name;
  ck_assert_int_eq(nnc_graph_verify(g, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:3: the name 'dense/kernel' is used twice");
  g->nodes[2].name = NULL;
  ck_assert_int_eq(nnc_graph_verify(g, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:3: a leaf needs a name");
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_with_batch_sets_batch_and_reinfers) {
  nnc_graph *g = build_dense();
  nnc_status st = {0};
  nnc_graph *b = nnc_graph_with_batch(g, 8, &st);
  ck_assert_msg(b != NULL, "%s", st.msg);
  ck_assert_int_eq(b->nnodes, g->nnodes);
  ck_assert_int_eq(b->nodes[0].shape[0], 8);
  ck_assert_int_eq(b->nodes[0].shape[1], 4);
  int32_t y = nnc_graph_output_node(b, "y");
  ck_assert_int_eq(y, nnc_graph_output_node(g, "y"));
  ck_assert_int_eq(b->nodes[y].rank, 2);
  ck_assert_int_eq(b->nodes[y].shape[0], 8);
  ck_assert_int_eq(b->nodes[y].shape[1], 3);
  ck_assert_str_eq(b->nodes[y].loc.layer, "dense");
  ck_assert_int_eq(b->nodes[y].loc.line, 3);
  /* Params keep their shape and the original is untouched. */
  ck_assert_int_eq(b->nodes[1].shape[0], 4);
  ck_assert_int_eq(g->nodes[0].shape[0], NNC_DIM_ANY);
  ck_assert_int_eq(g->nodes[y].shape[0], NNC_DIM_ANY);
  ck_assert_msg(nnc_graph_verify(b, &st) == 0, "%s", st.msg);
  nnc_graph_free(b);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_with_batch_rejects_bad_batch) {
  nnc_graph *g = build_dense();
  nnc_status st = {0};
  ck_assert_ptr_null(nnc_graph_with_batch(g, 0, &st));
  ck_assert_str_eq(st.msg, "input: 'x' has a zero or negative size in f32[0,4]");
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_hash_stable) {
  nnc_graph *a = build_dense(), *b = build_dense();
  ck_assert_uint_eq(nnc_graph_hash(a), nnc_graph_hash(b));
  /* Where a node came from is not what it computes. */
  b->nodes[5].loc.line = 99;
  ck_assert_uint_eq(nnc_graph_hash(a), nnc_graph_hash(b));
  nnc_graph_free(a);
  nnc_graph_free(b);
}
END_TEST

START_TEST(test_hash_sensitive) {
  nnc_graph *a = build_dense();
  uint64_t h = nnc_graph_hash(a);
  nnc_status st = {0};
  /* A new node, another output, another batch. */
  nnc_graph *b = build_dense();
  op1(b, NNC_OP_SIGMOID, 4, NULL);
  ck_assert_uint_ne(nnc_graph_hash(b), h);
  nnc_graph_free(b);
  b = build_dense();
  ck_assert_int_eq(nnc_graph_add_output(b, "logits", 3, &st), 0);
  ck_assert_uint_ne(nnc_graph_hash(b), h);
  nnc_graph_free(b);
  b = nnc_graph_with_batch(a, 2, &st);
  ck_assert_uint_ne(nnc_graph_hash(b), h);
  nnc_graph_free(b);
  nnc_graph_free(a);
}
END_TEST

/* Two pools whose types agree, so only the attribute tells them apart. */
static uint64_t pool_hash(nnc_pad pad) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", 4, (int64_t[]){1, 8, 8, 2});
  nnc_attrs a = {.window = {2, 2}, .stride = {2, 2}, .pad = pad};
  op1(g, NNC_OP_AVG_POOL, x, &a);
  uint64_t h = nnc_graph_hash(g);
  nnc_graph_free(g);
  return h;
}

START_TEST(test_hash_sensitive_to_attributes) {
  ck_assert_uint_eq(pool_hash(NNC_PAD_SAME), pool_hash(NNC_PAD_SAME));
  ck_assert_uint_ne(pool_hash(NNC_PAD_SAME), pool_hash(NNC_PAD_VALID));
}
END_TEST

TCase *nnc_tcase_graph(void) {
  TCase *tc = tcase_create("graph");
  tcase_add_test(tc, test_intern_merges_identical_nodes);
  tcase_add_test(tc, test_intern_attributes_distinguish);
  tcase_add_test(tc, test_intern_ignores_unused_attributes);
  tcase_add_test(tc, test_leaves_same_name_and_type_merge);
  tcase_add_test(tc, test_leaves_same_name_other_type_fail);
  tcase_add_test(tc, test_add_reports_layer_and_shapes);
  tcase_add_test(tc, test_verify_accepts_built_graph);
  tcase_add_test(tc, test_verify_catches_wrong_type);
  tcase_add_test(tc, test_verify_catches_forward_operand);
  tcase_add_test(tc, test_verify_catches_bad_arity_and_names);
  tcase_add_test(tc, test_with_batch_sets_batch_and_reinfers);
  tcase_add_test(tc, test_with_batch_rejects_bad_batch);
  tcase_add_test(tc, test_hash_stable);
  tcase_add_test(tc, test_hash_sensitive);
  tcase_add_test(tc, test_hash_sensitive_to_attributes);
  return tc;
}
