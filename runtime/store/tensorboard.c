/* TensorBoard's event files; tensorboard.h describes the format. Messages
 * are encoded by protobuf-c's code generated from runtime/store/tensorboard.proto. */
#include "runtime/store/tensorboard.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ir/atomic_file.h"
#include "ir/op.h"
#include "runtime/store/plot.h"
#include "tensorboard.pb-c.h"
#include "ir/status.h"

struct nnc_tb_writer {
  char *path;
  unsigned char *data;
  size_t len, cap;
};

/* ---------------------------------------------------------------- TFRecord */

/* CRC32C, reflected polynomial 0x82F63B78, one table lookup per byte. */
static uint32_t crc32c(const unsigned char *p, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 255] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t nnc_tb_masked_crc32c(const void *data, size_t len) {
  uint32_t crc = crc32c(data, len);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static void append(nnc_tb_writer *w, const void *p, size_t n) {
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n) cap *= 2;
    unsigned char *grown = realloc(w->data, cap);
    if (!grown) nnc_out_of_memory("writing a TensorBoard event");
    w->data = grown, w->cap = cap;
  }
  memcpy(w->data + w->len, p, n);
  w->len += n;
}

static void put_le(unsigned char *out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out[i] = (unsigned char)(v >> (8 * i));
}

static void record(nnc_tb_writer *w, const unsigned char *msg, size_t n) {
  unsigned char head[12], tail[4];
  put_le(head, n, 8);
  put_le(head + 8, nnc_tb_masked_crc32c(head, 8), 4);
  put_le(tail, nnc_tb_masked_crc32c(msg, n), 4);
  append(w, head, 12);
  append(w, msg, n);
  append(w, tail, 4);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void write_event(nnc_tb_writer *w, Tensorboard__Event *e) {
  e->wall_time = now();
  size_t n = tensorboard__event__get_packed_size(e);
  unsigned char *buf = malloc(n ? n : 1);
  if (!buf) nnc_out_of_memory("writing a TensorBoard event");
  tensorboard__event__pack(e, buf);
  record(w, buf, n);
  free(buf);
}

/* ---------------------------------------------------------------- writer */

nnc_tb_writer *nnc_tb_open(const char *dir, nnc_status *st) {
  if (nnc_make_dirs(dir, st)) return NULL;
  static int counter;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  size_t size = strlen(dir) + strlen(host) + 96;
  nnc_tb_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = malloc(size))) nnc_out_of_memory("writing a TensorBoard event");
  snprintf(w->path, size, "%s/events.out.tfevents.%lld.%s.%ld.%d.v2", dir, (long long)time(NULL), host,
           (long)getpid(), counter++);
  Tensorboard__Event e = TENSORBOARD__EVENT__INIT;
  e.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
  e.file_version = "brain.Event:2";
  write_event(w, &e);
  return w;
}

void nnc_tb_close(nnc_tb_writer *w) {
  if (!w) return;
  free(w->path), free(w->data), free(w);
}

const char *nnc_tb_path(const nnc_tb_writer *w) { return w->path; }

int nnc_tb_flush(nnc_tb_writer *w, nnc_status *st) { return nnc_write_bytes_file(w->path, w->data, w->len, st); }

static void summary_event(nnc_tb_writer *w, int64_t step, Tensorboard__Summary__Value *v) {
  Tensorboard__Summary s = TENSORBOARD__SUMMARY__INIT;
  s.n_value = 1, s.value = &v;
  Tensorboard__Event e = TENSORBOARD__EVENT__INIT;
  e.step = step, e.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY, e.summary = &s;
  write_event(w, &e);
}

void nnc_tb_scalar(nnc_tb_writer *w, const char *tag, int64_t step, double value) {
  Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag, v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE, v.simple_value = (float)value;
  summary_event(w, step, &v);
}

enum { BUCKETS = 30 };

