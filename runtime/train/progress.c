/* Keras 2's progress bar; see progress.h for the formats and the version
 * followed. Each rule below names the Progbar expression it reproduces, since
 * the point of this file is that a Keras user sees the same characters: the
 * numbers go through the same float operations and the same printf-style
 * conversions Python applies ('%.0f', '%.4f', '%.4e' round the same way in
 * C; '%d' of a float truncates, as Python's int() does).
 *
 * To add a mode, render a line in a strbuf like render_bar/render_verbose2
 * and write it in one fwrite, so a redraw never shows half a line. */
#include "runtime/train/progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum {
  BAR_WIDTH = 30, /* Progbar(width=30) */
};
/* Progbar(interval=0.05): the least time between two terminal redraws. */
static const double REDRAW_INTERVAL = 0.05;

struct nnc_progress {
  FILE *out;
  int64_t target; /* <= 0: unknown until finish */
  int verbose;
  int dynamic;
  double start;                 /* Progbar._start */
  double last_update;           /* Progbar._last_update; -inf: never drawn */
  int have_first_step_time;     /* Progbar._time_after_first_step is not None */
  double time_after_first_step; /* when step 1 was drawn */
  size_t total_width;           /* Progbar._total_width: characters of the last line drawn */
  int64_t seen;                 /* Progbar._seen_so_far */
  /* Progbar._values_order and _values, as parallel arrays. */
  char **names;
  double *values;
  int count, cap;
};

/* ---- a small growable string ---- */

typedef struct {
  char *data;
  size_t len, cap;
  int oom;
} strbuf;

static void sb_reserve(strbuf *sb, size_t extra) {
  if (sb->oom || sb->len + extra + 1 <= sb->cap) return;
  size_t cap = sb->cap ? sb->cap : 256;
  while (cap < sb->len + extra + 1) cap *= 2;
  char *data = realloc(sb->data, cap);
  if (!data) {
    sb->oom = 1;
    return;
  }
  sb->data = data, sb->cap = cap;
}

static void sb_putn(strbuf *sb, const char *s, size_t n) {
  sb_reserve(sb, n);
  if (sb->oom) return;
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = 0;
}

static void sb_puts(strbuf *sb, const char *s) { sb_putn(sb, s, strlen(s)); }

static void sb_repeat(strbuf *sb, char c, long long n) {
  if (n <= 0) return; /* Python: 'x' * -3 == '' */
  sb_reserve(sb, (size_t)n);
  if (sb->oom) return;
  memset(sb->data + sb->len, c, (size_t)n);
  sb->len += (size_t)n;
  sb->data[sb->len] = 0;
}

static void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb_reserve(sb, (size_t)n);
  if (sb->oom) return;
  va_start(ap, fmt);
  vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

/* Python's '%.Nf' / '%.Ne' of a float. They agree with C's except that
 * Python never signs a NaN, where glibc may print "-nan". */
static void sb_float(strbuf *sb, const char *conversion, double x) {
  if (isnan(x)) {
    sb_puts(sb, "nan");
    return;
  }
  sb_printf(sb, conversion, x);
}

/* Characters as Python's len() counts them: code points of UTF-8 text. */
static size_t text_width(const char *s, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) w++;
  return w;
}

/* ---- the Python arithmetic the formats rely on ---- */

/* int(x) for the '%d' conversion of a float: truncation toward zero. Python
 * raises on NaN and infinity; nnc prints 0 or clamps instead. */
static long long py_int(double x) {
  if (isnan(x)) return 0;
  if (x >= 9.2e18) return 9200000000000000000LL;
  if (x <= -9.2e18) return -9200000000000000000LL;
  return (long long)x;
}

/* x // y and x % y for floats, computed as CPython's float_divmod does, so
 * the ETA's minutes and seconds round exactly as in Keras. */
static void py_divmod(double x, double y, double *quotient, double *remainder) {
  double mod = fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = copysign(0.0, y);
  }
  double floordiv;
  if (div != 0) {
    floordiv = floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = copysign(0.0, x / y);
  }
  *quotient = floordiv;
  *remainder = mod;
}

/* ---- Progbar's pieces ---- */

/* Progbar._estimate_step_duration: seconds per step, ignoring the first step
 * (which pays for tracing/compilation in Keras) once a later step is drawn.
 * The first-step time is only recorded when step 1 is actually drawn. */
static double estimate_step_duration(nnc_progress *p, int64_t current, double now) {
  if (current == 0) return 0;
  double per_step;
  if (p->have_first_step_time && current > 1)
    per_step = (now - p->time_after_first_step) / (double)(current - 1);
  else
    per_step = (now - p->start) / (double)current;
  if (current == 1) {
    p->time_after_first_step = now;
    p->have_first_step_time = 1;
  }
  return per_step;
}

