#!/usr/bin/env bash
# Installs the Debian packages nnc builds, tests and trains with, then builds
# the normal tree (build/) and, with --asan, the sanitizer tree (build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs="cmake make gcc pkg-config liblua5.4-dev check libsubunit-dev zlib1g-dev libopenblas-dev dataset-fashion-mnist llvm-14-tools
  libhdf5-dev libjansson-dev libcairo2-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler python3
  python3-numpy python3-h5py python3-pil python3-protobuf graphviz
  libcurl4-openssl-dev libssl-dev libzip-dev python3-scipy openmpi-bin clang libclang-rt-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
if [ "${1:-}" = "--asan" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNNC_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
fi
