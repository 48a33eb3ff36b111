/* The attribute fields of nnc_attrs as data: one row per NNC_A_* bit. The
 * graph (which fields are a node's identity), the printer and the parser all
 * read this table, so a new attribute is one row here. */
#ifndef NNC_ATTRS_H
#define NNC_ATTRS_H

#include <stddef.h>

#include "ir/types.h"

typedef enum nnc_field_kind {
  NNC_FIELD_PAIR,  /* [a,b] of int32 */
  NNC_FIELD_PAD,   /* same | valid */
  NNC_FIELD_BOOL,  /* 0 | 1 */
  NNC_FIELD_FLOAT, /* printed %.9g, enough digits for a float to round-trip */
  NNC_FIELD_INT,   /* int32 */
  NNC_FIELD_SHAPE, /* [d,...]: shape_rank entries of shape */
} nnc_field_kind;

typedef struct nnc_attr_field {
  unsigned bit; /* NNC_A_* */
  const char *name;
  nnc_field_kind kind;
  size_t offset; /* of the field in nnc_attrs */
} nnc_attr_field;

/* In printing order, which reads naturally ("window, stride, pad"). */
extern const nnc_attr_field nnc_attr_fields[];
extern const int nnc_attr_field_count;

/* The fields in `mask` copied from a in their one spelling (booleans 0/1,
 * pad same/valid), every other byte zero: a node's identity. */
nnc_attrs nnc_attrs_used(const nnc_attrs *a, unsigned mask);

#endif
