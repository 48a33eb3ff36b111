/* Training curves and image grids drawn with cairo; plot.h says what they
 * show. Sizes are in pixels at 100 dpi, matplotlib's default, so a figure
 * reads at 100% the way the user's matplotlib figure did. */
#include "runtime/store/plot.h"

const unsigned nnc_plot_colors[NNC_PLOT_MAX_SERIES] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728};

#ifndef NNC_HAVE_CAIRO
/* A portable build (NNC_PORTABLE) leaves cairo out. */
static int no_cairo(const char *path, nnc_status *st) {
  return nnc_fail(st, "cannot draw %s: this nnc is a portable build without cairo; plot with a normal build", path);
}
int nnc_plot_curves(const char *path, const char *title, const nnc_plot_panel *panels, int npanels,
                    nnc_status *st) {
  (void)title, (void)panels, (void)npanels;
  return no_cairo(path, st);
}
int nnc_plot_images(const char *path, const nnc_image_grid *grid, nnc_status *st) {
  (void)grid;
  return no_cairo(path, st);
}
int nnc_png_gray(const unsigned char *pixels, int h, int w, unsigned char **png, size_t *len, nnc_status *st) {
  (void)pixels, (void)h, (void)w, (void)png, (void)len;
  return no_cairo("a PNG", st);
}
#else
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/atomic_file.h"
#include "ir/status.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum { PANEL_W = 600, PANEL_H = 450, TITLE_H = 36, LEFT = 72, RIGHT = 24, TOP = 40, BOTTOM = 56 };

static void set_rgb(cairo_t *cr, unsigned rgb) {
  cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0, (rgb & 255) / 255.0);
}

typedef enum { ALIGN_LEFT, ALIGN_CENTER, ALIGN_RIGHT } align;

/* Text whose baseline-middle (vertically centred on y) is placed by `a`. */
static void text(cairo_t *cr, double x, double y, double size, align a, const char *s) {
  cairo_text_extents_t e;
  cairo_set_font_size(cr, size);
  cairo_text_extents(cr, s, &e);
  double dx = a == ALIGN_LEFT ? 0 : a == ALIGN_CENTER ? e.width / 2 + e.x_bearing : e.width + e.x_bearing;
  cairo_move_to(cr, x - dx, y - (e.height / 2 + e.y_bearing));
  cairo_show_text(cr, s);
}

