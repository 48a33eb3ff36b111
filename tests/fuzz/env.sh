# Sanitizer settings for running the fuzz harnesses, sourced by
# scripts/fuzz.sh and tests/fuzz/replay.sh. An allocation past 2 GiB fails
# as it would on a machine without the memory: the reader (or libhdf5) must
# handle that, and an abort() on it is a crash. A leak fails, but for
# libhdf5's own (tests/fuzz/lsan.supp).
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=2048
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$fuzz_dir/lsan.supp:print_suppressions=0

# fuzz_run HARNESS COMMAND...: runs the command for that harness. The h5
# harness's stacks go through libhdf5, built without frame pointers, so
# only the slow unwinder finds the frames lsan.supp names.
fuzz_run() {
  local h=$1
  shift
  if [ "$h" = h5 ]; then ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 "$@"; else "$@"; fi
}

# fuzz_tolerated HARNESS: the libFuzzer options that let a run go on past
# what the harness tolerates. libhdf5 (Debian's 1.10) has memory errors,
# loops and unbounded growth of its own on corrupt files (a strdup past an
# attribute name in H5Aexists, a hang in H5Gopen2): nnc cannot fix those, so
# the h5 harness runs in fork mode past them, and scripts/fuzz.sh fails only
# on a report whose first frame in either libhdf5 or nnc's sources is nnc's.
fuzz_tolerated() {
  if [ "$1" = h5 ]; then echo "-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"; fi
}
