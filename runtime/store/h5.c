/* Keras 2's HDF5 layout through libhdf5; h5.h describes the layout.
 *
 * Writing builds the whole file under a temporary name (ir/atomic_file.h).
 * Reading copies everything out of the file into memory first, checking each
 * piece, so a caller sees either a complete nnc_h5_file or an error. libhdf5
 * prints its own error stack unless told not to; nnc turns it off and quotes
 * the innermost error instead. */
#include "runtime/store/h5.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/atomic_file.h"
#include "ir/size.h"
#include "ir/status.h"

#define KERAS_VERSION "2.6.0" /* the model_config and optimizer names nnc writes are 2.6's */
#define BACKEND "tensorflow"
/* Deflate's best ratio (1032:1): no dataset holds more than this times the
 * bytes it stores, so a corrupt header cannot make nnc allocate gigabytes. */
#define DEFLATE_MAX_RATIO 1032

/* ---------------------------------------------------------------- errors */

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0 && e->desc) snprintf(data, 256, "%s", e->desc);
  return 0;
}

/* The most specific thing libhdf5 said about the last failure. */
static const char *hdf5_reason(char *buf) {
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, buf);
  return buf[0] ? buf : "unknown HDF5 error";
}

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------------------------------------------------------------- writing */

static hid_t fixed_string(size_t len) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, len ? len : 1);
  H5Tset_strpad(t, H5T_STR_NULLPAD); /* numpy's bytes, as h5py stores them */
  return t;
}

static int put_attr(hid_t loc, const char *name, hid_t type, hid_t space, const void *buf) {
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a < 0 || H5Awrite(a, type, buf) < 0 ? -1 : 0;
  if (a >= 0) H5Aclose(a);
  return rc;
}

static int write_string_attr(hid_t loc, const char *name, const char *s) {
  hid_t t = fixed_string(strlen(s)), space = H5Screate(H5S_SCALAR);
  int rc = put_attr(loc, name, t, space, s[0] ? s : "");
  H5Sclose(space), H5Tclose(t);
  return rc;
}

/* A list of names as Keras's save_attributes_to_hdf5_group stores it: a
 * numpy bytes array, or for an empty list numpy's empty float64 array. */
static int write_names_attr(hid_t loc, const char *attr, const char *const *names, int n) {
  hsize_t dims[1] = {(hsize_t)n};
  hid_t space = H5Screate_simple(1, dims, NULL);
  if (n == 0) {
    double none = 0;
    int rc = put_attr(loc, attr, H5T_IEEE_F64LE, space, &none);
    H5Sclose(space);
    return rc;
  }
  size_t width = 1;
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) > width) width = strlen(names[i]);
  char *buf = calloc((size_t)n, width);
  if (!buf) nnc_out_of_memory("reading or writing HDF5");
  for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * width, names[i], strlen(names[i]));
  hid_t t = fixed_string(width);
  int rc = put_attr(loc, attr, t, space, buf);
  H5Tclose(t), H5Sclose(space), free(buf);
  return rc;
}

/* A dataset at a path relative to loc, making the groups its '/'s name. */
static int write_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = H5Dcreate2(loc, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  int rc = d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ? -1 : 0;
  if (d >= 0) H5Dclose(d);
  H5Sclose(space), H5Pclose(lcpl);
  return rc;
}

static int write_tensor(hid_t loc, const nnc_named_tensor *t) {
  hsize_t dims[NNC_MAX_RANK];
  for (int i = 0; i < t->rank; i++) dims[i] = (hsize_t)t->shape[i];
  return write_dataset(loc, t->name, H5T_IEEE_F32LE, t->rank, dims, t->data);
}

static const char **names_of(const nnc_named_tensor *t, int n) {
  const char **v = malloc(sizeof *v * (size_t)(n ? n : 1));
  if (!v) nnc_out_of_memory("reading or writing HDF5");
  for (int i = 0; i < n; i++) v[i] = t[i].name;
  return v;
}

