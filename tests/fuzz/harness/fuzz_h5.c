/* Keras's HDF5 weights and models (runtime/store/h5.c), from an in-memory file
 * image, so neither libhdf5 nor the reader touches the disk. */
#include "common.h"
#include "runtime/store/h5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nnc_h5_file f;
  nnc_status st = {0};
  int rc = nnc_h5_read_buffer(data, size, "fuzz.h5", &f, &st);
  fuzz_outcome(rc ? st.msg : NULL);
  if (!rc) nnc_h5_file_free(&f);
  return 0;
}
