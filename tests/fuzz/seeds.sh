#!/usr/bin/env bash
# Writes the fuzz harnesses' seed corpora under OUT/<harness>/, from files
# nnc itself makes (tests/fuzz/seeds.lua, --dump-ir) and small IDX files;
# each reader must accept every one of them:
#   bash tests/fuzz/seeds.sh NNC PYTHON OUT
set -euo pipefail
nnc=$1 python=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
files=$out/files
rm -rf "$out"
mkdir -p "$files" "$out/ir" "$out"/{idx,safetensors,safetensors_header,h5,model_json,text_ir}

"$nnc" "$here/seeds.lua" --out "$files" --dump-ir --dump-dir "$out/ir" >/dev/null
cp "$files"/*.h5 "$out/h5/"
cp "$files"/*.safetensors "$out/safetensors/"
cp "$out"/ir/* "$out/text_ir/"

# The safetensors header alone, and each model's JSON as fuzz_model_json.c
# takes it: model_config, then a NUL and training_config when there is one.
"$python" - "$files" "$out" <<'PY'
import glob, os, struct, sys
import h5py
files, out = sys.argv[1:]
for path in sorted(glob.glob(files + "/*.safetensors")):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = f.read(n)
    with open(os.path.join(out, "safetensors_header", os.path.basename(path) + ".json"), "wb") as f:
        f.write(header)
for path in sorted(glob.glob(files + "/*.h5")):
    with h5py.File(path, "r") as h5:
        if "model_config" not in h5.attrs:
            continue
        text = lambda v: v if isinstance(v, bytes) else v.encode()
        blob = text(h5.attrs["model_config"])
        if "training_config" in h5.attrs:
            blob += b"\0" + text(h5.attrs["training_config"])
    with open(os.path.join(out, "model_json", os.path.basename(path) + ".json"), "wb") as f:
        f.write(blob)
PY

# IDX: magic 00 00 TYPE RANK, big-endian u32 dimensions, then the data.
idx() { printf "$2" >"$out/idx/$1"; }
idx images_ubyte '\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02\x01\x02\x03\x04\x05\x06\x07\xff'
idx labels_ubyte '\0\0\x08\x01\0\0\0\x03\x00\x07\x09'
idx sbyte '\0\0\x09\x01\0\0\0\x02\x80\x7f'
idx short '\0\0\x0b\x02\0\0\0\x01\0\0\0\x02\x80\x00\x7f\xff'
idx int '\0\0\x0c\x01\0\0\0\x02\x80\0\0\0\x7f\xff\xff\xff'
idx float '\0\0\x0d\x01\0\0\0\x02\x3f\x80\0\0\x7f\x80\0\0'
idx double '\0\0\x0e\x01\0\0\0\x01\x3f\xf0\0\0\0\0\0\0'
idx empty '\0\0\x08\x02\0\0\0\x00\0\0\0\x05'
gzip -9 -n -c "$out/idx/images_ubyte" >"$out/idx/images_ubyte.gz"
rm -rf "$files" "$out/ir"