void nnc_tb_histogram(nnc_tb_writer *w, const char *tag, int64_t step, const float *x, int64_t n) {
  Tensorboard__HistogramProto h = TENSORBOARD__HISTOGRAM_PROTO__INIT;
  double limits[BUCKETS], counts[BUCKETS] = {0};
  h.min = n ? INFINITY : 0, h.max = n ? -INFINITY : 0, h.num = (double)n;
  for (int64_t i = 0; i < n; i++) {
    h.min = fmin(h.min, x[i]), h.max = fmax(h.max, x[i]);
    h.sum += x[i], h.sum_squares += (double)x[i] * x[i];
  }
  double width = (h.max - h.min) / BUCKETS;
  for (int b = 0; b < BUCKETS; b++) limits[b] = b == BUCKETS - 1 ? h.max : h.min + width * (b + 1);
  for (int64_t i = 0; i < n; i++) {
    int b = width > 0 ? (int)((x[i] - h.min) / width) : 0;
    counts[b < BUCKETS ? b : BUCKETS - 1] += 1;
  }
  h.n_bucket_limit = h.n_bucket = BUCKETS, h.bucket_limit = limits, h.bucket = counts;
  Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag, v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO, v.histo = &h;
  summary_event(w, step, &v);
}

/* ---------------------------------------------------------------- images */

enum { MAX_IMAGES = 3 }; /* tf.summary.image's max_outputs */

static int image_event(nnc_tb_writer *w, const char *tag, int64_t step, const unsigned char *pixels, int h, int wd,
                       nnc_status *st) {
  unsigned char *png;
  size_t len;
  if (nnc_png_gray(pixels, h, wd, &png, &len, st)) return -1;
  Tensorboard__Summary__Image img = TENSORBOARD__SUMMARY__IMAGE__INIT;
  img.height = h, img.width = wd, img.colorspace = 1;
  img.encoded_image_string.data = png, img.encoded_image_string.len = len;
  Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
  v.tag = (char *)tag, v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_IMAGE, v.image = &img;
  summary_event(w, step, &v);
  free(png);
  return 0;
}

/* tf.image.convert_image_dtype(float -> uint8, saturate=True). */
static unsigned char pixel(float v) {
  float x = v * 255.5f;
  return x >= 255.0f ? 255 : x > 0.0f ? (unsigned char)x : 0;
}

int nnc_tb_weight_images(nnc_tb_writer *w, const char *tag, int64_t step, int rank, const int64_t *shape,
                         const float *v, nnc_status *st) {
  int64_t dims[NNC_MAX_RANK];
  int n = 0;
  for (int i = 0; i < rank; i++)
    if (shape[i] != 1) dims[n++] = shape[i];
  /* images of rows x cols; element (k, r, c) is v[k * sk + r * sr + c * sc] */
  int64_t count, rows, cols, sk = 0, sr, sc;
  if (n == 1) {
    count = 1, rows = dims[0], cols = 1, sr = 1, sc = 0;
  } else if (n == 2 && dims[0] > dims[1]) {
    count = 1, rows = dims[1], cols = dims[0], sr = 1, sc = dims[1];
  } else if (n == 2) {
    count = 1, rows = dims[0], cols = dims[1], sr = dims[1], sc = 1;
  } else if (n == 3) { /* [h, w, k] channels last: image k is v[.., .., k] */
    count = dims[2], rows = dims[0], cols = dims[1], sk = 1, sr = dims[1] * dims[2], sc = dims[2];
  } else {
    return 0;
  }
  if (rows > INT32_MAX || cols > INT32_MAX)
    return nnc_fail(st, "%s: an image of %lld x %lld pixels", tag, (long long)rows, (long long)cols);
  unsigned char *pixels = malloc((size_t)(rows * cols));
  if (!pixels) nnc_out_of_memory("writing a TensorBoard event");
  int rc = 0;
  for (int64_t k = 0; k < count && k < MAX_IMAGES && rc == 0; k++) {
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < cols; c++) pixels[r * cols + c] = pixel(v[k * sk + r * sr + c * sc]);
    char name[512];
    snprintf(name, sizeof name, "%s/image/%lld", tag, (long long)k);
    rc = image_event(w, name, step, pixels, (int)rows, (int)cols, st);
  }
  free(pixels);
  return rc;
}

/* ---------------------------------------------------------------- graph */

