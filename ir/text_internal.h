/* What the text IR's printer (ir/text_print.c) and parser (ir/text.c) share. */
#ifndef NNC_TEXT_INTERNAL_H
#define NNC_TEXT_INTERNAL_H

#include "ir/attrs.h"
#include "ir/op.h"
#include "ir/strbuf.h"

/* Where a field lives: int32_t or float by its kind (NNC_FIELD_SHAPE uses
 * shape_rank and shape by name). */
static inline void *field_at(nnc_attrs *a, const nnc_attr_field *f) { return (char *)a + f->offset; }
static inline const void *cfield_at(const nnc_attrs *a, const nnc_attr_field *f) { return (const char *)a + f->offset; }

/* Robust against a corrupted node, since dumps are how corruption is found. */
static inline const char *op_name(nnc_op op) { return (unsigned)op < NNC_OP_COUNT ? nnc_ops[op].name : "?"; }
static inline unsigned op_attrs(nnc_op op) { return (unsigned)op < NNC_OP_COUNT ? nnc_ops[op].attrs : 0; }
static inline int op_is_leaf(nnc_op op) { return (unsigned)op < NNC_OP_COUNT && (nnc_ops[op].flags & NNC_OPF_LEAF); }

/* A tensor type as the text IR writes it: "f32[32,28,28,1]". */
void nnc_text_print_type(nnc_strbuf *b, nnc_dtype dtype, int rank, const int64_t *shape);

#endif