static int write_layer(hid_t parent, const nnc_h5_layer *l, nnc_status *st) {
  hid_t g = H5Gcreate2(parent, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return nnc_fail(st, "cannot make the group of layer '%s' (two layers of one name?)", l->name);
  const char **names = names_of(l->weights, l->count);
  int rc = write_names_attr(g, "weight_names", names, l->count) ? nnc_fail(st, "cannot write layer '%s'", l->name) : 0;
  for (int i = 0; i < l->count && rc == 0; i++)
    if (write_tensor(g, &l->weights[i])) rc = nnc_fail(st, "cannot write weight '%s'", l->weights[i].name);
  free(names);
  H5Gclose(g);
  return rc;
}

static int write_version_attrs(hid_t loc) {
  return write_string_attr(loc, "backend", BACKEND) || write_string_attr(loc, "keras_version", KERAS_VERSION);
}

static int write_weights(hid_t g, const nnc_h5_file *f, nnc_status *st) {
  const char **names = malloc(sizeof *names * (size_t)(f->nlayers ? f->nlayers : 1));
  if (!names) nnc_out_of_memory("reading or writing HDF5");
  for (int i = 0; i < f->nlayers; i++) names[i] = f->layers[i].name;
  int rc = write_names_attr(g, "layer_names", names, f->nlayers) || write_version_attrs(g)
               ? nnc_fail(st, "cannot write the layer names")
               : 0;
  free(names);
  for (int i = 0; i < f->nlayers && rc == 0; i++) rc = write_layer(g, &f->layers[i], st);
  /* Keras 2.5+ keeps the model's own (layerless) weights here; nnc has none. */
  nnc_h5_layer top = {"top_level_model_weights", 0, NULL};
  return rc ? rc : write_layer(g, &top, st);
}

static int write_optimizer(hid_t file, const nnc_h5_file *f, nnc_status *st) {
  hid_t g = H5Gcreate2(file, "optimizer_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return nnc_fail(st, "cannot make the optimizer_weights group");
  const char **names = malloc(sizeof *names * (size_t)(f->nslots + 1));
  if (!names) nnc_out_of_memory("reading or writing HDF5");
  names[0] = f->iter_name;
  for (int i = 0; i < f->nslots; i++) names[i + 1] = f->slots[i].name;
  int rc = write_names_attr(g, "weight_names", names, f->nslots + 1) ||
           write_dataset(g, f->iter_name, H5T_STD_I64LE, 0, NULL, &f->iterations);
  for (int i = 0; i < f->nslots && !rc; i++) rc = write_tensor(g, &f->slots[i]);
  free(names);
  H5Gclose(g);
  return rc ? nnc_fail(st, "cannot write the optimizer's state") : 0;
}

static int write_h5(void *ctx, int fd, const char *tmp, nnc_status *st) {
  (void)fd;
  const nnc_h5_file *f = ctx;
  char why[256];
  quiet();
  hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return nnc_fail(st, "%s", hdf5_reason(why));
  int rc = 0;
  hid_t weights = file;
  if (f->model_config) {
    rc = write_version_attrs(file) || write_string_attr(file, "model_config", f->model_config) ||
                 (f->training_config && write_string_attr(file, "training_config", f->training_config))
             ? nnc_fail(st, "cannot write the model's configuration")
             : 0;
    weights = rc ? -1 : H5Gcreate2(file, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && weights < 0) rc = nnc_fail(st, "cannot make the model_weights group");
  }
  if (!rc) rc = write_weights(weights, f, st);
  if (!rc && f->iter_name) rc = write_optimizer(file, f, st);
  if (weights >= 0 && weights != file) H5Gclose(weights);
  if (H5Fclose(file) < 0 && !rc) rc = nnc_fail(st, "%s", hdf5_reason(why));
  return rc;
}

int nnc_h5_save(const char *path, const nnc_h5_file *f, nnc_status *st) {
  return nnc_write_file(path, write_h5, (void *)f, st);
}

/* ---------------------------------------------------------------- reading */

typedef struct reader {
  const char *path;
  nnc_status *st;
} reader;

static int attr_count(hid_t a, hsize_t *n) {
  hid_t space = H5Aget_space(a);
  int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[1] = {1};
  if (rank == 1) H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  if (rank < 0 || rank > 1) return -1;
  *n = rank == 0 ? 1 : dims[0];
  return 0;
}

/* Reads a string attribute (scalar or a 1-D array) into `out`, appending
 * n strdup'd strings. An empty numeric array is an empty list. */
static int read_strings(const reader *r, hid_t loc, const char *where, const char *name, char ***out, int *n) {
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return nnc_fail(r->st, "%s: %s has no attribute '%s'", r->path, where, name);
  hid_t type = H5Aget_type(a);
  hsize_t count = 0;
  int rc = attr_count(a, &count) ? nnc_fail(r->st, "%s: %s's attribute '%s' is not a list", r->path, where, name) : 0;
  if (!rc && H5Tget_class(type) != H5T_STRING) {
    if (count != 0) rc = nnc_fail(r->st, "%s: %s's attribute '%s' does not hold strings", r->path, where, name);
  } else if (!rc && count > (hsize_t)1 << 20) {
    rc = nnc_fail(r->st, "%s: %s's attribute '%s' has %llu names", r->path, where, name, (unsigned long long)count);
  } else if (!rc) {
    if (nnc_size_realloc((void **)out, r->path, (int64_t)*n + (int64_t)count + 1, sizeof **out, r->st)) rc = -1;
    else if (H5Tis_variable_str(type) > 0) {
      hid_t mem = H5Tcopy(H5T_C_S1);
      H5Tset_size(mem, H5T_VARIABLE);
      H5Tset_cset(mem, H5Tget_cset(type)); /* h5py writes UTF-8, which HDF5 will not convert to ASCII */
      char **v = nnc_size_calloc(r->path, (int64_t)count + 1, sizeof *v, r->st);
      if (!v) rc = -1;
      else if (H5Aread(a, mem, v) < 0) rc = nnc_fail(r->st, "%s: cannot read %s's attribute '%s'", r->path, where, name);
      for (hsize_t i = 0; i < count && !rc; i++) (*out)[(*n)++] = strdup(v[i] ? v[i] : "");
      hid_t space = H5Aget_space(a);
      if (!rc) H5Dvlen_reclaim(mem, space, H5P_DEFAULT, v);
      H5Sclose(space), H5Tclose(mem), free(v);
    } else {
      size_t width = H5Tget_size(type);
      hid_t mem = fixed_string(width);
      H5Tset_cset(mem, H5Tget_cset(type));
      int64_t bytes = 0;
      char *buf = NULL;
      if (nnc_size_mul((int64_t)count, (int64_t)width, &bytes) || bytes > NNC_MAX_TENSOR_BYTES)
        rc = nnc_fail(r->st, "%s: %s's attribute '%s' claims %llu names of %zu bytes", r->path, where, name,
                      (unsigned long long)count, width);
      else if (!(buf = nnc_size_calloc(r->path, bytes + 1, 1, r->st))) rc = -1;
      else if (H5Aread(a, mem, buf) < 0) rc = nnc_fail(r->st, "%s: cannot read %s's attribute '%s'", r->path, where, name);
      for (hsize_t i = 0; i < count && !rc; i++) (*out)[(*n)++] = strndup(buf + i * width, width);
      H5Tclose(mem), free(buf);
    }
  }
  H5Tclose(type), H5Aclose(a);
  return rc;
}

static void free_strings(char **v, int n) {
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* A list attribute, whole or in Keras's chunks name0, name1, ... */
static int read_name_list(const reader *r, hid_t loc, const char *where, const char *name, char ***out, int *n) {
  *out = NULL, *n = 0;
  if (H5Aexists(loc, name) > 0) return read_strings(r, loc, where, name, out, n);
  char chunk[96];
  int i = 0;
  for (;; i++) {
    snprintf(chunk, sizeof chunk, "%s%d", name, i);
    if (H5Aexists(loc, chunk) <= 0) break;
    if (read_strings(r, loc, where, chunk, out, n)) return free_strings(*out, *n), *out = NULL, *n = 0, -1;
  }
  if (i == 0) return nnc_fail(r->st, "%s: %s has no attribute '%s': not a Keras HDF5 file", r->path, where, name);
  return 0;
}

static int read_string(const reader *r, hid_t loc, const char *name, const char **out) {
  char **v = NULL;
  int n = 0;
  if (read_strings(r, loc, "the file", name, &v, &n)) return free_strings(v, n), -1;
  if (n != 1) {
    free_strings(v, n);
    return nnc_fail(r->st, "%s: attribute '%s' is not one string", r->path, name);
  }
  *out = v[0];
  free(v);
  return 0;
}

/* The dataset's shape, checked: rank and size within nnc's limits, and data
 * actually stored (a file cut short can keep a dataset's header only). */
static int dataset_shape(const reader *r, hid_t d, const char *name, int *rank, int64_t *shape, int64_t *numel) {
  hid_t space = H5Dget_space(d);
  int k = H5Sget_simple_extent_ndims(space);
  hsize_t dims[H5S_MAX_RANK];
  if (k >= 0 && k <= NNC_MAX_RANK) H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  if (k < 0 || k > NNC_MAX_RANK)
    return nnc_fail(r->st, "%s: weight '%s' has rank %d, nnc takes at most %d", r->path, name, k, NNC_MAX_RANK);
  *rank = k;
  for (int i = 0; i < k; i++) shape[i] = dims[i] > (hsize_t)INT64_MAX ? INT64_MAX : (int64_t)dims[i];
  char what[600];
  snprintf(what, sizeof what, "%s: weight '%s'", r->path, name);
  if (nnc_size_shape(what, k, shape, sizeof(float), numel, r->st)) return -1;
  hsize_t stored = H5Dget_storage_size(d);
  if (*numel > 0 && stored == 0)
    return nnc_fail(r->st, "%s: weight '%s' has no data stored (was the file written halfway?)", r->path, name);
  hid_t type = H5Dget_type(d);
  double claimed = (double)*numel * (double)H5Tget_size(type);
  H5Tclose(type);
  if (claimed > (double)stored * DEFLATE_MAX_RATIO)
    return nnc_fail(r->st, "%s: weight '%s' claims %.0f bytes of data but stores %llu, too few to hold them",
                    r->path, name, claimed, (unsigned long long)stored);
  return 0;
}

static int read_tensor(const reader *r, hid_t g, const char *name, nnc_named_tensor *t) {
  char why[256];
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  if (d < 0) return nnc_fail(r->st, "%s: weight '%s' is listed but not in the file", r->path, name);
  hid_t type = H5Dget_type(d);
  int64_t numel = 0;
  int rc = H5Tget_class(type) != H5T_FLOAT ? nnc_fail(r->st, "%s: weight '%s' is not floating point", r->path, name)
                                           : dataset_shape(r, d, name, &t->rank, t->shape, &numel);
  if (!rc) {
    char what[600];
    snprintf(what, sizeof what, "%s: weight '%s'", r->path, name);
    t->data = nnc_size_alloc(what, numel, sizeof(float), r->st);
    if (!t->data) rc = -1;
    else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0)
      rc = nnc_fail(r->st, "%s: cannot read weight '%s': %s", r->path, name, hdf5_reason(why));
  }
  H5Tclose(type), H5Dclose(d);
  return rc;
}

static int read_layer(const reader *r, hid_t weights, const char *name, nnc_h5_layer *l) {
  l->name = strdup(name);
  hid_t g = H5Gopen2(weights, name, H5P_DEFAULT);
  if (g < 0) return nnc_fail(r->st, "%s: layer '%s' is in layer_names but has no group", r->path, name);
  char where[300], **names = NULL;
  snprintf(where, sizeof where, "layer '%s'", name);
  int n = 0, rc = read_name_list(r, g, where, "weight_names", &names, &n);
  if (!rc) {
    l->weights = nnc_size_calloc(r->path, n, sizeof *l->weights, r->st);
    if (!l->weights) rc = -1;
    for (int i = 0; i < n && !rc; i++) {
      l->weights[i].name = strdup(names[i]);
      l->count = i + 1;
      rc = read_tensor(r, g, names[i], &l->weights[i]);
    }
  }
  free_strings(names, n);
  H5Gclose(g);
  return rc;
}

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

static int read_optimizer(const reader *r, hid_t file, nnc_h5_file *f) {
  if (H5Lexists(file, "optimizer_weights", H5P_DEFAULT) <= 0) return 0;
  hid_t g = H5Gopen2(file, "optimizer_weights", H5P_DEFAULT);
  if (g < 0) return nnc_fail(r->st, "%s: optimizer_weights is not a group", r->path);
  char **names = NULL;
  int n = 0, rc = read_name_list(r, g, "optimizer_weights", "weight_names", &names, &n);
  if (!rc && !(f->slots = nnc_size_calloc(r->path, n, sizeof *f->slots, r->st))) rc = -1;
  for (int i = 0; i < n && !rc; i++) {
    if (ends_with(names[i], "iter:0") && !f->iter_name) {
      f->iter_name = strdup(names[i]);
      hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT);
      hid_t space = d < 0 ? -1 : H5Dget_space(d);
      if (d < 0 || H5Sget_simple_extent_npoints(space) != 1 ||
          H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &f->iterations) < 0)
        rc = nnc_fail(r->st, "%s: the optimizer's step count '%s' is missing or not one number", r->path, names[i]);
      if (space >= 0) H5Sclose(space);
      if (d >= 0) H5Dclose(d);
      continue;
    }
    nnc_named_tensor *t = &f->slots[f->nslots++];
    t->name = strdup(names[i]);
    rc = read_tensor(r, g, names[i], t);
  }
  free_strings(names, n);
  H5Gclose(g);
  return rc;
}