static double text_width(cairo_t *cr, double size, const char *s) {
  cairo_text_extents_t e;
  cairo_set_font_size(cr, size);
  cairo_text_extents(cr, s, &e);
  return e.x_advance;
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

typedef struct axis {
  double lo, hi, step;
  int decimals;
} axis;

static axis make_axis(double lo, double hi, int integer) {
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  axis a = {lo, hi, nice_step(hi - lo, 5), 0};
  if (integer && a.step < 1) a.step = 1;
  a.decimals = a.step >= 1 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
  return a;
}

typedef struct frame {
  double x0, y0, x1, y1; /* plot area in pixels: left, top, right, bottom */
  axis x, y;
} frame;

static double px(const frame *f, double v) { return f->x0 + (v - f->x.lo) / (f->x.hi - f->x.lo) * (f->x1 - f->x0); }
static double py(const frame *f, double v) { return f->y1 - (v - f->y.lo) / (f->y.hi - f->y.lo) * (f->y1 - f->y0); }

static void draw_ticks(cairo_t *cr, const frame *f) {
  char label[32];
  cairo_set_line_width(cr, 1);
  set_rgb(cr, 0);
  for (double v = ceil(f->x.lo / f->x.step - 1e-9) * f->x.step; v <= f->x.hi + 1e-9; v += f->x.step) {
    double x = round(px(f, v)) + 0.5;
    cairo_move_to(cr, x, f->y1), cairo_line_to(cr, x, f->y1 + 5), cairo_stroke(cr);
    snprintf(label, sizeof label, "%.*f", f->x.decimals, v);
    text(cr, x, f->y1 + 16, 11, ALIGN_CENTER, label);
  }
  for (double v = ceil(f->y.lo / f->y.step - 1e-9) * f->y.step; v <= f->y.hi + 1e-9; v += f->y.step) {
    double y = round(py(f, v)) + 0.5;
    cairo_move_to(cr, f->x0 - 5, y), cairo_line_to(cr, f->x0, y), cairo_stroke(cr);
    snprintf(label, sizeof label, "%.*f", f->y.decimals, fabs(v) < f->y.step / 1e6 ? 0.0 : v);
    text(cr, f->x0 - 8, y, 11, ALIGN_RIGHT, label);
  }
}

static void draw_series(cairo_t *cr, const frame *f, const nnc_plot_series *s, unsigned color) {
  set_rgb(cr, color);
  cairo_set_line_width(cr, 2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  int started = 0;
  for (int i = 0; i < s->n; i++) {
    if (!isfinite(s->y[i])) {
      started = 0;
      continue;
    }
    if (started) cairo_line_to(cr, px(f, i + 1), py(f, s->y[i]));
    else cairo_move_to(cr, px(f, i + 1), py(f, s->y[i]));
    started = 1;
  }
  cairo_stroke(cr);
  for (int i = 0; i < s->n; i++)
    if (isfinite(s->y[i])) cairo_arc(cr, px(f, i + 1), py(f, s->y[i]), 3, 0, 2 * M_PI), cairo_fill(cr);
}

/* Points of the panel's curves inside a box, to put the legend where it
 * hides least (matplotlib's loc="best", over the two right-hand corners). */
static int covered(const frame *f, const nnc_plot_panel *p, double x0, double y0, double x1, double y1) {
  int count = 0;
  for (int s = 0; s < p->nseries; s++)
    for (int i = 0; i < p->series[s].n; i++) {
      double x = px(f, i + 1), y = py(f, p->series[s].y[i]);
      count += x >= x0 && x <= x1 && y >= y0 && y <= y1;
    }
  return count;
}

static void draw_legend(cairo_t *cr, const frame *f, const nnc_plot_panel *p) {
  double w = 0, row = 20;
  for (int s = 0; s < p->nseries; s++) w = fmax(w, text_width(cr, 12, p->series[s].name));
  w += 50;
  double h = row * p->nseries + 10, x = f->x1 - w - 10;
  double top = f->y0 + 10, bottom = f->y1 - h - 10;
  double y = covered(f, p, x, top, x + w, top + h) <= covered(f, p, x, bottom, x + w, bottom + h) ? top : bottom;
  cairo_rectangle(cr, x + 0.5, y + 0.5, w, h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (int s = 0; s < p->nseries; s++) {
    double ly = y + 5 + row * s + row / 2;
    set_rgb(cr, nnc_plot_colors[s]);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, x + 8, ly), cairo_line_to(cr, x + 36, ly), cairo_stroke(cr);
    set_rgb(cr, 0);
    text(cr, x + 42, ly, 12, ALIGN_LEFT, p->series[s].name);
  }
}

static void draw_panel(cairo_t *cr, const nnc_plot_panel *p, double ox, double oy) {
  frame f = {ox + LEFT, oy + TOP, ox + PANEL_W - RIGHT, oy + PANEL_H - BOTTOM, {0, 0, 0, 0}, {0, 0, 0, 0}};
  double lo = INFINITY, hi = -INFINITY;
  int n = 1;
  for (int s = 0; s < p->nseries; s++) {
    if (p->series[s].n > n) n = p->series[s].n;
    for (int i = 0; i < p->series[s].n; i++)
      if (isfinite(p->series[s].y[i])) lo = fmin(lo, p->series[s].y[i]), hi = fmax(hi, p->series[s].y[i]);
  }
  if (!isfinite(lo)) lo = 0, hi = 1;
  double pad = (hi - lo) * 0.05, xpad = (n - 1) * 0.05;
  f.y = make_axis(lo - pad, hi + pad, 0);
  f.x = make_axis(1 - (n > 1 ? xpad : 0.5), n + (n > 1 ? xpad : 0.5), 1);
  cairo_save(cr);
  cairo_rectangle(cr, f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
  cairo_clip(cr);
  for (int s = 0; s < p->nseries; s++) draw_series(cr, &f, &p->series[s], nnc_plot_colors[s]);
  cairo_restore(cr);
  set_rgb(cr, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, round(f.x0) + 0.5, round(f.y0) + 0.5, round(f.x1 - f.x0), round(f.y1 - f.y0));
  cairo_stroke(cr);
  draw_ticks(cr, &f);
  text(cr, (f.x0 + f.x1) / 2, oy + TOP / 2, 14, ALIGN_CENTER, p->title);
  text(cr, (f.x0 + f.x1) / 2, f.y1 + 40, 13, ALIGN_CENTER, p->xlabel);
  cairo_save(cr);
  cairo_translate(cr, ox + 18, (f.y0 + f.y1) / 2);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, 13, ALIGN_CENTER, p->ylabel);
  cairo_restore(cr);
  if (p->nseries) draw_legend(cr, &f, p);
}

static cairo_t *new_canvas(int w, int h, cairo_surface_t **surface) {
  *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(*surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  return cr;
}

static int write_png(void *ctx, int fd, const char *tmp, nnc_status *st) {
  (void)fd;
  cairo_status_t s = cairo_surface_write_to_png(ctx, tmp);
  return s == CAIRO_STATUS_SUCCESS ? 0 : nnc_fail(st, "%s", cairo_status_to_string(s));
}

static int finish(const char *path, cairo_t *cr, cairo_surface_t *surface, nnc_status *st) {
  cairo_status_t s = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_flush(surface);
  int rc = s != CAIRO_STATUS_SUCCESS ? nnc_fail(st, "cannot draw %s: %s", path, cairo_status_to_string(s))
                                     : nnc_write_file(path, write_png, surface, st);
  cairo_surface_destroy(surface);
  /* cairo and fontconfig keep fonts cached for the process; release them,
   * as plots are rare and a cache held to exit reads as a leak. */
  cairo_debug_reset_static_data();
  FcFini();
  return rc;
}

int nnc_plot_curves(const char *path, const char *title, const nnc_plot_panel *panels, int npanels,
                    nnc_status *st) {
  int top = title && title[0] ? TITLE_H : 0;
  cairo_surface_t *surface;
  cairo_t *cr = new_canvas(PANEL_W * (npanels ? npanels : 1), PANEL_H + top, &surface);
  if (top) {
    set_rgb(cr, 0);
    text(cr, PANEL_W * (npanels ? npanels : 1) / 2.0, TITLE_H / 2.0 + 4, 16, ALIGN_CENTER, title);
  }
  for (int i = 0; i < npanels; i++) draw_panel(cr, &panels[i], PANEL_W * i, top);
  return finish(path, cr, surface, st);
}

enum { CAPTION_H = 22, GAP = 12, CELL_MIN = 112 };

/* One image into a surface of its own size, grey or RGB, scaled to its range. */
static cairo_surface_t *image_surface(const nnc_image_grid *g, int k) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, g->w, g->h);
  const float *p = g->pixels + (size_t)k * (size_t)g->h * (size_t)g->w * (size_t)g->channels;
  size_t count = (size_t)g->h * (size_t)g->w * (size_t)g->channels;
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < count; i++)
    if (isfinite(p[i])) lo = fminf(lo, p[i]), hi = fmaxf(hi, p[i]);
  float scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
  cairo_surface_flush(s);
  unsigned char *data = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int y = 0; y < g->h; y++)
    for (int x = 0; x < g->w; x++) {
      uint32_t rgb = 0;
      for (int c = 0; c < 3; c++) {
        float v = p[((size_t)y * (size_t)g->w + (size_t)x) * (size_t)g->channels + (size_t)(g->channels == 3 ? c : 0)];
        float t = isfinite(v) ? (v - lo) * scale : 0;
        rgb = rgb << 8 | (uint32_t)lrintf(fminf(fmaxf(t, 0), 1) * 255);
      }
      ((uint32_t *)(data + (size_t)y * (size_t)stride))[x] = rgb;
    }
  cairo_surface_mark_dirty(s);
  return s;
}

