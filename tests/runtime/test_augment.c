/* ImageDataGenerator's transform against an independent reference: Keras
 * 2's apply_affine_transform recipe run by SciPy's ndimage.affine_transform
 * (Debian's python3-scipy) on the same drawn parameters, for each option
 * alone and all together, every fill mode; the drawn parameters against
 * their ranges; and flow's batches against draw + apply. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/train/augment.h"
#include "tests/runtime/suites.h"

#define PYTHON "/usr/bin/python3"

/* Reads the cases and checks each image against SciPy; prints the worst
 * difference and exits 1 past the tolerance (float32 rounding of values up
 * to 255 after double-precision interpolation). */
static const char reference_py[] =
    "import sys\n"
    "import numpy as np\n"
    "from scipy import ndimage\n"
    "d = sys.argv[1]\n"
    "src = np.fromfile(d + '/in.f32', np.float32)\n"
    "got = np.fromfile(d + '/out.f32', np.float32)\n"
    "def keras(x, theta, tx, ty, shear, zx, zy, fh, fv, mode, cval, rescale):\n"
    "    m = None\n"
    "    if theta != 0:\n"
    "        t = np.deg2rad(theta)\n"
    "        m = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])\n"
    "    if tx != 0 or ty != 0:\n"
    "        s = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])\n"
    "        m = s if m is None else np.dot(m, s)\n"
    "    if shear != 0:\n"
    "        sh = np.deg2rad(shear)\n"
    "        s = np.array([[1, -np.sin(sh), 0], [0, np.cos(sh), 0], [0, 0, 1]])\n"
    "        m = s if m is None else np.dot(m, s)\n"
    "    if zx != 1 or zy != 1:\n"
    "        z = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])\n"
    "        m = z if m is None else np.dot(m, z)\n"
    "    if m is not None:\n"
    "        ox, oy = float(x.shape[0]) / 2 + 0.5, float(x.shape[1]) / 2 + 0.5\n"
    "        m = np.dot(np.dot(np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]), m),\n"
    "                   np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]]))\n"
    "        x = np.stack([ndimage.affine_transform(x[:, :, k], m[:2, :2], m[:2, 2], order=1, mode=mode,\n"
    "                                               cval=cval) for k in range(x.shape[2])], axis=2)\n"
    "    if fh: x = x[:, ::-1, :]\n"
    "    if fv: x = x[::-1, :, :]\n"
    "    if rescale: x = x * np.float32(rescale)\n"
    "    return x\n"
    "worst, bad, images = 0.0, 0, 0\n"
    "for line in open(d + '/cases.txt'):\n"
    "    f = line.split()\n"
    "    rows, cols, ch, at = int(f[0]), int(f[1]), int(f[2]), int(f[3])\n"
    "    theta, tx, ty, shear, zx, zy = map(float, f[4:10])\n"
    "    fh, fv, mode, cval, rescale = int(f[10]), int(f[11]), f[12], float(f[13]), float(f[14])\n"
    "    n = rows * cols * ch\n"
    "    x = src[at:at + n].reshape(rows, cols, ch)\n"
    "    want = keras(x, theta, tx, ty, shear, zx, zy, fh, fv, mode, cval, rescale)\n"
    "    diff = np.abs(want.astype(np.float64) - got[at:at + n].reshape(rows, cols, ch))\n"
    "    worst = max(worst, float(diff.max()))\n"
    "    bad += int((diff > 1e-3).sum())\n"
    "    images += 1\n"
    "print('images %d worst %.3g bad %d' % (images, worst, bad))\n"
    "sys.exit(1 if bad or images == 0 else 0)\n";

static const char *const mode_names[] = {"nearest", "constant", "reflect", "wrap"};

typedef struct writer {
  char dir[256];
  FILE *in, *out, *cases;
  long at;
} writer;

