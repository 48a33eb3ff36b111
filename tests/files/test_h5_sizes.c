/* HDF5 datasets whose header claims more than the file stores: refused by
 * size before the reader allocates for them. The file is made with the HDF5
 * library directly, as a corrupt or hostile one would be. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "runtime/store/h5.h"
#include "tests/files/suites.h"

static void string_attr(hid_t loc, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, strlen(value));
  hsize_t one = 1;
  hid_t space = H5Screate_simple(1, &one, NULL);
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(H5Awrite(a, type, value), 0);
  H5Aclose(a), H5Sclose(space), H5Tclose(type);
}

/* Keras's layout for one layer "dense" with one weight "dense/kernel:0" of
 * `dims`, chunked and compressed, of which only the first row is written. */
static void write_claiming(const char *path, const hsize_t dims[2]) {
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(file, 0);
  string_attr(file, "layer_names", "dense");
  hid_t layer = H5Gcreate2(file, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  string_attr(layer, "weight_names", "dense/kernel:0");
  hid_t inner = H5Gcreate2(layer, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(2, dims, NULL), plist = H5Pcreate(H5P_DATASET_CREATE);
  hsize_t chunk[2] = {1, dims[1] < 1024 ? dims[1] : 1024};
  H5Pset_chunk(plist, 2, chunk);
  H5Pset_deflate(plist, 9);
  hid_t d = H5Dcreate2(inner, "kernel:0", H5T_IEEE_F32LE, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  ck_assert_int_ge(d, 0);
  static float row[1 << 12];
  hid_t mem = H5Screate_simple(2, chunk, NULL);
  hsize_t start[2] = {0, 0};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, chunk, NULL);
  ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, row), 0);
  H5Sclose(mem), H5Dclose(d), H5Pclose(plist), H5Sclose(space);
  H5Gclose(inner), H5Gclose(layer), H5Fclose(file);
}

START_TEST(claims_more_than_it_stores) {
  char path[512];
  snprintf(path, sizeof path, "%s/claims.h5", files_dir());
  /* 1 GiB claimed, a few bytes stored: the reader used to allocate the
   * gigabyte and let HDF5 fill it. */
  const hsize_t dims[2] = {1 << 18, 1 << 10};
  write_claiming(path, dims);
  nnc_h5_file f;
  nnc_status st = {0};
  ck_assert_int_eq(nnc_h5_read(path, &f, &st), -1);
  ck_assert_msg(strstr(st.msg, "weight 'dense/kernel:0' claims 1073741824 bytes of data but stores "), "%s", st.msg);
  nnc_h5_file_free(&f);
  /* Past int64 and the size cap. */
  const hsize_t wraps[2] = {(hsize_t)1 << 31, (hsize_t)1 << 31};
  snprintf(path, sizeof path, "%s/wraps.h5", files_dir());
  write_claiming(path, wraps);
  ck_assert_int_eq(nnc_h5_read(path, &f, &st), -1);
  ck_assert_msg(strstr(st.msg, "weight 'dense/kernel:0': shape [2147483648,2147483648] needs ") &&
                    strstr(st.msg, "more than nnc's limit of 1.0 TiB per tensor"),
                "%s", st.msg);
  nnc_h5_file_free(&f);
  /* The same layout with what it claims stored loads. */
  const hsize_t small[2] = {1, 4};
  snprintf(path, sizeof path, "%s/small.h5", files_dir());
  write_claiming(path, small);
  ck_assert_msg(nnc_h5_read(path, &f, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(f.nlayers, 1);
  ck_assert_int_eq(f.layers[0].weights[0].shape[1], 4);
  nnc_h5_file_free(&f);
}
END_TEST

TCase *tcase_h5_sizes(void) {
  TCase *tc = tcase_create("h5_sizes");
  tcase_add_test(tc, claims_more_than_it_stores);
  return tc;
}
