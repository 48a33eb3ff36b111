/* The safetensors JSON header parser (runtime/store/safetensors_header.c) on its
 * own: the input is the header text, as found after the 8-byte length. */
#include "common.h"
#include "runtime/store/safetensors_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nnc_safetensors_index idx = {0};
  nnc_status st = {0};
  int rc = nnc_safetensors_parse_header("fuzz.safetensors", data, size, 8, &idx, &st);
  fuzz_outcome(rc ? st.msg : NULL);
  nnc_safetensors_index_free(&idx);
  return 0;
}
