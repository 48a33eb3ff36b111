#!/usr/bin/env bash
# Checks that a binary built with -DNNC_PORTABLE=ON runs on a machine that
# has neither Lua nor OpenBLAS: the loader is not asked for them (ldd), and
# it trains models/mlp.lua for one epoch with LD_LIBRARY_PATH cleared.
#   bash scripts/check_portable.sh BUILD_DIR
# The `portable` test of a portable build runs it on that build's nnc.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: check_portable.sh BUILD_DIR}
nnc=$build/nnc
[ -x "$nnc" ] || { echo "check_portable: no nnc in $build" >&2; exit 2; }
grep -q '^NNC_PORTABLE:BOOL=ON' "$build/CMakeCache.txt" ||
  { echo "check_portable: $build is not configured with -DNNC_PORTABLE=ON" >&2; exit 2; }
grep -q '^NNC_NATIVE:BOOL=OFF' "$build/CMakeCache.txt" ||
  { echo "check_portable: $build targets this machine's instruction set (NNC_NATIVE=ON)" >&2; exit 1; }
needs=$(ldd "$nnc")
echo "$needs"
if echo "$needs" | grep -E 'liblua|libopenblas|libgfortran|libquadmath|libz\.so|not found'; then
  echo "check_portable: $nnc still needs the shared libraries above" >&2
  exit 1
fi
# The model's own output ends with the test figures; a run that does not
# reach them failed whatever its exit status says.
out=$(env -u LD_LIBRARY_PATH NNC_CPU_THREADS=2 "$nnc" models/mlp.lua --epochs 1 2>&1) || {
  echo "$out" >&2; echo "check_portable: models/mlp.lua failed" >&2; exit 1; }
echo "$out" | tail -3
echo "$out" | grep -q '^test loss: [0-9.]* - test accuracy: 0\.[6-9]' ||
  { echo "check_portable: models/mlp.lua did not reach a test accuracy of 0.6 in one epoch" >&2; exit 1; }
echo "portable: OK"