static int read_file(const reader *r, hid_t file, nnc_h5_file *f) {
  int rc = 0;
  hid_t weights = file;
  if (H5Aexists(file, "model_config") > 0) {
    rc = read_string(r, file, "model_config", &f->model_config);
    if (!rc && H5Aexists(file, "training_config") > 0) rc = read_string(r, file, "training_config", &f->training_config);
    if (!rc && (weights = H5Gopen2(file, "model_weights", H5P_DEFAULT)) < 0)
      rc = nnc_fail(r->st, "%s: a saved model without a model_weights group", r->path);
  }
  char **names = NULL;
  int n = 0;
  if (!rc) rc = read_name_list(r, weights, "the weights group", "layer_names", &names, &n);
  if (!rc) {
    f->layers = nnc_size_calloc(r->path, n, sizeof *f->layers, r->st);
    if (!f->layers) rc = -1;
  }
  for (int i = 0; i < n && !rc; i++) {
    f->nlayers = i + 1;
    rc = read_layer(r, weights, names[i], &f->layers[i]);
  }
  free_strings(names, n);
  if (weights >= 0 && weights != file) H5Gclose(weights);
  return rc ? rc : read_optimizer(r, file, f);
}

static int read_opened(const reader *r, hid_t file, nnc_h5_file *f) {
  char why[256];
  memset(f, 0, sizeof *f);
  if (file < 0) return nnc_fail(r->st, "%s: not a readable HDF5 file (%s)", r->path, hdf5_reason(why));
  int rc = read_file(r, file, f);
  H5Fclose(file);
  if (rc) nnc_h5_file_free(f);
  return rc;
}

