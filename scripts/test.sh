#!/usr/bin/env bash
# Sets up, then runs every test twice: the normal build, and the
# AddressSanitizer + UndefinedBehaviorSanitizer build, where a leak fails.
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
