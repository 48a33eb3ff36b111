/* Keras 2's ImageDataGenerator transform, in double precision as numpy and
 * scipy compute it, stored as float32 as Keras's float32 batches are.
 *
 * The map: Keras composes rotation, shift, shear and zoom (each only when
 * its parameter is not the identity, in that order), moves the origin to
 * o = (rows/2 + 0.5, cols/2 + 0.5) -- Keras's own centre, half a pixel past
 * the true one -- and hands the 2x2 part and the offset to
 * scipy.ndimage.affine_transform, which reads output pixel (r, c) from input
 * coordinate T (r, c, 1). Order-1 interpolation there is bilinear: the two
 * taps floor(u) and floor(u)+1 on each axis weighted by the fraction.
 * Boundaries follow scipy 1.10's ni_interpolation.c: the coordinate is first
 * mapped into the image by the mode (nearest clamps, reflect folds about the
 * edges with period 2n, wrap with period n-1, constant gives cval outside
 * [0, n-1]); a tap that still falls outside (the upper one, or either one for
 * reflect) takes the reflected neighbour for reflect and the edge otherwise,
 * where its weight is zero. */
#include "runtime/train/augment.h"

#include <math.h>
#include <string.h>

#include "runtime/rng.h"

#define PI 3.14159265358979323846

/* ---- drawing ---- */

/* Uniform in [0, 1) with 53 bits, from two 32-bit words. */
static double unit(uint32_t hi, uint32_t lo) { return ((double)(hi >> 5) * 67108864.0 + (double)(lo >> 6)) / 9007199254740992.0; }

static double uniform(double lo, double hi, double u) { return lo + (hi - lo) * u; }

/* Keras: a float range is uniform(-r, r) (times the size when r < 1); an
 * integer range is choice(r) * choice([-1, 1]). */
static double draw_shift(const nnc_shift_range *s, int64_t size, double u, double sign_u) {
  if (s->range == 0) return 0;
  if (s->whole) {
    double v = floor(u * s->range);
    return sign_u < 0.5 ? -v : v;
  }
  double v = uniform(-s->range, s->range, u);
  return s->range < 1 ? v * (double)size : v;
}

void nnc_augment_draw(const nnc_augment_opts *o, int64_t rows, int64_t cols, uint64_t seed, uint64_t index,
                      nnc_augment_params *p) {
  uint32_t stream = nnc_rng_stream_of("ImageDataGenerator");
  uint32_t w[12];
  for (int b = 0; b < 3; b++) nnc_philox(seed, stream, index * 3 + (uint64_t)b, w + 4 * b);
  double u[6];
  for (int i = 0; i < 6; i++) u[i] = unit(w[2 * i], w[2 * i + 1]);
  p->theta = o->rotation_range ? uniform(-o->rotation_range, o->rotation_range, u[0]) : 0;
  p->tx = draw_shift(&o->height_shift, rows, u[1], (double)(w[0] & 0xFFFF) / 65536.0);
  p->ty = draw_shift(&o->width_shift, cols, u[2], (double)(w[1] & 0xFFFF) / 65536.0);
  p->shear = o->shear_range ? uniform(-o->shear_range, o->shear_range, u[3]) : 0;
  if (o->zoom_lo == 1 && o->zoom_hi == 1) {
    p->zx = p->zy = 1;
  } else {
    p->zx = uniform(o->zoom_lo, o->zoom_hi, u[4]);
    p->zy = uniform(o->zoom_lo, o->zoom_hi, u[5]);
  }
  p->flip_horizontal = o->horizontal_flip && (double)w[2] / 4294967296.0 < 0.5;
  p->flip_vertical = o->vertical_flip && (double)w[3] / 4294967296.0 < 0.5;
}

/* ---- the affine map ---- */

