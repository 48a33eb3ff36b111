/* Tensor math on the host, for the numpy lines of the seeds' notebooks:
 * elementwise arithmetic (with numbers and same-shape tensors), dtype
 * conversion, argmax, abs, whole-tensor reductions and the confusion matrix.
 *
 * Arithmetic is float32's, as numpy's on `x.astype("float32") / 255`:
 * every operand is read as a float and the result is f32. Reductions
 * accumulate in double and return Lua numbers (integers for integer
 * dtypes). Axis numbers count as numpy's do (0 is the first axis, -1 the
 * last), since they are copied from numpy code such as argmax(axis=1). */
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "frontend/tensor.h"

/* ---- elementwise arithmetic ---- */

typedef enum arith { ADD, SUB, MUL, DIV, NEG } arith;

static float apply(arith op, float a, float b) {
  switch (op) {
  case ADD: return a + b;
  case SUB: return a - b;
  case MUL: return a * b;
  case DIV: return a / b;
  case NEG: return -a;
  }
  return 0;
}

static int same_shape(const nnc_tensor *a, const nnc_tensor *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

/* tensor op tensor, elementwise over equal shapes. */
static int arith_tensors(lua_State *L, arith op, const char *symbol, const nnc_tensor *a, const nnc_tensor *b) {
  if (!same_shape(a, b)) {
    char sa[NNC_TENSOR_TYPE_MAX], sb[NNC_TENSOR_TYPE_MAX];
    nnc_lua_errorf(L, "tensor %s tensor: shapes %s and %s differ; elementwise arithmetic needs equal shapes", symbol,
                   nnc_tensor_type_str(a, sa, sizeof sa), nnc_tensor_type_str(b, sb, sizeof sb));
  }
  nnc_tensor *out = nnc_lua_newtensor(L, NNC_F32, a->rank, a->shape);
  float *dst = nnc_tensor_f32(out);
  int64_t n = nnc_tensor_numel(a);
  for (int64_t i = 0; i < n; i++) dst[i] = apply(op, (float)nnc_tensor_get(a, i), (float)nnc_tensor_get(b, i));
  return 1;
}

static int tensor_arith(lua_State *L, arith op, const char *symbol) {
  nnc_tensor *a = nnc_lua_totensor(L, 1), *b = nnc_lua_totensor(L, 2);
  if (a && b && op != NEG) return arith_tensors(L, op, symbol, a, b);
  int scalar_at = a ? 2 : 1;
  nnc_tensor *t = a ? a : b;
  if (!t) nnc_lua_errorf(L, "tensor %s: tensor used after it was finalized", symbol);
  if (op != NEG && lua_type(L, scalar_at) != LUA_TNUMBER)
    nnc_lua_errorf(L, "tensor %s %s: tensors combine with numbers and tensors of the same shape", symbol,
                   luaL_typename(L, scalar_at));
  float s = op == NEG ? 0.0f : (float)lua_tonumber(L, scalar_at);
  nnc_tensor *out = nnc_lua_newtensor(L, NNC_F32, t->rank, t->shape);
  float *dst = nnc_tensor_f32(out);
  int64_t n = nnc_tensor_numel(t);
  if (t->dtype == NNC_U8 && a) {
    /* The common `x_train / 255.0` on 47 million bytes gets a plain loop. */
    const uint8_t *src = nnc_tensor_u8(t);
    for (int64_t i = 0; i < n; i++) dst[i] = apply(op, (float)src[i], s);
    return 1;
  }
  for (int64_t i = 0; i < n; i++) {
    float v = (float)nnc_tensor_get(t, i);
    dst[i] = a ? apply(op, v, s) : apply(op, s, v);
  }
  return 1;
}

static int tensor_add(lua_State *L) { return tensor_arith(L, ADD, "+"); }
static int tensor_sub(lua_State *L) { return tensor_arith(L, SUB, "-"); }
static int tensor_mul(lua_State *L) { return tensor_arith(L, MUL, "*"); }
static int tensor_div(lua_State *L) { return tensor_arith(L, DIV, "/"); }
static int tensor_unm(lua_State *L) { return tensor_arith(L, NEG, "-"); }

/* ---- conversion ---- */

/* Stores v into element i of an integer tensor, or raises: a value that
 * does not fit is a bug in the script, where numpy would wrap silently. */
static void store_int(lua_State *L, nnc_tensor *out, int64_t i, double v) {
  double lo = out->dtype == NNC_U8 ? 0 : INT32_MIN, hi = out->dtype == NNC_U8 ? 255 : INT32_MAX;
  double whole = trunc(v); /* toward zero, as numpy's astype */
  if (!(whole >= lo && whole <= hi))
    nnc_lua_errorf(L, "astype: element %lld is %g, outside %s's range %.0f..%.0f", (long long)i + 1, v,
                   nnc_dtype_name(out->dtype), lo, hi);
  if (out->dtype == NNC_U8)
    nnc_tensor_u8(out)[i] = (uint8_t)whole;
  else
    nnc_tensor_i32(out)[i] = (int32_t)whole;
}

/* t:astype("float32" | "int32" | "uint8"): a converted copy. */
static int tensor_astype(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) nnc_lua_errorf(L, "astype: name a dtype, e.g. t:astype(\"float32\")");
  nnc_dtype to = nnc_lua_optdtype(L, 2, NNC_F32);
  nnc_tensor *out = nnc_lua_newtensor(L, to, t->rank, t->shape);
  int64_t n = nnc_tensor_numel(t);
  if (to == t->dtype) {
    memcpy(nnc_tensor_bytes(out), nnc_tensor_bytes(t), (size_t)n * nnc_dtype_size(to));
  } else if (to == NNC_F32) {
    float *dst = nnc_tensor_f32(out);
    for (int64_t i = 0; i < n; i++) dst[i] = (float)nnc_tensor_get(t, i);
  } else {
    for (int64_t i = 0; i < n; i++) store_int(L, out, i, nnc_tensor_get(t, i));
  }
  return 1;
}

