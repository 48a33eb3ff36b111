/* MNIST and Fashion-MNIST by name, as Keras's datasets module gives them.
 *
 * Places, in order: $NNC_DATA/<subdir>, $NNC_DATA, the system directory
 * (/usr/share/datasets/<subdir>, where Debian's dataset-fashion-mnist puts
 * its files) and nnc's download cache ($XDG_CACHE_HOME/nnc/datasets/<subdir>).
 * A place holds the four IDX files (each .gz or plain) or, for MNIST,
 * Keras's single mnist.npz. When no place has them, the files Keras
 * downloads are fetched from Keras's address (or $NNC_DATA_URL) into the
 * cache and checked against Keras's published SHA-256 sums; the cache is
 * checked again on every load, as Keras's get_file does.
 *
 * To add a data set in this layout, give it a `dataset` row and two
 * functions in the tables at the end. */
#include "frontend/datasets.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/bind.h"
#include "frontend/fetch.h"
#include "frontend/npz.h"
#include "frontend/tensor.h"

#define KERAS_BASE "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

static char system_dir[4096] = "/usr/share/datasets";
static char cache_override[4096];

void nnc_data_set_system_dir(const char *dir) {
  snprintf(system_dir, sizeof system_dir, "%s", dir ? dir : "/usr/share/datasets");
}

void nnc_data_set_cache_dir(const char *dir) { snprintf(cache_override, sizeof cache_override, "%s", dir ? dir : ""); }

