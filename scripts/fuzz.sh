#!/usr/bin/env bash
# Fuzzes nnc's file readers: builds the libFuzzer harnesses of tests/fuzz
# (clang, ASan + UBSan) in build-fuzz/, then runs each for SECONDS (default
# 60) on its corpus: the seed inputs nnc itself writes (tests/fuzz/seeds.sh),
# the saved crashes, and what earlier runs here found (build-fuzz/corpus).
# A crash, leak, hang or memory blow-up is copied to
# tests/fuzz/regress/<harness>/, which the `fuzz` test replays, and fails.
#   bash scripts/fuzz.sh [SECONDS] [HARNESS ...]     e.g. 600 text_ir
# NNC_FUZZ_FLAGS adds libFuzzer options: for a long run that goes on past a
# crash, "-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1".
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
root=$(pwd)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nnc
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DNNC_SANITIZE=ON -DNNC_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers
bash tests/fuzz/seeds.sh "$root/build/nnc" /usr/bin/python3 build-fuzz/seeds
harnesses=("$@")
if [ ${#harnesses[@]} = 0 ]; then
  for src in tests/fuzz/harness/fuzz_*.c; do harnesses+=("$(basename "$src" .c | sed 's/^fuzz_//')"); done
fi
failed=()
source tests/fuzz/env.sh
# Whether HARNESS on INPUT hangs, runs out of memory, or fails with a report
# whose first frame in libhdf5 or in nnc's own sources is libhdf5's.
blames_libhdf5() {
  case $(basename "$2") in timeout-* | oom-*) return 0 ;; esac
  local first
  first=$(fuzz_run "$1" "build-fuzz/fuzz_$1" -timeout=10 -rss_limit_mb=2048 "$2" 2>&1 |
    grep -E '^ +#[0-9]+ ' | grep -E -m1 "libhdf5|$root/(ir|runtime|frontend|passes|codegen|tests)/" || true)
  [[ $first == *libhdf5* ]]
}
for h in "${harnesses[@]}"; do
  corpus=build-fuzz/corpus/$h crashes=build-fuzz/crashes/$h log=build-fuzz/logs/$h.log
  mkdir -p "$corpus" "$crashes" build-fuzz/logs
  inputs=("$corpus" "build-fuzz/seeds/$h")
  [ -d "tests/fuzz/regress/$h" ] && inputs+=("tests/fuzz/regress/$h")
  [ "$h" = text_ir ] && inputs+=(tests/passes)
  # A second per input is slow for these readers: past 10 it is a hang.
  rc=0
  fuzz_run "$h" "build-fuzz/fuzz_$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" $(fuzz_tolerated "$h") ${NNC_FUZZ_FLAGS:-} "${inputs[@]}" >"$log" 2>&1 || rc=$?
  stats=$(grep -E '^#[0-9]+:?[[:space:]].*cov: ' "$log" | tail -1 || true)
  echo "fuzz $h: ${stats:-no final line} (log: $log)"
  if [ -n "$(fuzz_tolerated "$h")" ]; then
    mkdir -p "build-fuzz/libhdf5/$h"
    for f in "$crashes"/*; do
      [ -f "$f" ] && blames_libhdf5 "$h" "$f" && mv "$f" "build-fuzz/libhdf5/$h/"
    done
    n=$(ls "build-fuzz/libhdf5/$h" | wc -l)
    [ "$n" = 0 ] || echo "  $n input(s) in build-fuzz/libhdf5/$h fail inside libhdf5 (tolerated)"
  fi
  # In fork mode libFuzzer exits with its last job's status, which is a
  # tolerated crash when that job happened to hit one: there the verdict is
  # the artifacts left once libhdf5's are set aside, and that the parent
  # wrapped up at all.
  if [ -n "$(fuzz_tolerated "$h")" ] && [ $rc != 0 ] && grep -q '^INFO: exiting: ' "$log"; then rc=0; fi
  if [ $rc != 0 ] || [ -n "$(ls -A "$crashes")" ]; then
    mkdir -p "tests/fuzz/regress/$h"
    for f in "$crashes"/*; do [ -f "$f" ] && cp "$f" "tests/fuzz/regress/$h/" && echo "  saved tests/fuzz/regress/$h/$(basename "$f")"; done
    grep -E 'ERROR|runtime error|fuzz:' "$log" | head -5 | sed 's/^/  /'
    rm -f "$crashes"/*
    failed+=("$h")
  fi
done
if [ ${#failed[@]} != 0 ]; then
  echo "fuzzing found failures in: ${failed[*]}" >&2
  exit 1
fi
