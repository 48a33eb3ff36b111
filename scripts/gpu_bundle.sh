#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a bare GPU machine into .gpu/ (kept
# out of git): nnc and test_codegen from a -DNNC_PORTABLE=ON build (no shared
# Lua, OpenBLAS or libcheck; generic x86-64), and Fashion-MNIST (30 MB).
#   bash scripts/gpu_bundle.sh        then, on the GPU machine:  bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${NNC_PORTABLE_BUILD:-build-portable}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNNC_PORTABLE=ON > /dev/null
nice -n 19 cmake --build "$build" -j2 --target nnc test_codegen > /dev/null
bash scripts/check_portable.sh "$build" > /dev/null
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
rm -rf .gpu && mkdir -p .gpu/bin .gpu/data
cp "$build/nnc" "$build/test_codegen" .gpu/bin/
strip .gpu/bin/*
data=${NNC_DATA:-/usr/share/datasets/fashion-mnist}
cp "$data"/*-idx?-ubyte.gz .gpu/data/
git rev-parse HEAD > .gpu/commit.txt
du -sh .gpu
