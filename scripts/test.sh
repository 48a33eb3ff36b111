#!/usr/bin/env bash
# Sets up, then runs every test twice: the normal build, and the
# AddressSanitizer + UndefinedBehaviorSanitizer build, where a leak fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --asan
export NNC_NOCACHE=1
(cd build && ctest --output-on-failure -j2)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export CK_FORK=no
(cd build-asan && ctest --output-on-failure -j2)