int nnc_plot_images(const char *path, const nnc_image_grid *g, nnc_status *st) {
  int cols = g->cols < 1 ? 1 : g->cols > g->n ? (g->n ? g->n : 1) : g->cols;
  int rows = (g->n + cols - 1) / cols;
  int zoom = (CELL_MIN + (g->h > g->w ? g->h : g->w) - 1) / (g->h > g->w ? g->h : g->w);
  int iw = g->w * zoom, ih = g->h * zoom, cw = iw + 2 * GAP;
  int ch = ih + CAPTION_H + GAP;
  cairo_surface_t *surface;
  cairo_t *cr = new_canvas(cols * cw, rows * ch + GAP, &surface);
  for (int k = 0; k < g->n; k++) {
    double x = (k % cols) * cw + GAP, y = (k / cols) * ch + GAP + CAPTION_H;
    cairo_surface_t *img = image_surface(g, k);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, zoom, zoom);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
    if (g->captions && g->captions[k]) {
      set_rgb(cr, g->wrong && g->wrong[k] ? nnc_plot_colors[3] : 0);
      double size = 12;
      while (size > 7 && text_width(cr, size, g->captions[k]) > cw - 4) size -= 1;
      text(cr, x + iw / 2.0, y - CAPTION_H / 2.0, size, ALIGN_CENTER, g->captions[k]);
    }
  }
  return finish(path, cr, surface, st);
}
typedef struct png_buffer {
  unsigned char *data;
  size_t len, cap;
} png_buffer;

static cairo_status_t append_png(void *closure, const unsigned char *data, unsigned int length) {
  png_buffer *b = closure;
  if (b->len + length > b->cap) {
    b->cap = (b->len + length) * 2;
    b->data = realloc(b->data, b->cap);
    if (!b->data) nnc_out_of_memory("drawing a picture");
  }
  memcpy(b->data + b->len, data, length);
  b->len += length;
  return CAIRO_STATUS_SUCCESS;
}

/* cairo writes an A8 surface as an 8-bit greyscale PNG, its alpha the grey. */
int nnc_png_gray(const unsigned char *pixels, int h, int w, unsigned char **png, size_t *len, nnc_status *st) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_A8, w, h);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return nnc_fail(st, "cannot make a %dx%d image: %s", w, h, cairo_status_to_string(cairo_surface_status(s)));
  }
  cairo_surface_flush(s);
  unsigned char *rows = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int y = 0; y < h; y++) memcpy(rows + (size_t)y * (size_t)stride, pixels + (size_t)y * (size_t)w, (size_t)w);
  cairo_surface_mark_dirty(s);
  png_buffer b = {0};
  cairo_status_t rc = cairo_surface_write_to_png_stream(s, append_png, &b);
  cairo_surface_destroy(s);
  if (rc != CAIRO_STATUS_SUCCESS) {
    free(b.data);
    return nnc_fail(st, "cannot encode a PNG: %s", cairo_status_to_string(rc));
  }
  *png = b.data, *len = b.len;
  return 0;
}

#endif