static void matmul3(const double a[3][3], const double b[3][3], double out[3][3]) {
  double t[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) t[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
  memcpy(out, t, sizeof t);
}

/* Keras's transform matrix (before the centring), or 0 when every part is
 * the identity and Keras skips the interpolation. */
static int keras_matrix(const nnc_augment_params *p, double m[3][3]) {
  static const double identity[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  memcpy(m, identity, sizeof identity);
  int any = 0;
  if (p->theta != 0) {
    double t = p->theta * PI / 180.0;
    const double r[3][3] = {{cos(t), -sin(t), 0}, {sin(t), cos(t), 0}, {0, 0, 1}};
    memcpy(m, r, sizeof r);
    any = 1;
  }
  if (p->tx != 0 || p->ty != 0) {
    const double s[3][3] = {{1, 0, p->tx}, {0, 1, p->ty}, {0, 0, 1}};
    matmul3(m, s, m);
    any = 1;
  }
  if (p->shear != 0) {
    double sh = p->shear * PI / 180.0;
    const double s[3][3] = {{1, -sin(sh), 0}, {0, cos(sh), 0}, {0, 0, 1}};
    matmul3(m, s, m);
    any = 1;
  }
  if (p->zx != 1 || p->zy != 1) {
    const double z[3][3] = {{p->zx, 0, 0}, {0, p->zy, 0}, {0, 0, 1}};
    matmul3(m, z, m);
    any = 1;
  }
  return any;
}

/* transform_matrix_offset_center(m, rows, cols). */
static void offset_center(double m[3][3], int64_t rows, int64_t cols) {
  double ox = (double)rows / 2 + 0.5, oy = (double)cols / 2 + 0.5;
  const double offset[3][3] = {{1, 0, ox}, {0, 1, oy}, {0, 0, 1}};
  const double reset[3][3] = {{1, 0, -ox}, {0, 1, -oy}, {0, 0, 1}};
  double t[3][3];
  matmul3(offset, m, t);
  matmul3(t, reset, m);
}

/* scipy's map_coordinate: the coordinate folded into [0, len-1] by the
 * mode, or -1 for constant outside it. */
static double map_coordinate(double in, int64_t len, nnc_fill_mode mode) {
  if (in >= 0 && in <= (double)(len - 1)) return in;
  if (len <= 1) return mode == NNC_FILL_CONSTANT ? -1 : 0;
  switch (mode) {
  case NNC_FILL_CONSTANT: return -1;
  case NNC_FILL_NEAREST: return in < 0 ? 0 : (double)(len - 1);
  case NNC_FILL_REFLECT: {
    double sz2 = 2.0 * (double)len;
    if (in < 0) {
      if (in < -sz2) in = sz2 * (double)(int64_t)(-in / sz2) + in;
      return in < -(double)len ? in + sz2 : -in - 1;
    }
    in -= sz2 * (double)(int64_t)(in / sz2);
    return in >= (double)len ? sz2 - in - 1 : in;
  }
  case NNC_FILL_WRAP: {
    double sz = (double)(len - 1);
    if (in < 0) return in + sz * ((double)(int64_t)(-in / sz) + 1);
    return in - sz * (double)(int64_t)(in / sz);
  }
  }
  return in;
}

static int64_t map_tap(int64_t i, int64_t len, nnc_fill_mode mode) {
  if (i >= 0 && i < len) return i;
  if (mode == NNC_FILL_REFLECT) {
    int64_t period = 2 * len;
    i %= period;
    if (i < 0) i += period;
    return i < len ? i : period - 1 - i;
  }
  return i < 0 ? 0 : len - 1;
}

#define NNC_COORD_LIMIT 1099511627776.0

typedef struct axis_taps {
  int64_t at[2];
  double weight[2];
} axis_taps;

/* The two taps of one axis, or 0 when the constant fill applies. */
static int taps_of(double coord, int64_t len, nnc_fill_mode mode, axis_taps *t) {
  /* A zoom near zero sends coordinates far outside the image: held to
   * +-2^40 they still are, and the integer casts below stay defined. NaN
   * samples nothing (the fill value). */
  if (coord != coord) return 0;
  coord = fmax(-NNC_COORD_LIMIT, fmin(coord, NNC_COORD_LIMIT));
  double c = map_coordinate(coord, len, mode);
  if (mode == NNC_FILL_CONSTANT && c < 0) return 0;
  int64_t start = (int64_t)floor(c);
  double f = c - (double)start;
  t->at[0] = map_tap(start, len, mode);
  t->at[1] = map_tap(start + 1, len, mode);
  t->weight[0] = 1.0 - f;
  t->weight[1] = f;
  return 1;
}

static void affine(const nnc_augment_opts *o, const double m[3][3], const float *src, int64_t rows, int64_t cols,
                   int64_t channels, float *dst) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      /* scipy sums in this order: coordinate terms, then the offset. */
      double ir = 0, ic = 0;
      ir += (double)r * m[0][0];
      ir += (double)c * m[0][1];
      ir += m[0][2];
      ic += (double)r * m[1][0];
      ic += (double)c * m[1][1];
      ic += m[1][2];
      float *out = dst + (r * cols + c) * channels;
      axis_taps tr, tc;
      if (!taps_of(ir, rows, o->fill_mode, &tr) || !taps_of(ic, cols, o->fill_mode, &tc)) {
        for (int64_t k = 0; k < channels; k++) out[k] = (float)o->cval;
        continue;
      }
      for (int64_t k = 0; k < channels; k++) {
        double v = 0;
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++)
            v += (double)src[(tr.at[a] * cols + tc.at[b]) * channels + k] * tr.weight[a] * tc.weight[b];
        out[k] = (float)v;
      }
    }
}

