/* The pictures a Keras user makes with matplotlib, drawn with cairo and
 * written as PNG: training curves side by side (the seeds' loss/val_loss and
 * accuracy/val_accuracy figure) and a grid of images with captions (their
 * plt.imshow grid). Colours are matplotlib's defaults, so the figures look
 * like the ones the user knows. */
#ifndef NNC_PLOT_H
#define NNC_PLOT_H

#include <stddef.h>

#include "ir/status.h"

/* One curve: y[0..n-1] at epochs 1..n. */
typedef struct nnc_plot_series {
  const char *name;
  const double *y;
  int n;
} nnc_plot_series;

#define NNC_PLOT_MAX_SERIES 4

typedef struct nnc_plot_panel {
  const char *title, *xlabel, *ylabel;
  nnc_plot_series series[NNC_PLOT_MAX_SERIES];
  int nseries;
} nnc_plot_panel;

/* Writes the panels side by side, each with axes, ticks, labels and a
 * legend, under an optional figure title, as a PNG at PATH. */
int nnc_plot_curves(const char *path, const char *title, const nnc_plot_panel *panels, int npanels,
                    nnc_status *st);

/* Images in a grid: n images of h x w pixels with `channels` (1 grey, 3
 * RGB) floats each, row-major; each is scaled to its own min..max as imshow
 * does. captions[i] (or NULL) is drawn above image i, in red where wrong[i]. */
typedef struct nnc_image_grid {
  const float *pixels;
  int n, h, w, channels;
  const char *const *captions;
  const int *wrong;
  int cols;
} nnc_image_grid;

int nnc_plot_images(const char *path, const nnc_image_grid *grid, nnc_status *st);

/* An 8-bit greyscale PNG of h x w pixels, row-major, in memory: *png is
 * malloc'd, the caller frees it. */
int nnc_png_gray(const unsigned char *pixels, int h, int w, unsigned char **png, size_t *len, nnc_status *st);

/* Where the figure's colours come from, for tests and callers: matplotlib's
 * default cycle (C0 blue, C1 orange, C2 green, C3 red) as 0xRRGGBB. */
extern const unsigned nnc_plot_colors[NNC_PLOT_MAX_SERIES];

#endif