/* t:abs(): the same dtype, as numpy's abs. */
static int tensor_abs(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  nnc_tensor *out = nnc_lua_newtensor(L, t->dtype, t->rank, t->shape);
  int64_t n = nnc_tensor_numel(t);
  if (t->dtype == NNC_F32) {
    for (int64_t i = 0; i < n; i++) nnc_tensor_f32(out)[i] = fabsf(nnc_tensor_f32(t)[i]);
  } else if (t->dtype == NNC_I32) {
    for (int64_t i = 0; i < n; i++) {
      int64_t v = nnc_tensor_i32(t)[i];
      if (v == INT32_MIN) nnc_lua_errorf(L, "abs: element %lld is %lld, whose absolute value is not an i32",
                                         (long long)i + 1, (long long)v);
      nnc_tensor_i32(out)[i] = (int32_t)(v < 0 ? -v : v);
    }
  } else {
    memcpy(nnc_tensor_bytes(out), nnc_tensor_bytes(t), (size_t)n);
  }
  return 1;
}

/* ---- reductions ---- */

/* A value of t's kind: an integer for integer dtypes. */
static void push_value(lua_State *L, const nnc_tensor *t, double v) {
  if (t->dtype == NNC_F32 || !(fabs(v) < 9e15))
    lua_pushnumber(L, v);
  else
    lua_pushinteger(L, (lua_Integer)v);
}

static double sum_of(const nnc_tensor *t) {
  double s = 0;
  int64_t n = nnc_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) s += nnc_tensor_get(t, i);
  return s;
}

static int tensor_sum(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  push_value(L, t, sum_of(t));
  return 1;
}

static int tensor_mean(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  int64_t n = nnc_tensor_numel(t);
  lua_pushnumber(L, n ? sum_of(t) / (double)n : NAN);
  return 1;
}

/* The first extreme element, a NaN winning as in numpy's min, max and argmax. */
static int64_t extreme_at(const nnc_tensor *t, int64_t first, int64_t count, int64_t step, int sign) {
  int64_t best = first;
  double bv = nnc_tensor_get(t, first);
  for (int64_t k = 1; k < count && !isnan(bv); k++) {
    double v = nnc_tensor_get(t, first + k * step);
    if (isnan(v) || sign * (v - bv) > 0) {
      best = first + k * step;
      bv = v;
    }
  }
  return best;
}

static int reduce_extreme(lua_State *L, int sign, const char *what) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  int64_t n = nnc_tensor_numel(t);
  char type[NNC_TENSOR_TYPE_MAX];
  if (n == 0) nnc_lua_errorf(L, "%s of an empty tensor %s", what, nnc_tensor_type_str(t, type, sizeof type));
  push_value(L, t, nnc_tensor_get(t, extreme_at(t, 0, n, 1, sign)));
  return 1;
}

static int tensor_min(lua_State *L) { return reduce_extreme(L, -1, "min"); }
static int tensor_max(lua_State *L) { return reduce_extreme(L, 1, "max"); }

/* t:argmax(): the flat index of the largest element (0-based, as numpy);
 * t:argmax(axis): i32 indices with that axis removed, or a number when
 * nothing is left. Ties go to the first, as numpy's. */
