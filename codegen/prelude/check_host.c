/* Compiles the host prelude on its own with nnc's warnings (-Wall -Wextra
 * -Werror), as a cuda-emu unit sees it: the kernels and launchers that follow
 * it there use what it defines, as this function does. */
#include "codegen/prelude/tf32.c"
#include "codegen/prelude/host.c"

void nnc_emu_prelude_uses(void);
void nnc_emu_prelude_uses(void) {
  (void)gridDim;
  (void)nnc_emu_syncthreads;
  (void)nnc_emu_run_cooperative;
  (void)nnc_emu_atomic_add;
  (void)nnc_tf32;
  (void)nnc_mma_tf32;
  (void)nnc_cp_async4;
  (void)nnc_cp_async16;
  (void)nnc_cp_async_commit;
  (void)nnc_cp_async_wait;
}
