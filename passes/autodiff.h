/* Reverse-mode autodiff over the graph. Each op row has a gradient rule,
 * nnc_grad_<op>, that adds ordinary nodes computing its operands' gradients
 * from its output's gradient, so the backward graph is fused, planned and
 * compiled like the forward one. */
#ifndef NNC_AUTODIFF_H
#define NNC_AUTODIFF_H

#include "ir/graph.h"

/* Adds the gradients of node `id`'s operands given `dy`, the gradient of its
 * output (-1 for the loss itself, whose gradient is 1). Writes -1 for an
 * operand that takes no gradient. The node is passed by value: adding nodes
 * may move the graph's array. */
typedef int nnc_grad_fn(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC],
                        nnc_status *st);

#define X(ENUM, name, arity, attrs, flags) nnc_grad_fn nnc_grad_##name;
#include "ir/ops.def"
#undef X

/* Adds to g the gradient of the scalar `loss` with respect to each node in
 * wrt; grads[i] receives the gradient node of wrt[i]. Every gradient is
 * checked to have its source's type. Fails, naming the node, when a wrt node
 * has no gradient: it does not affect the loss, or reaches it only as labels. */
int nnc_autodiff(nnc_graph *g, int32_t loss, const int32_t *wrt, int nwrt, int32_t *grads, nnc_status *st);

#endif