static const char *const dataset_files[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

typedef struct dataset {
  const char *title;  /* "Fashion-MNIST" */
  const char *name;   /* "fashion_mnist": data.<name>() and datasets.<name>.load_data() */
  const char *subdir; /* under each place */
  const char *npz;    /* Keras's one-file form, when Keras downloads that */
  const char *npz_sha256;
  const char *gz_sha256[4]; /* of each dataset_files[i].gz, when Keras downloads those */
  const char *debian;       /* the Debian package that ships it, or NULL */
} dataset;

/* Keras's keras/datasets/mnist.py and fashion_mnist.py: the files and sums. */
static const dataset mnist = {
    "MNIST", "mnist", "mnist", "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    {NULL, NULL, NULL, NULL}, NULL};
static const dataset fashion_mnist = {"Fashion-MNIST",
                                      "fashion_mnist",
                                      "fashion-mnist",
                                      NULL,
                                      NULL,
                                      {"3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                       "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                       "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                       "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
                                      "dataset-fashion-mnist"};

typedef struct place {
  const char *dir, *label;
  int cache;   /* the download cache: its files are checked against the sums */
  int exists;
  int missing; /* bit i: dataset_files[i] */
  int npz;     /* has a usable npz */
} place;

/* The run's settings (passes/options.h), where nnc read the variables
 * above; the zero value (an empty environment) where the state has none. */
static const nnc_options *options(lua_State *L) {
  static const nnc_options none;
  const nnc_run_config *c = nnc_lua_config(L);
  return c ? &c->opts : &none;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Pushes nnc's cache folder ("$XDG_CACHE_HOME/nnc"), or nothing and 0. */
static int push_cache_root(lua_State *L) {
  const char *xdg = options(L)->xdg_cache_home, *home = options(L)->home;
  if (cache_override[0]) lua_pushstring(L, cache_override);
  else if (xdg && *xdg) lua_pushfstring(L, "%s/nnc", xdg);
  else if (home && *home) lua_pushfstring(L, "%s/.cache/nnc", home);
  else return 0;
  return 1;
}

/* Pushes the places to look, in order, as strings kept on the stack. */
static int dataset_places(lua_State *L, const dataset *ds, place *p) {
  int n = 0;
  memset(p, 0, 4 * sizeof *p);
  const char *data = options(L)->data_dir;
  if (data && *data) {
    p[n].dir = lua_pushfstring(L, "%s/%s", data, ds->subdir);
    p[n++].label = lua_pushfstring(L, "$NNC_DATA/%s", ds->subdir);
    p[n].dir = lua_pushstring(L, data);
    p[n++].label = "$NNC_DATA";
  }
  p[n].dir = lua_pushfstring(L, "%s/%s", system_dir, ds->subdir);
  p[n++].label = "the system data set directory";
  if (push_cache_root(L)) {
    p[n].dir = lua_pushfstring(L, "%s/datasets/%s", lua_tostring(L, -1), ds->subdir);
    p[n].label = "nnc's download cache";
    p[n++].cache = 1;
  }
  return n;
}

/* Whether a cached file still has its published sum; a warning when not,
 * since it is then fetched again (Keras's get_file does the same). */
static int cache_valid(const char *path, const char *sha256) {
  char hex[65];
  nnc_status st = {0};
  if (!sha256) return 1;
  if (nnc_sha256_file(path, hex, &st) == 0 && !strcmp(hex, sha256)) return 1;
  fprintf(stderr, "nnc: %s does not match its published SHA-256 (%s); fetching it again\n", path, sha256);
  return 0;
}

/* Pushes the path of name in dir, .gz preferred, and returns 1; or pushes
 * nothing and returns 0. In the cache only the checked .gz counts. */
static int find_file(lua_State *L, const place *p, const char *name, const char *sha256) {
  const char *path = lua_pushfstring(L, "%s/%s.gz", p->dir, name);
  if (is_file(path) && (!p->cache || cache_valid(path, sha256))) return 1;
  lua_pop(L, 1);
  if (!p->cache && is_file(lua_pushfstring(L, "%s/%s", p->dir, name))) return 1;
  if (!p->cache) lua_pop(L, 1);
  return 0;
}

/* Looks through one place: pushes the four IDX paths (returns 4) or the npz
 * path (returns 1), or pushes nothing and returns 0. */
static int search_place(lua_State *L, const dataset *ds, place *p) {
  struct stat st;
  p->exists = stat(p->dir, &st) == 0 && S_ISDIR(st.st_mode);
  if (!p->exists) return 0;
  int found = 0;
  for (int f = 0; f < 4; f++) {
    if (find_file(L, p, dataset_files[f], ds->gz_sha256[f]))
      found++;
    else
      p->missing |= 1 << f;
  }
  if (found == 4) return 4;
  lua_pop(L, found);
  if (!ds->npz) return 0;
  const char *path = lua_pushfstring(L, "%s/%s", p->dir, ds->npz);
  p->npz = is_file(path) && (!p->cache || cache_valid(path, ds->npz_sha256));
  if (p->npz) return 1;
  lua_pop(L, 1);
  return 0;
}

/* What nnc fetches: the npz, or the four .gz files. */
static int remote_files(const dataset *ds, const char **names, const char **sums, char bufs[4][64]) {
  if (ds->npz) {
    names[0] = ds->npz;
    sums[0] = ds->npz_sha256;
    return 1;
  }
  for (int f = 0; f < 4; f++) {
    snprintf(bufs[f], sizeof bufs[f], "%s.gz", dataset_files[f]);
    names[f] = bufs[f];
    sums[f] = ds->gz_sha256[f];
  }
  return 4;
}

static const char *data_base_url(lua_State *L) {
  const char *url = options(L)->data_url;
  return url && *url ? url : KERAS_BASE;
}

/* The places and what each lacked, for the error message. */
static void describe_places(luaL_Buffer *b, lua_State *L, const dataset *ds, const place *p, int n) {
  lua_pushfstring(L, "cannot find %s, the files %s, %s, %s and %s (each .gz or plain)%s%s. Looked in:\n",
                  ds->title, dataset_files[0], dataset_files[1], dataset_files[2], dataset_files[3],
                  ds->npz ? ", or Keras's " : "", ds->npz ? ds->npz : "");
  luaL_addvalue(b);
  for (int i = 0; i < n; i++) {
    lua_pushfstring(L, "  %s (%s): ", p[i].dir, p[i].label);
    luaL_addvalue(b);
    if (!p[i].exists) luaL_addstring(b, "no such directory");
    if (p[i].exists && p[i].missing == 15) luaL_addstring(b, "none of them");
    if (p[i].exists && p[i].missing != 15) {
      luaL_addstring(b, "missing");
      for (int f = 0; f < 4; f++) {
        if (!(p[i].missing & (1 << f))) continue;
        luaL_addchar(b, ' ');
        luaL_addstring(b, dataset_files[f]);
      }
    }
    luaL_addchar(b, '\n');
  }
  const char *data = options(L)->data_dir;
  if (!data || !*data) luaL_addstring(b, "$NNC_DATA is not set.\n");
}

static _Noreturn void fetch_failed(lua_State *L, const char *func, const dataset *ds, const place *p, int n,
                                   const char *url, const nnc_status *st) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s: ", func);
  luaL_addvalue(&b);
  describe_places(&b, L, ds, p, n);
  if (url) {
    lua_pushfstring(L, "Downloading %s failed: %s.\n", url, st->msg);
    luaL_addvalue(&b);
  } else {
    luaL_addstring(&b, "Neither $XDG_CACHE_HOME nor $HOME is set, so nnc has no cache to download into.\n");
  }
  if (ds->debian) {
    lua_pushfstring(L, "Debian's package %s provides %s: apt-get install %s. Or place", ds->debian, ds->title,
                    ds->debian);
    luaL_addvalue(&b);
  } else {
    lua_pushfstring(L, "No Debian package ships %s. Place", ds->title);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, " the files by hand: download");
  const char *names[4], *sums[4];
  char bufs[4][64];
  int count = remote_files(ds, names, sums, bufs);
  for (int i = 0; i < count; i++) {
    lua_pushfstring(L, "\n  %s%s (SHA-256 %s)", data_base_url(L), names[i], sums[i]);
    luaL_addvalue(&b);
  }
  lua_pushfstring(L, "\ninto %s, or into $NNC_DATA/%s.", n && p[n - 1].cache ? p[n - 1].dir : "$NNC_DATA",
                  ds->subdir);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  nnc_lua_errorf(L, "%s", lua_tostring(L, -1));
}

/* Fetches what Keras fetches into the cache place; pushes the paths as
 * search_place does and returns their count. */
static int fetch_into_cache(lua_State *L, const char *func, const dataset *ds, place *p, int n) {
  if (n == 0 || !p[n - 1].cache) fetch_failed(L, func, ds, p, n, NULL, NULL);
  const place *cache = &p[n - 1];
  const char *names[4], *sums[4];
  char bufs[4][64];
  int count = remote_files(ds, names, sums, bufs);
  const char *base = data_base_url(L);
  const char *sep = base[strlen(base) - 1] == '/' ? "" : "/";
  for (int i = 0; i < count; i++) {
    const char *dest = lua_pushfstring(L, "%s/%s", cache->dir, names[i]);
    if (is_file(dest) && cache_valid(dest, sums[i])) continue;
    const char *url = lua_pushfstring(L, "%s%s%s", base, sep, names[i]);
    nnc_fetch_req req = {url, dest, sums[i], stderr};
    nnc_status st = {0};
    if (nnc_fetch(&req, &st)) fetch_failed(L, func, ds, p, n, url, &st);
    lua_pop(L, 1);
  }
  return count;
}

/* Pushes the paths of the data set's files; returns 4 (IDX) or 1 (npz). */
static int locate(lua_State *L, const char *func, const dataset *ds) {
  place p[4];
  int n = dataset_places(L, ds, p);
  for (int i = 0; i < n; i++) {
    int found = search_place(L, ds, &p[i]);
    if (found) return found;
  }
  return fetch_into_cache(L, func, ds, p, n);
}

static void check_npz_split(lua_State *L, const char *path, const char *xname, nnc_tensor *x, nnc_tensor *y) {
  char tx[NNC_TENSOR_TYPE_MAX], ty[NNC_TENSOR_TYPE_MAX];
  if (x->dtype != NNC_U8 || x->rank != 3 || y->rank != 1 || y->shape[0] != x->shape[0])
    nnc_lua_errorf(L, "%s: expected %s as u8[N,rows,cols] with N labels, got %s and %s", path, xname,
                   nnc_tensor_type_str(x, tx, sizeof tx), nnc_tensor_type_str(y, ty, sizeof ty));
}

/* Labels as i32, whatever integer type the file stored. */
static void labels_to_i32(lua_State *L, int idx) {
  nnc_tensor *y = nnc_lua_totensor(L, idx);
  if (y->dtype == NNC_I32) return;
  nnc_tensor *out = nnc_lua_newtensor(L, NNC_I32, y->rank, y->shape);
  for (int64_t i = 0; i < y->shape[0]; i++) nnc_tensor_i32(out)[i] = (int32_t)nnc_tensor_get(y, i);
  lua_replace(L, idx);
}

/* Pushes x_train, y_train, x_test, y_test from the npz at path. */
static void load_npz(lua_State *L, const char *path) {
  npz_file *f = nnc_npz_open(L, path);
  int archive = lua_gettop(L);
  static const char *const names[4] = {"x_train", "y_train", "x_test", "y_test"};
  for (int i = 0; i < 4; i++) nnc_npz_read(L, f, path, names[i]);
  nnc_npz_close(L, archive);
  lua_remove(L, archive);
  int top = lua_gettop(L);
  labels_to_i32(L, top - 2);
  labels_to_i32(L, top);
  check_npz_split(L, path, "x_train", nnc_lua_totensor(L, top - 3), nnc_lua_totensor(L, top - 2));
  check_npz_split(L, path, "x_test", nnc_lua_totensor(L, top - 1), nnc_lua_totensor(L, top));
}

/* Pushes x_train (u8[N,28,28]), y_train (i32[N]), x_test, y_test. */
static void load_raw(lua_State *L, const char *func, const dataset *ds) {
  int base = lua_gettop(L);
  int found = locate(L, func, ds);
  int first = lua_gettop(L) - found + 1;
  if (found == 1) {
    load_npz(L, lua_tostring(L, first));
  } else {
    nnc_data_load_split(L, lua_tostring(L, first), lua_tostring(L, first + 1));
    nnc_data_load_split(L, lua_tostring(L, first + 2), lua_tostring(L, first + 3));
  }
  /* Keep the four tensors, drop the strings below them. */
  int top = lua_gettop(L);
  for (int i = 0; i < 4; i++) lua_copy(L, top - 3 + i, base + 1 + i);
  lua_settop(L, base + 4);
}

/* f32[N,rows,cols,1] in [0,1]: a float32 division, as the Keras scripts'
 * x.astype("float32") / 255. */
static void push_unit_images(lua_State *L, const nnc_tensor *x) {
  int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2], 1};
  nnc_tensor *out = nnc_lua_newtensor(L, NNC_F32, 4, shape);
  int64_t n = nnc_tensor_numel(x);
  const uint8_t *src = nnc_tensor_u8(x);
  float *dst = nnc_tensor_f32(out);
  for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i] / 255.0f;
}