int nnc_h5_read(const char *path, nnc_h5_file *f, nnc_status *st) {
  quiet();
  reader r = {path, st};
  FILE *probe = fopen(path, "rb");
  if (!probe) {
    memset(f, 0, sizeof *f);
    return nnc_fail(st, "%s: cannot open: %s", path, strerror(errno));
  }
  fclose(probe);
  return read_opened(&r, H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), f);
}

int nnc_h5_read_buffer(const void *data, size_t size, const char *label, nnc_h5_file *f, nnc_status *st) {
  quiet();
  reader r = {label, st};
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_core(fapl, 1 << 16, 0);
  H5Pset_file_image(fapl, (void *)data, size);
  hid_t file = H5Fopen(label, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  return read_opened(&r, file, f);
}

static void free_tensors(nnc_named_tensor *t, int n) {
  for (int i = 0; i < n; i++) free((char *)t[i].name), free(t[i].data);
  free(t);
}

void nnc_h5_file_free(nnc_h5_file *f) {
  for (int i = 0; i < f->nlayers; i++) {
    free((char *)f->layers[i].name);
    free_tensors(f->layers[i].weights, f->layers[i].count);
  }
  free(f->layers);
  free_tensors(f->slots, f->nslots);
  free((char *)f->model_config), free((char *)f->training_config), free((char *)f->iter_name);
  memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------- matching */

static void shape_text(const nnc_named_tensor *t, char *buf, size_t size) {
  int n = snprintf(buf, size, "(");
  for (int i = 0; i < t->rank && n < (int)size; i++)
    n += snprintf(buf + n, size - (size_t)n, i ? ", %" PRId64 : "%" PRId64, t->shape[i]);
  if (n < (int)size) snprintf(buf + n, size - (size_t)n, t->rank == 1 ? ",)" : ")");
}

static int with_weights(const nnc_h5_layer *v, int n, const nnc_h5_layer **out) {
  int k = 0;
  for (int i = 0; i < n; i++)
    if (v[i].count > 0) out[k++] = &v[i];
  return k;
}

static void layer_list(const nnc_h5_layer **v, int n, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < n && used + 1 < size; i++)
    used += (size_t)snprintf(buf + used, size - used, i ? ", %s" : "%s", v[i]->name);
}

static int check_layer(const char *path, int index, const nnc_h5_layer *from, const nnc_h5_layer *to, nnc_status *st) {
  if (from->count != to->count)
    return nnc_fail(st, "%s: layer #%d '%s' (%s in the file) has %d weight(s), the file's has %d", path, index,
                    to->name, from->name, to->count, from->count);
  for (int k = 0; k < to->count; k++) {
    const nnc_named_tensor *a = &from->weights[k], *b = &to->weights[k];
    if (a->rank == b->rank && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->rank)) continue;
    char want[128], have[128];
    shape_text(b, want, sizeof want), shape_text(a, have, sizeof have);
    return nnc_fail(st, "%s: layer '%s': weight '%s' has shape %s, but the file's '%s' has %s", path, to->name,
                    b->name, want, a->name, have);
  }
  return 0;
}