static void flip(float *img, int64_t rows, int64_t cols, int64_t channels, int horizontal) {
  int64_t outer = horizontal ? rows : 1, n = horizontal ? cols : rows, unit_size = horizontal ? channels : cols * channels;
  for (int64_t o = 0; o < outer; o++) {
    float *base = img + o * cols * channels;
    for (int64_t i = 0, j = n - 1; i < j; i++, j--)
      for (int64_t k = 0; k < unit_size; k++) {
        float t = base[i * unit_size + k];
        base[i * unit_size + k] = base[j * unit_size + k];
        base[j * unit_size + k] = t;
      }
  }
}

void nnc_augment_apply(const nnc_augment_opts *o, const nnc_augment_params *p, const float *src, int64_t rows,
                       int64_t cols, int64_t channels, float *dst) {
  double m[3][3];
  size_t n = (size_t)(rows * cols * channels);
  if (keras_matrix(p, m)) {
    offset_center(m, rows, cols);
    affine(o, m, src, rows, cols, channels, dst);
  } else if (dst != src) {
    memcpy(dst, src, n * sizeof *dst);
  }
  if (p->flip_horizontal) flip(dst, rows, cols, channels, 1);
  if (p->flip_vertical) flip(dst, rows, cols, channels, 0);
  /* float32 times the factor cast to float32, as numpy's `x *= rescale`. */
  if (o->rescale != 0)
    for (size_t i = 0; i < n; i++) dst[i] = dst[i] * (float)o->rescale;
}

/* ---- batches ---- */

int64_t nnc_image_source_batches(const nnc_image_source *s) { return (s->count + s->batch_size - 1) / s->batch_size; }

void nnc_image_source_order(const nnc_image_source *s, int64_t epoch, int64_t *order) {
  if (!s->shuffle) {
    for (int64_t i = 0; i < s->count; i++) order[i] = i;
    return;
  }
  nnc_rng_shuffle(order, s->count, s->seed, nnc_rng_stream_of("ImageDataGenerator/shuffle"), (uint64_t)epoch);
}

/* Image `row` of x as floats into img (Keras casts to float32 first). */
static void read_image(const nnc_image_source *s, int64_t row, float *img) {
  int64_t n = s->rows * s->cols * s->channels;
  if (s->x_dtype == NNC_U8) {
    const uint8_t *src = (const uint8_t *)s->x + row * n;
    for (int64_t i = 0; i < n; i++) img[i] = src[i];
  } else {
    memcpy(img, (const float *)s->x + row * n, (size_t)n * sizeof *img);
  }
}

int64_t nnc_image_source_batch(const nnc_image_source *s, const int64_t *order, int64_t epoch, int64_t batch,
                               float *x, void *y, float *scratch) {
  int64_t first = batch * s->batch_size;
  int64_t count = s->count - first < s->batch_size ? s->count - first : s->batch_size;
  int64_t n = s->rows * s->cols * s->channels;
  for (int64_t i = 0; i < count; i++) {
    int64_t row = order[first + i];
    float *img = x + i * n;
    if (!s->opts) {
      read_image(s, row, img);
    } else {
      /* The transform reads around each pixel, so it needs the source apart. */
      read_image(s, row, scratch);
      nnc_augment_params p;
      nnc_augment_draw(s->opts, s->rows, s->cols, s->seed, (uint64_t)(epoch * s->count + first + i), &p);
      nnc_augment_apply(s->opts, &p, scratch, s->rows, s->cols, s->channels, img);
    }
    if (y && s->y)
      memcpy((char *)y + 4 * i * s->y_row, (const char *)s->y + 4 * row * s->y_row, 4 * (size_t)s->y_row);
  }
  return count;
}