/* data.mnist() / data.fashion_mnist(): train and test as {x = f32[N,28,28,1], y = i32[N]}. */
static int convenience_form(lua_State *L, const dataset *ds) {
  char func[64];
  snprintf(func, sizeof func, "data.%s", ds->name);
  load_raw(L, func, ds);
  int first = lua_gettop(L) - 3;
  for (int split = 0; split < 2; split++) {
    lua_createtable(L, 0, 2);
    push_unit_images(L, nnc_lua_totensor(L, first + 2 * split));
    lua_setfield(L, -2, "x");
    lua_pushvalue(L, first + 2 * split + 1);
    lua_setfield(L, -2, "y");
  }
  return 2;
}

/* datasets.<name>.load_data(): x_train, y_train, x_test, y_test. */
static int keras_form(lua_State *L, const dataset *ds) {
  char func[64];
  snprintf(func, sizeof func, "datasets.%s.load_data", ds->name);
  load_raw(L, func, ds);
  return 4;
}

static int data_mnist(lua_State *L) { return convenience_form(L, &mnist); }
static int data_fashion_mnist(lua_State *L) { return convenience_form(L, &fashion_mnist); }
static int load_mnist(lua_State *L) { return keras_form(L, &mnist); }
static int load_fashion_mnist(lua_State *L) { return keras_form(L, &fashion_mnist); }

