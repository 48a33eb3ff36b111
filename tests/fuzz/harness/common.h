/* What the fuzz harnesses share. Each harness defines LLVMFuzzerTestOneInput
 * and is built twice: with clang's libFuzzer (scripts/fuzz.sh) to search, and
 * with replay_main.c into the normal and sanitizer trees, where the `fuzz`
 * test feeds it the seed corpora and every saved crash (tests/fuzz/regress). */
#ifndef NNC_FUZZ_COMMON_H
#define NNC_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

struct lua_State;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a file, for readers that take a path: one file per process,
 * rewritten each call and removed at exit. */
const char *fuzz_file(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string (malloc'd; the caller frees it). */
char *fuzz_string(const uint8_t *data, size_t size);

/* One Lua state with nnc's modules (as scripts see them), made on first use
 * and kept, since making one costs far more than a run. Models are only
 * built and checked (--dry-run): nothing trains. */
struct lua_State *fuzz_lua(void);

/* Each harness reports whether the reader took the input (err NULL) or
 * refused it with a message. With NNC_FUZZ_EXPECT=accept in the environment
 * a refusal ends the run: the `fuzz` test sets it for the seed inputs, which
 * nnc wrote itself, so a harness cannot pass by refusing everything. */
void fuzz_outcome(const char *err);

/* The same for a lua_pcall's result code, the error on top of L's stack. */
void fuzz_lua_outcome(struct lua_State *L, int rc);

/* Ends the run with a report on stderr: a property the harness checks does
 * not hold. abort() so libFuzzer saves the input. */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