static void writer_open(writer *w) {
  snprintf(w->dir, sizeof w->dir, "/tmp/nnc-augment-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(w->dir));
  char path[300];
  snprintf(path, sizeof path, "%s/in.f32", w->dir);
  w->in = fopen(path, "wb");
  snprintf(path, sizeof path, "%s/out.f32", w->dir);
  w->out = fopen(path, "wb");
  snprintf(path, sizeof path, "%s/cases.txt", w->dir);
  w->cases = fopen(path, "w");
  ck_assert(w->in && w->out && w->cases);
  w->at = 0;
}

/* Transforms `count` images of rows x cols x channels under o and records them. */
static void add_images(writer *w, const nnc_augment_opts *o, int rows, int cols, int channels, int count,
                       uint64_t seed) {
  int n = rows * cols * channels;
  float *src = malloc(sizeof *src * (size_t)n), *dst = malloc(sizeof *dst * (size_t)n);
  for (int k = 0; k < count; k++) {
    /* A smooth blob plus a ramp, so every pixel differs from its neighbours. */
    for (int i = 0; i < n; i++) {
      int r = i / (cols * channels), c = (i / channels) % cols, ch = i % channels;
      src[i] = (float)floor(255.0 * fabs(sin(0.3 * r + 0.7 * c + ch + k)) * (r + 1) / rows);
    }
    nnc_augment_params p;
    nnc_augment_draw(o, rows, cols, seed, (uint64_t)k, &p);
    nnc_augment_apply(o, &p, src, rows, cols, channels, dst);
    fwrite(src, sizeof *src, (size_t)n, w->in);
    fwrite(dst, sizeof *dst, (size_t)n, w->out);
    fprintf(w->cases, "%d %d %d %ld %.17g %.17g %.17g %.17g %.17g %.17g %d %d %s %.17g %.17g\n", rows, cols, channels,
            w->at, p.theta, p.tx, p.ty, p.shear, p.zx, p.zy, p.flip_horizontal, p.flip_vertical,
            mode_names[o->fill_mode], o->cval, o->rescale);
    w->at += n;
  }
  free(src);
  free(dst);
}

static void writer_check(writer *w) {
  fclose(w->in);
  fclose(w->out);
  fclose(w->cases);
  char path[300], cmd[700];
  snprintf(path, sizeof path, "%s/reference.py", w->dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(reference_py, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, PYTHON " '%s' '%s' 2>&1", path, w->dir);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char report[4096] = "";
  size_t got = fread(report, 1, sizeof report - 1, p);
  report[got] = 0;
  int status = pclose(p);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
  ck_assert_int_eq(system(cmd), 0);
  printf("augment vs scipy: %s", report);
  ck_assert_msg(status == 0, "the transform differs from Keras's recipe on SciPy: %s", report);
}

static nnc_augment_opts plain(void) {
  nnc_augment_opts o = {0};
  o.zoom_lo = o.zoom_hi = 1;
  return o;
}

/* Each option alone, then all together, on square single-channel and
 * non-square three-channel images, under every fill mode. */
START_TEST(test_matches_scipy) {
  writer w;
  writer_open(&w);
  nnc_augment_opts o;
  uint64_t seed = 11;
  for (int mode = 0; mode < 4; mode++) {
    o = plain(), o.fill_mode = (nnc_fill_mode)mode, o.cval = 17, o.rotation_range = 40;
    add_images(&w, &o, 28, 28, 1, 6, seed++);
    o = plain(), o.fill_mode = (nnc_fill_mode)mode, o.cval = 17, o.width_shift.range = 0.3;
    add_images(&w, &o, 28, 28, 1, 6, seed++);
    o = plain(), o.fill_mode = (nnc_fill_mode)mode, o.cval = 17, o.height_shift.range = 0.3;
    add_images(&w, &o, 9, 7, 3, 6, seed++);
    o = plain(), o.fill_mode = (nnc_fill_mode)mode, o.cval = 17, o.shear_range = 30;
    add_images(&w, &o, 28, 28, 1, 6, seed++);
    o = plain(), o.fill_mode = (nnc_fill_mode)mode, o.cval = 17, o.zoom_lo = 0.6, o.zoom_hi = 1.4;
    add_images(&w, &o, 9, 7, 3, 6, seed++);
    /* Seed 001's options, and everything at once with flips and rescale. */
    o = plain(), o.fill_mode = (nnc_fill_mode)mode, o.rotation_range = 10, o.zoom_lo = 0.9, o.zoom_hi = 1.1,
    o.shear_range = 0.5, o.width_shift.range = 0.1, o.height_shift.range = 0.1, o.horizontal_flip = 1;
    add_images(&w, &o, 28, 28, 1, 8, seed++);
    o.vertical_flip = 1, o.rescale = 1.0 / 255, o.cval = 3, o.rotation_range = 90, o.shear_range = 20;
    o.width_shift.range = 3, o.height_shift.range = 4, o.height_shift.whole = 1;
    add_images(&w, &o, 13, 11, 2, 8, seed++);
  }
  o = plain(), o.horizontal_flip = 1, o.vertical_flip = 1;
  add_images(&w, &o, 5, 6, 2, 8, seed++);
  writer_check(&w);
}
END_TEST

/* n draws of each parameter under o. */
static void draw_many(const nnc_augment_opts *o, int n, nnc_augment_params *p) {
  for (int i = 0; i < n; i++) nnc_augment_draw(o, 28, 20, 5, (uint64_t)i, &p[i]);
}

/* Uniform on [lo, hi]: inside, reaching both ends, mean and variance where
 * they should be (5 standard errors). */
static void check_uniform(const char *what, const double *v, int n, double lo, double hi) {
  double sum = 0, sq = 0, min = INFINITY, max = -INFINITY;
  for (int i = 0; i < n; i++) {
    sum += v[i], sq += v[i] * v[i];
    min = v[i] < min ? v[i] : min;
    max = v[i] > max ? v[i] : max;
  }
  double mean = sum / n, var = sq / n - mean * mean, width = hi - lo;
  double want_var = width * width / 12;
  ck_assert_msg(min >= lo && max <= hi, "%s outside [%g, %g]: %g..%g", what, lo, hi, min, max);
  ck_assert_msg(min < lo + width * 0.01 && max > hi - width * 0.01, "%s does not span [%g, %g]: %g..%g", what, lo,
                hi, min, max);
  ck_assert_msg(fabs(mean - (lo + hi) / 2) < 5 * sqrt(want_var / n), "%s mean %g", what, mean);
  ck_assert_msg(fabs(var - want_var) < 0.05 * want_var, "%s variance %g, want %g", what, var, want_var);
}

START_TEST(test_parameter_ranges) {
  enum { N = 20000 };
  static nnc_augment_params p[N];
  static double v[N];
  nnc_augment_opts o = plain();
  o.rotation_range = 10, o.shear_range = 0.5, o.zoom_lo = 0.9, o.zoom_hi = 1.1, o.width_shift.range = 0.1,
  o.height_shift.range = 0.2, o.horizontal_flip = 1;
  draw_many(&o, N, p);
  int flips = 0, vflips = 0;
#define FIELD(f, lo, hi)                               \
  do {                                                 \
    for (int i = 0; i < N; i++) v[i] = p[i].f;         \
    check_uniform(#f, v, N, lo, hi);                   \
  } while (0)
  FIELD(theta, -10, 10);
  FIELD(shear, -0.5, 0.5);
  FIELD(zx, 0.9, 1.1);
  FIELD(zy, 0.9, 1.1);
  /* Fractions of the size: height (rows, 28) moves tx, width (cols, 20) moves ty. */
  FIELD(tx, -0.2 * 28, 0.2 * 28);
  FIELD(ty, -0.1 * 20, 0.1 * 20);
  for (int i = 0; i < N; i++) flips += p[i].flip_horizontal, vflips += p[i].flip_vertical;
  ck_assert_msg(abs(flips - N / 2) < 5 * 71, "horizontal flips %d of %d", flips, N);
  ck_assert_int_eq(vflips, 0);
  /* zx and zy are drawn apart; theta and shear too. */
  double corr = 0;
  for (int i = 0; i < N; i++) corr += (p[i].zx - 1) * (p[i].zy - 1);
  ck_assert_msg(fabs(corr / N) < 5 * (0.01 / 3) / sqrt(N), "zx and zy correlate: %g", corr / N);
  /* Pixels from 1.0 up; whole pixels from -(n-1)..n-1 for an integer range. */
  o = plain(), o.width_shift.range = 3, o.height_shift.range = 3, o.height_shift.whole = 1;
  draw_many(&o, N, p);
  FIELD(ty, -3, 3);
  int seen[5] = {0};
  for (int i = 0; i < N; i++) {
    ck_assert_msg(p[i].tx == floor(p[i].tx) && fabs(p[i].tx) <= 2, "integer shift %g", p[i].tx);
    seen[(int)p[i].tx + 2]++;
  }
  for (int k = 0; k < 5; k++) ck_assert_msg(seen[k] > N / 10, "shift %d drawn %d times", k - 2, seen[k]);
  /* No range, no draw: the identity. */
  o = plain();
  draw_many(&o, 10, p);
  for (int i = 0; i < 10; i++)
    ck_assert(p[i].theta == 0 && p[i].tx == 0 && p[i].ty == 0 && p[i].shear == 0 && p[i].zx == 1 && p[i].zy == 1);
#undef FIELD
}
END_TEST

/* A batch is draw + apply on the rows of the epoch's order, image k of the
 * stream being epoch * count + position; threads cannot change that. */
START_TEST(test_batches_are_draws) {
  enum { COUNT = 10, R = 6, C = 5, CH = 2, BATCH = 4 };
  static unsigned char x[COUNT * R * C * CH];
  int32_t y[COUNT];
  for (int i = 0; i < COUNT * R * C * CH; i++) x[i] = (unsigned char)(i * 37 % 251);
  for (int i = 0; i < COUNT; i++) y[i] = i;
  nnc_augment_opts o = plain();
  o.rotation_range = 30, o.zoom_lo = 0.8, o.zoom_hi = 1.2, o.horizontal_flip = 1, o.rescale = 0.5;
  nnc_image_source s = {&o, x, NNC_U8, COUNT, R, C, CH, y, NNC_I32, 1, BATCH, 1, 99};
  ck_assert_int_eq(nnc_image_source_batches(&s), 3);
  int64_t order[COUNT];
  float batch[BATCH * R * C * CH], want[R * C * CH], src[R * C * CH], scratch[R * C * CH];
  int32_t labels[BATCH];
  for (int64_t epoch = 0; epoch < 2; epoch++) {
    nnc_image_source_order(&s, epoch, order);
    int seen[COUNT] = {0};
    for (int i = 0; i < COUNT; i++) seen[order[i]]++;
    for (int i = 0; i < COUNT; i++) ck_assert_int_eq(seen[i], 1);
    for (int64_t b = 2; b >= 0; b--) {
      int64_t n = nnc_image_source_batch(&s, order, epoch, b, batch, labels, scratch);
      ck_assert_int_eq(n, b == 2 ? 2 : 4);
      for (int64_t i = 0; i < n; i++) {
        int64_t row = order[b * BATCH + i];
        ck_assert_int_eq(labels[i], row);
        for (int k = 0; k < R * C * CH; k++) src[k] = x[row * R * C * CH + k];
        nnc_augment_params p;
        nnc_augment_draw(&o, R, C, 99, (uint64_t)(epoch * COUNT + b * BATCH + i), &p);
        nnc_augment_apply(&o, &p, src, R, C, CH, want);
        ck_assert(memcmp(want, batch + i * R * C * CH, sizeof want) == 0);
      }
    }
  }
  /* Without shuffling the order is the rows'. */
  s.shuffle = 0;
  nnc_image_source_order(&s, 3, order);
  for (int i = 0; i < COUNT; i++) ck_assert_int_eq(order[i], i);
}
END_TEST

TCase *tcase_augment(void) {
  TCase *tc = tcase_create("augment");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_matches_scipy);
  tcase_add_test(tc, test_parameter_ranges);
  tcase_add_test(tc, test_batches_are_draws);
  return tc;
}