/* ---- data.get_file ---- */

static const char *get_file_option(lua_State *L, int opts, const char *key) {
  if (lua_isnoneornil(L, opts)) return NULL;
  lua_getfield(L, opts, key);
  const char *v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the options table keeps the string */
  return v;
}

static void check_get_file_options(lua_State *L, int opts) {
  static const char *const valid[] = {"file_hash", "cache_subdir", "cache_dir", "hash_algorithm", NULL};
  if (lua_isnoneornil(L, opts)) return;
  luaL_checktype(L, opts, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pop(L, 1);
    const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    int known = 0;
    for (int i = 0; valid[i]; i++) known |= !strcmp(key, valid[i]);
    if (!known) {
      const char *near = nnc_closest_name(key, valid);
      nnc_lua_errorf(L, "get_file got an unknown option '%s'%s%s%s (valid: file_hash, cache_subdir, cache_dir, "
                        "hash_algorithm)",
                     key, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
  }
  const char *algo = get_file_option(L, opts, "hash_algorithm");
  if (algo && strcmp(algo, "sha256") && strcmp(algo, "auto"))
    nnc_lua_errorf(L, "get_file: hash_algorithm '%s' is not supported; nnc checks SHA-256 (\"sha256\" or \"auto\")",
                   algo);
}

/* data.get_file(fname, origin, { file_hash, cache_subdir = "datasets", cache_dir }):
 * Keras's get_file. The path of the file, downloaded when it is not in the
 * cache or no longer matches file_hash. */
static int data_get_file(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1), *origin = luaL_checkstring(L, 2);
  check_get_file_options(L, 3);
  const char *hash = get_file_option(L, 3, "file_hash");
  const char *subdir = get_file_option(L, 3, "cache_subdir");
  const char *dir = get_file_option(L, 3, "cache_dir");
  if (hash && (strlen(hash) != 64 || strspn(hash, "0123456789abcdefABCDEF") != 64))
    nnc_lua_errorf(L, "get_file: file_hash must be a SHA-256 of 64 hex digits, got '%s'", hash);
  const char *path;
  if (fname[0] == '/') {
    path = fname;
  } else {
    if (!dir) {
      if (!push_cache_root(L)) nnc_lua_errorf(L, "get_file: neither $XDG_CACHE_HOME nor $HOME is set; pass cache_dir");
      dir = lua_tostring(L, -1);
    }
    path = lua_pushfstring(L, "%s/%s/%s", dir, subdir ? subdir : "datasets", fname);
  }
  if (is_file(path) && (!hash || cache_valid(path, hash))) {
    lua_pushstring(L, path);
    return 1;
  }
  nnc_fetch_req req = {origin, path, hash, stderr};
  nnc_status st = {0};
  if (nnc_fetch(&req, &st))
    nnc_lua_errorf(L, "get_file: downloading %s to %s failed: %s. Place the file there by hand%s%s%s", origin, path,
                   st.msg, hash ? " (SHA-256 " : "", hash ? hash : "", hash ? ")" : "");
  lua_pushstring(L, path);
  return 1;
}

void nnc_data_add_datasets(lua_State *L, int data_idx) {
  static const luaL_Reg funcs[] = {
      {"mnist", data_mnist}, {"fashion_mnist", data_fashion_mnist}, {"get_file", data_get_file}, {NULL, NULL}};
  lua_pushvalue(L, data_idx);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}

int nnc_lua_open_datasets(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, load_mnist);
  lua_setfield(L, -2, "load_data");
  lua_setfield(L, -2, "mnist");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, load_fashion_mnist);
  lua_setfield(L, -2, "load_data");
  lua_setfield(L, -2, "fashion_mnist");
  return 1;
}
