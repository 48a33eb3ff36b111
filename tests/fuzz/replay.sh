#!/usr/bin/env bash
# The `fuzz` test: every harness in BUILD runs once on each seed input (made
# by this NNC; each must be accepted), then on each saved crash under
# tests/fuzz/regress/<harness>/ (and the text IR harness on the pass tests'
# IR), so a crash fixed once stays fixed.
#   bash tests/fuzz/replay.sh NNC PYTHON BUILD
set -euo pipefail
nnc=$1 python=$2 build=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
bash "$here/seeds.sh" "$nnc" "$python" "$seeds"
for src in "$here"/harness/fuzz_*.c; do
  name=$(basename "$src" .c)
  harness=${name#fuzz_}
  [ "$(ls -A "$seeds/$harness")" ] || { echo "no seed inputs for $name" >&2; exit 1; }
  NNC_FUZZ_EXPECT=accept fuzz_run "$harness" "$build/$name" "$seeds/$harness" | tail -1
  more=()
  [ -d "$here/regress/$harness" ] && more+=("$here/regress/$harness")
  [ "$harness" = text_ir ] && more+=("$here"/../passes/*.ir)
  [ ${#more[@]} = 0 ] || fuzz_run "$harness" "$build/$name" "${more[@]}" | tail -1
done