/* Progbar._format_time: " 7s/epoch", " 5ms/step", " 93us/step". Note that
 * exactly 0 prints as seconds, and 0.9996 s prints as "1000ms" (the unit is
 * chosen before rounding), both as in Keras. */
static void format_time(strbuf *sb, double seconds, const char *unit) {
  if (seconds >= 1 || seconds == 0) {
    sb_putn(sb, " ", 1);
    sb_float(sb, "%.0f", seconds);
    sb_printf(sb, "s/%s", unit);
  } else if (seconds >= 1e-3) {
    sb_putn(sb, " ", 1);
    sb_float(sb, "%.0f", seconds * 1e3);
    sb_printf(sb, "ms/%s", unit);
  } else {
    sb_putn(sb, " ", 1);
    sb_float(sb, "%.0f", seconds * 1e6);
    sb_printf(sb, "us/%s", unit);
  }
}

/* The ETA: h:mm:ss above an hour, m:ss above a minute, else whole seconds
 * (so exactly 60 s is "60s" and exactly 3600 s is "60:00"). */
static void format_eta(strbuf *sb, double eta) {
  if (eta > 3600) {
    double hours, rest, minutes, seconds, unused;
    py_divmod(eta, 3600, &hours, &rest);
    py_divmod(rest, 60, &minutes, &unused);
    py_divmod(eta, 60, &unused, &seconds);
    sb_printf(sb, "%lld:%02lld:%02lld", py_int(hours), py_int(minutes), py_int(seconds));
  } else if (eta > 60) {
    double minutes, seconds;
    py_divmod(eta, 60, &minutes, &seconds);
    sb_printf(sb, "%lld:%02lld", py_int(minutes), py_int(seconds));
  } else {
    sb_printf(sb, "%llds", py_int(eta));
  }
}

/* int(np.log10(target)) + 1: the width the step count is padded to. */
static int step_digits(int64_t target) {
  if (target <= 0) return 1; /* Keras would fail on log10(0) */
  return (int)log10((double)target) + 1;
}

/* " - loss: 0.3394": four decimals, or four significant digits in exponent
 * form when the magnitude is at most 1e-3 ("- loss: 4.2000e-04",
 * "- loss: 0.0000e+00"). verbose=2 compares the signed value, so there a
 * negative value always takes the exponent form: a Keras quirk, kept. */
static void format_values(const nnc_progress *p, strbuf *sb, int signed_threshold) {
  for (int i = 0; i < p->count; i++) {
    double v = p->values[i];
    sb_printf(sb, " - %s: ", p->names[i]);
    int fixed = signed_threshold ? v > 1e-3 : fabs(v) > 1e-3;
    sb_float(sb, fixed ? "%.4f" : "%.4e", v);
  }
}

static void record_values(nnc_progress *p, const char *const *names, const double *values, int n) {
  for (int k = 0; k < n; k++) {
    if (!names || !names[k]) continue;
    int i = 0;
    while (i < p->count && strcmp(p->names[i], names[k]) != 0) i++;
    if (i == p->count) {
      if (p->count == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        char **nn = realloc(p->names, (size_t)cap * sizeof *nn);
        if (!nn) return;
        p->names = nn;
        double *nv = realloc(p->values, (size_t)cap * sizeof *nv);
        if (!nv) return;
        p->values = nv;
        p->cap = cap;
      }
      size_t len = strlen(names[k]);
      char *copy = malloc(len + 1);
      if (!copy) return;
      memcpy(copy, names[k], len + 1);
      p->names[p->count++] = copy;
    }
    p->values[i] = values[k];
  }
}

static void emit(nnc_progress *p, const strbuf *sb) {
  if (sb->oom || !sb->len) return;
  fwrite(sb->data, 1, sb->len, p->out);
  fflush(p->out);
}

/* Progbar.update's verbose=1 branch, from the point where the throttle let
 * it through. On a terminal the line is written; otherwise only the final
 * one is, but the state (widths, first-step time) advances exactly as on a
 * terminal so the final line is the same in both. */