/* TensorBoard groups nodes by '/' in their names: layer, then fused group. */
static char *node_name(const nnc_graph *g, int32_t id) {
  const nnc_node *n = &g->nodes[id];
  char buf[512];
  if (n->name) snprintf(buf, sizeof buf, "%s", n->name);
  else if (n->group >= 0) snprintf(buf, sizeof buf, "fused_%d/%s_%d", n->group, nnc_ops[n->op].name, (int)id);
  else snprintf(buf, sizeof buf, "%s/%s_%d", n->loc.layer ? n->loc.layer : "nnc", nnc_ops[n->op].name, (int)id);
  char *s = strdup(buf);
  if (!s) nnc_out_of_memory("writing a TensorBoard event");
  return s;
}

static Tensorboard__NodeDef__AttrEntry *string_attr(const char *key, const char *value) {
  Tensorboard__NodeDef__AttrEntry *e = malloc(sizeof *e);
  Tensorboard__AttrValue *v = malloc(sizeof *v);
  if (!e || !v) nnc_out_of_memory("writing a TensorBoard event");
  tensorboard__node_def__attr_entry__init(e);
  tensorboard__attr_value__init(v);
  v->value_case = TENSORBOARD__ATTR_VALUE__VALUE_S;
  v->s.data = (uint8_t *)strdup(value), v->s.len = strlen(value);
  e->key = strdup(key), e->value = v;
  return e;
}

static void node_def(const nnc_graph *g, int32_t id, char **names, Tensorboard__NodeDef *d) {
  const nnc_node *n = &g->nodes[id];
  char text[512];
  tensorboard__node_def__init(d);
  d->name = names[id];
  d->op = (char *)nnc_ops[n->op].name;
  d->n_input = (size_t)n->nsrc;
  d->input = malloc(sizeof *d->input * (size_t)(n->nsrc ? n->nsrc : 1));
  if (!d->input) nnc_out_of_memory("writing a TensorBoard event");
  for (int i = 0; i < n->nsrc; i++) d->input[i] = names[n->src[i]];
  d->attr = malloc(sizeof *d->attr * 3);
  if (!d->attr) nnc_out_of_memory("writing a TensorBoard event");
  d->attr[d->n_attr++] = string_attr("type", nnc_type_str(n, text, sizeof text));
  if (n->loc.file) {
    snprintf(text, sizeof text, "%s:%d", n->loc.file, n->loc.line);
    d->attr[d->n_attr++] = string_attr("script_line", text);
  }
  if (n->group >= 0 && g->groups[n->group].rule) d->attr[d->n_attr++] = string_attr("fusion", g->groups[n->group].rule);
}

static void free_node_def(Tensorboard__NodeDef *d) {
  for (size_t i = 0; i < d->n_attr; i++) {
    free(d->attr[i]->key), free(d->attr[i]->value->s.data), free(d->attr[i]->value), free(d->attr[i]);
  }
  free(d->attr), free(d->input);
}

void nnc_tb_graph(nnc_tb_writer *w, const nnc_graph *g) {
  char **names = malloc(sizeof *names * (size_t)(g->nnodes ? g->nnodes : 1));
  Tensorboard__NodeDef *defs = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *defs);
  Tensorboard__NodeDef **ptrs = malloc(sizeof *ptrs * (size_t)(g->nnodes ? g->nnodes : 1));
  if (!names || !defs || !ptrs) nnc_out_of_memory("writing a TensorBoard event");
  for (int32_t id = 0; id < g->nnodes; id++) names[id] = node_name(g, id);
  for (int32_t id = 0; id < g->nnodes; id++) node_def(g, id, names, &defs[id]), ptrs[id] = &defs[id];
  Tensorboard__VersionDef version = TENSORBOARD__VERSION_DEF__INIT;
  version.producer = 27;
  Tensorboard__GraphDef gd = TENSORBOARD__GRAPH_DEF__INIT;
  gd.n_node = (size_t)g->nnodes, gd.node = ptrs, gd.versions = &version;
  size_t n = tensorboard__graph_def__get_packed_size(&gd);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) nnc_out_of_memory("writing a TensorBoard event");
  tensorboard__graph_def__pack(&gd, buf);
  Tensorboard__Event e = TENSORBOARD__EVENT__INIT;
  e.what_case = TENSORBOARD__EVENT__WHAT_GRAPH_DEF;
  e.graph_def.data = buf, e.graph_def.len = n;
  write_event(w, &e);
  free(buf);
  for (int32_t id = 0; id < g->nnodes; id++) free_node_def(&defs[id]), free(names[id]);
  free(names), free(defs), free(ptrs);
}
