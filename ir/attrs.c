#include "ir/attrs.h"

#include <stdint.h>
#include <string.h>

const nnc_attr_field nnc_attr_fields[] = {
    {NNC_A_WINDOW, "window", NNC_FIELD_PAIR, offsetof(nnc_attrs, window)},
    {NNC_A_STRIDE, "stride", NNC_FIELD_PAIR, offsetof(nnc_attrs, stride)},
    {NNC_A_PAD, "pad", NNC_FIELD_PAD, offsetof(nnc_attrs, pad)},
    {NNC_A_TRANS_A, "trans_a", NNC_FIELD_BOOL, offsetof(nnc_attrs, trans_a)},
    {NNC_A_TRANS_B, "trans_b", NNC_FIELD_BOOL, offsetof(nnc_attrs, trans_b)},
    {NNC_A_RATE, "rate", NNC_FIELD_FLOAT, offsetof(nnc_attrs, rate)},
    {NNC_A_STREAM, "stream", NNC_FIELD_INT, offsetof(nnc_attrs, stream)},
    {NNC_A_SHAPE, "shape", NNC_FIELD_SHAPE, offsetof(nnc_attrs, shape)},
    {NNC_A_ALPHA, "alpha", NNC_FIELD_FLOAT, offsetof(nnc_attrs, alpha)},
    {NNC_A_EPS, "eps", NNC_FIELD_FLOAT, offsetof(nnc_attrs, eps)},
    {NNC_A_INDEX, "index", NNC_FIELD_INT, offsetof(nnc_attrs, index)},
    {NNC_A_BUCKET, "bucket", NNC_FIELD_INT, offsetof(nnc_attrs, bucket)},
};
const int nnc_attr_field_count = sizeof nnc_attr_fields / sizeof nnc_attr_fields[0];

nnc_attrs nnc_attrs_used(const nnc_attrs *a, unsigned mask) {
  nnc_attrs out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < nnc_attr_field_count; i++) {
    const nnc_attr_field *f = &nnc_attr_fields[i];
    if (!(mask & f->bit)) continue;
    const int32_t *from = (const int32_t *)((const char *)a + f->offset);
    int32_t *to = (int32_t *)((char *)&out + f->offset);
    switch (f->kind) {
    case NNC_FIELD_PAIR: to[0] = from[0], to[1] = from[1]; break;
    case NNC_FIELD_PAD: *to = *from == NNC_PAD_SAME ? NNC_PAD_SAME : NNC_PAD_VALID; break;
    case NNC_FIELD_BOOL: *to = *from != 0; break;
    case NNC_FIELD_FLOAT:
    case NNC_FIELD_INT: memcpy(to, from, 4); break;
    case NNC_FIELD_SHAPE:
      out.shape_rank = a->shape_rank;
      for (int k = 0; k < a->shape_rank && k < NNC_MAX_RANK; k++) out.shape[k] = a->shape[k];
      break;
    }
  }
  return out;
}