static void render_bar(nnc_progress *p, int64_t current, double now, int finalize) {
  strbuf sb = {0};
  size_t prev_total_width = p->total_width;
  if (p->dynamic) sb_putn(&sb, "\r", 1);
  size_t line_start = sb.len;

  if (p->target > 0) {
    /* '%4d/1407 [' then '=' * (prog_width - 1) and a '>' head ('=' once
     * complete), then '.' for the rest; prog_width = int(30 * current/target). */
    sb_printf(&sb, "%*lld/%lld [", step_digits(p->target), (long long)current, (long long)p->target);
    double prog = (double)current / (double)p->target;
    long long prog_width = py_int(BAR_WIDTH * prog);
    if (prog_width > 0) {
      sb_repeat(&sb, '=', prog_width - 1);
      sb_putn(&sb, current < p->target ? ">" : "=", 1);
    }
    sb_repeat(&sb, '.', BAR_WIDTH - prog_width);
    sb_putn(&sb, "]", 1);
  } else {
    sb_printf(&sb, "%7lld/Unknown", (long long)current);
  }
  size_t bar_width = text_width(sb.data + line_start, sb.len - line_start);

  size_t info_start = sb.len;
  double per_step = estimate_step_duration(p, current, now);
  if (p->target <= 0 || finalize) {
    /* " - 7s 5ms/step": time since the epoch began, then time per step. */
    sb_puts(&sb, " - ");
    sb_float(&sb, "%.0f", now - p->start);
    sb_putn(&sb, "s", 1);
    format_time(&sb, per_step, "step");
  } else {
    sb_puts(&sb, " - ETA: ");
    format_eta(&sb, per_step * (double)(p->target - current));
  }
  format_values(p, &sb, 0);
  size_t total_width = bar_width + text_width(sb.data + info_start, sb.len - info_start);
  p->total_width = total_width;

  if (p->dynamic && prev_total_width > total_width) sb_repeat(&sb, ' ', (long long)(prev_total_width - total_width));
  if (finalize) sb_putn(&sb, "\n", 1);
  if (p->dynamic || finalize) emit(p, &sb);
  free(sb.data);
}

/* Progbar.update's verbose=2 branch with finalize: the count, the time since
 * the epoch began, the values, then time per epoch and mean time per step. */
static void render_verbose2(nnc_progress *p, int64_t current, double now) {
  strbuf sb = {0};
  sb_printf(&sb, "%*lld/%lld", step_digits(p->target), (long long)current, (long long)p->target);
  sb_puts(&sb, " - ");
  sb_float(&sb, "%.0f", now - p->start);
  sb_putn(&sb, "s", 1);
  format_values(p, &sb, 1);
  double per_epoch = now - p->start;
  double per_step = p->target > 0 ? per_epoch / (double)p->target : 0;
  sb_puts(&sb, " -");
  format_time(&sb, per_epoch, "epoch");
  sb_puts(&sb, " -");
  format_time(&sb, per_step, "step");
  sb_putn(&sb, "\n", 1);
  emit(p, &sb);
  free(sb.data);
}

/* ---- the API ---- */

nnc_progress *nnc_progress_new(FILE *out, int64_t target_steps, int verbose, int dynamic, double start_time) {
  nnc_progress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->out = out;
  p->target = target_steps > 0 ? target_steps : 0;
  p->verbose = out ? verbose : 0;
  p->dynamic = dynamic != 0;
  p->start = start_time;
  /* Keras starts _last_update at 0 against time.time(), so the first update
   * always draws; with an injected clock that may start at 0, -inf says the
   * same thing. */
  p->last_update = -INFINITY;
  return p;
}

void nnc_progress_update(nnc_progress *p, int64_t step, const char *const *names, const double *values,
                         int nvalues, double now) {
  if (!p || p->verbose != 1) return;
  /* Values are taken even when the throttle then skips the redraw. */
  record_values(p, names, values, nvalues);
  p->seen = step;
  /* ProgbarLogger passes finalize=False for every batch, even the last:
   * only finish draws the final line. */
  if (now - p->last_update < REDRAW_INTERVAL) return;
  render_bar(p, step, now, 0);
  p->last_update = now;
}

void nnc_progress_finish(nnc_progress *p, const char *const *names, const double *values, int nvalues,
                         double now) {
  if (!p || (p->verbose != 1 && p->verbose != 2)) return;
  /* ProgbarLogger._finalize_progbar: an unknown target becomes the number
   * of steps seen, and the bar is updated to the target with finalize. */
  if (p->target <= 0) p->target = p->seen;
  record_values(p, names, values, nvalues);
  p->seen = p->target;
  if (p->verbose == 1)
    render_bar(p, p->target, now, 1);
  else
    render_verbose2(p, p->target, now);
  p->last_update = now;
}

void nnc_progress_free(nnc_progress *p) {
  if (!p) return;
  for (int i = 0; i < p->count; i++) free(p->names[i]);
  free(p->names);
  free(p->values);
  free(p);
}

void nnc_progress_epoch_header(FILE *out, int epoch, int epochs) {
  if (!out || epochs <= 1) return;
  fprintf(out, "Epoch %d/%d\n", epoch + 1, epochs);
  fflush(out);
}