static int tensor_argmax(lua_State *L) {
  nnc_tensor *t = nnc_lua_checktensor(L, 1);
  char type[NNC_TENSOR_TYPE_MAX];
  nnc_tensor_type_str(t, type, sizeof type);
  if (nnc_tensor_numel(t) == 0) nnc_lua_errorf(L, "argmax of an empty tensor %s", type);
  if (lua_isnoneornil(L, 2)) {
    lua_pushinteger(L, (lua_Integer)extreme_at(t, 0, nnc_tensor_numel(t), 1, 1));
    return 1;
  }
  int whole;
  lua_Integer axis = lua_tointegerx(L, 2, &whole);
  if (!whole || axis < -t->rank || axis >= t->rank)
    nnc_lua_errorf(L, "argmax: axis %s is outside %d..%d for %s (axes count from 0, as numpy's; -1 is the last)",
                   luaL_tolstring(L, 2, NULL), -t->rank, t->rank - 1, type);
  int ax = (int)(axis < 0 ? axis + t->rank : axis);
  int64_t outer = 1, inner = 1, len = t->shape[ax];
  for (int i = 0; i < ax; i++) outer *= t->shape[i];
  for (int i = ax + 1; i < t->rank; i++) inner *= t->shape[i];
  if (t->rank == 1) {
    lua_pushinteger(L, (lua_Integer)extreme_at(t, 0, len, 1, 1));
    return 1;
  }
  int64_t shape[NNC_MAX_RANK];
  for (int i = 0, j = 0; i < t->rank; i++)
    if (i != ax) shape[j++] = t->shape[i];
  nnc_tensor *out = nnc_lua_newtensor(L, NNC_I32, t->rank - 1, shape);
  int32_t *dst = nnc_tensor_i32(out);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t first = o * len * inner + i;
      dst[o * inner + i] = (int32_t)((extreme_at(t, first, len, inner, 1) - first) / inner);
    }
  return 1;
}

/* ---- confusion matrix ---- */

/* Label k of y as a whole number, or an error naming it. */
static int64_t label_of(lua_State *L, const nnc_tensor *y, int64_t k, const char *which) {
  double v = nnc_tensor_get(y, k);
  if (!(v == floor(v) && v >= 0 && v < 2147483648.0))
    nnc_lua_errorf(L, "confusion_matrix: %s element %lld is %g; labels are whole numbers from 0", which,
                   (long long)k + 1, v);
  return (int64_t)v;
}

/* Rows are the true classes, columns the predicted ones (tf.math.confusion_matrix,
 * sklearn): m[t][p] counts the samples of class t predicted as p. */
int nnc_lua_confusion_matrix(lua_State *L) {
  nnc_tensor *yt = nnc_lua_checktensorlike(L, 1, NNC_I32), *yp = nnc_lua_checktensorlike(L, 2, NNC_I32);
  int64_t n = nnc_tensor_numel(yt);
  if (nnc_tensor_numel(yp) != n || yt->rank != 1 || yp->rank != 1) {
    char a[NNC_TENSOR_TYPE_MAX], b[NNC_TENSOR_TYPE_MAX];
    nnc_lua_errorf(L, "confusion_matrix: y_true %s and y_pred %s must be rank-1 labels of equal length%s",
                   nnc_tensor_type_str(yt, a, sizeof a), nnc_tensor_type_str(yp, b, sizeof b),
                   yp->rank == 2 ? " (for predicted probabilities, pass y_pred:argmax(-1))" : "");
  }
  int64_t max = -1;
  for (int64_t k = 0; k < n; k++) {
    int64_t a = label_of(L, yt, k, "y_true"), b = label_of(L, yp, k, "y_pred");
    if (a > max) max = a;
    if (b > max) max = b;
  }
  lua_Integer classes = luaL_optinteger(L, 3, max + 1);
  if (classes < 1 || classes > 65536)
    nnc_lua_errorf(L, "confusion_matrix: classes is %lld, expected 1..65536", (long long)classes);
  if (max >= classes)
    nnc_lua_errorf(L, "confusion_matrix: label %lld is outside 0..%lld for %lld classes", (long long)max,
                   (long long)classes - 1, (long long)classes);
  int64_t shape[2] = {classes, classes};
  nnc_tensor *m = nnc_lua_newtensor(L, NNC_I32, 2, shape);
  for (int64_t k = 0; k < n; k++)
    nnc_tensor_i32(m)[(int64_t)nnc_tensor_get(yt, k) * classes + (int64_t)nnc_tensor_get(yp, k)]++;
  return 1;
}

const luaL_Reg nnc_tensor_math_meta[] = {
    {"__add", tensor_add}, {"__sub", tensor_sub}, {"__mul", tensor_mul},
    {"__div", tensor_div}, {"__unm", tensor_unm}, {NULL, NULL},
};

const luaL_Reg nnc_tensor_math_methods[] = {
    {"astype", tensor_astype}, {"argmax", tensor_argmax}, {"abs", tensor_abs}, {"sum", tensor_sum},
    {"mean", tensor_mean},     {"min", tensor_min},       {"max", tensor_max}, {NULL, NULL},
};
