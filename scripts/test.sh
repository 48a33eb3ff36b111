#!/usr/bin/env bash
# Sets up, then runs every test three times: the normal build; the
# AddressSanitizer + UndefinedBehaviorSanitizer build, where a leak fails;
# and a clang build under clang's UndefinedBehaviorSanitizer, whose checks
# gcc's lacks (float-cast-overflow above all). Then each file reader is
# fuzzed for NNC_FUZZ_SECONDS (60) by scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --asan
export NNC_NOCACHE=1
# Check's per-test limit (4 s by default) is about hangs, not speed: on a
# busy machine the thread-pool and RNG cases overrun it while correct.
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-5}
(cd build && ctest --output-on-failure -j2)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export CK_FORK=no
(cd build-asan && ctest --output-on-failure -j2)
cmake -S . -B build-clang-ubsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DNNC_UBSAN_CLANG=ON >/dev/null
cmake --build build-clang-ubsan -j"$(nproc)"
(cd build-clang-ubsan && ctest --output-on-failure -j2)
unset ASAN_OPTIONS UBSAN_OPTIONS CK_FORK
bash scripts/fuzz.sh "${NNC_FUZZ_SECONDS:-60}"