int nnc_h5_assign(const char *path, const nnc_h5_file *f, nnc_h5_layer *model, int nlayers, nnc_status *st) {
  const nnc_h5_layer **from = malloc(sizeof *from * (size_t)(f->nlayers + 1));
  const nnc_h5_layer **to = malloc(sizeof *to * (size_t)(nlayers + 1));
  if (!from || !to) nnc_out_of_memory("reading or writing HDF5");
  int nf = with_weights(f->layers, f->nlayers, from), nt = with_weights(model, nlayers, to);
  int rc = 0;
  if (nf != nt) {
    char a[512], b[512];
    layer_list(from, nf, a, sizeof a), layer_list(to, nt, b, sizeof b);
    rc = nnc_fail(st, "%s: the file holds weights for %d layer(s) (%s), the model has %d layer(s) with weights (%s)",
                  path, nf, a, nt, b);
  }
  for (int i = 0; i < nt && !rc; i++) rc = check_layer(path, i, from[i], to[i], st);
  for (int i = 0; i < nt && !rc; i++)
    for (int k = 0; k < to[i]->count; k++) {
      int64_t n = 1;
      for (int d = 0; d < to[i]->weights[k].rank; d++) n *= to[i]->weights[k].shape[d];
      memcpy(to[i]->weights[k].data, from[i]->weights[k].data, sizeof(float) * (size_t)n);
    }
  free(from), free(to);
  return rc;
}
