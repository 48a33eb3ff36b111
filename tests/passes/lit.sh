#!/usr/bin/env bash
# Runs the pass tests written as IR (tests/passes/*.ir), as LLVM's lit does:
# each "// RUN:" line of a file is a shell pipeline, with %s the file, and
# nnc, FileCheck and not found on PATH; a file passes when all its RUN lines
# exit 0. A failing line's output is printed.
#   usage: lit.sh NNC_BINARY LLVM_TOOLS_DIR FILE.ir...
set -u
nnc=$1 tools=$2
shift 2
if [ ! -x "$tools/FileCheck" ] || [ ! -x "$tools/not" ]; then
  echo "FileCheck and not were not found in '$tools': install llvm-14-tools (scripts/setup.sh does)"
  exit 1
fi
export PATH="$(dirname "$nnc"):$tools:$PATH"
passed=0 failed=0
for file in "$@"; do
  mapfile -t runs < <(sed -n 's|^// RUN: *||p' "$file")
  ok=1
  [ "${#runs[@]}" -gt 0 ] || { echo "FAIL $file: no RUN line"; ok=0; }
  for run in "${runs[@]}"; do
    cmd=${run//%s/$file}
    if ! out=$(bash -o pipefail -c "$cmd" 2>&1); then
      printf 'FAIL %s\n  RUN: %s\n%s\n' "$file" "$cmd" "$out"
      ok=0
    fi
  done
  if [ "$ok" = 1 ]; then passed=$((passed + 1)); echo "PASS $file"; else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
