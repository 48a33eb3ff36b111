/* The whole safetensors reader (runtime/store/safetensors.c): a file that passes
 * nnc_safetensors_read_index must then load into buffers of exactly the
 * names and shapes it lists when every tensor is F32, since the index checks
 * all that loading checks but the caller's side. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "runtime/store/safetensors.h"

/* Loading copies the data, so only files whose tensors are small are loaded
 * (the input is at most this big anyway under libFuzzer's limits). */
#define MAX_LOAD_ELEMENTS ((int64_t)1 << 22)

static void load_all(const char *path, const nnc_safetensors_index *idx) {
  int64_t total = 0;
  for (int i = 0; i < idx->count; i++) {
    if (strcmp(idx->entries[i].dtype, "F32")) return;
    total += (idx->entries[i].end - idx->entries[i].begin) / 4;
  }
  if (total > MAX_LOAD_ELEMENTS) return;
  nnc_named_tensor *t = calloc((size_t)idx->count + 1, sizeof *t);
  if (!t) fuzz_fail("out of memory");
  for (int i = 0; i < idx->count; i++) {
    const nnc_safetensors_entry *e = &idx->entries[i];
    t[i].name = e->name;
    t[i].rank = e->rank;
    for (int d = 0; d < e->rank; d++) t[i].shape[d] = e->shape[d];
    t[i].data = malloc((size_t)(e->end - e->begin) + 1);
    if (!t[i].data) fuzz_fail("out of memory");
  }
  nnc_status st = {0};
  if (nnc_safetensors_load(path, t, idx->count, &st))
    fuzz_fail("the index was read but loading its own tensors failed: %s", st.msg);
  for (int i = 0; i < idx->count; i++) free(t[i].data);
  free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  nnc_safetensors_index idx = {0};
  nnc_status st = {0};
  int rc = nnc_safetensors_read_index(path, &idx, &st);
  fuzz_outcome(rc ? st.msg : NULL);
  if (!rc) load_all(path, &idx);
  nnc_safetensors_index_free(&idx);
  return 0;
}
