"""Independent readers for the files nnc writes, run by the files suite.

Each subcommand checks one kind of file with a library that shares no code
with nnc (h5py for HDF5, numpy for safetensors' plain layout) and exits
non-zero with a message on the first difference.
"""
import json
import struct
import sys

import numpy as np


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def safetensors(path):
    """The tensors of a safetensors file, by name, in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return out


def names(attr):
    """A Keras name list attribute as str, as load_attributes_from_hdf5_group reads it."""
    return [n.decode("utf8") if hasattr(n, "decode") else n for n in attr]


def parse_layers(spec):
    """'conv2d=kernel:3x3x1x3,bias:3' 'flatten=' -> [(layer, [(weight, shape)])]"""
    layers = []
    for item in spec:
        layer, _, weights = item.partition("=")
        ws = []
        for w in filter(None, weights.split(",")):
            wname, _, shape = w.partition(":")
            ws.append((wname, tuple(int(d) for d in shape.split("x"))))
        layers.append((layer, ws))
    return layers


def check_weights_group(g, layers, values, where):
    """Keras 2's save_weights_to_hdf5_group layout under group g."""
    want = [layer for layer, _ in layers]
    if names(g.attrs["layer_names"]) != want:
        fail(f"{where}: layer_names {names(g.attrs['layer_names'])} != {want}")
    if g.attrs["backend"] != b"tensorflow" or not g.attrs["keras_version"].startswith(b"2."):
        fail(f"{where}: backend/keras_version {g.attrs['backend']!r} {g.attrs['keras_version']!r}")
    for layer, ws in layers:
        wn = names(g[layer].attrs["weight_names"])
        expect = [f"{layer}/{w}:0" for w, _ in ws]
        if wn != expect:
            fail(f"{where}: {layer} weight_names {wn} != {expect}")
        for (w, shape), full in zip(ws, wn):
            d = g[layer][full]
            if d.shape != shape or d.dtype != np.float32:
                fail(f"{where}: {layer}/{full} is {d.dtype}{d.shape}, want float32{shape}")
            if values is not None and not np.array_equal(d[()], values[full]):
                fail(f"{where}: {layer}/{full} differs from the safetensors save")
    if names(g["top_level_model_weights"].attrs["weight_names"]) != []:
        fail(f"{where}: top_level_model_weights is not empty")


def h5_layout(args):
    import h5py
    path, st_path = args[0], args[1]
    values = safetensors(st_path)
    with h5py.File(path, "r") as f:
        check_weights_group(f, parse_layers(args[2:]), values, path)
    print("ok")


def model_weights():
    """Known values for the suite's small model (conv2d 3x3x1x3, flatten,
    dense 48x4), in Keras's order, under names nnc did not choose."""
    shapes = [("c1", "kernel", (3, 3, 1, 3)), ("c1", "bias", (3,)), ("d1", "kernel", (48, 4)), ("d1", "bias", (4,))]
    out = []
    for k, (layer, w, shape) in enumerate(shapes):
        n = int(np.prod(shape))
        out.append((layer, w, (np.sin(np.arange(n) * 0.37 + k) * 0.5).astype(np.float32).reshape(shape)))
    return out


def h5_write(args):
    """Writes model_weights() as Keras 2 does, with h5py alone."""
    import h5py
    path, vlen = args[0], "--vlen" in args
    string = h5py.string_dtype() if vlen else None
    weights = model_weights()
    with h5py.File(path, "w") as f:
        layer_names = ["c1", "flat", "d1"]
        if vlen:
            f.attrs.create("layer_names", [n.encode() for n in layer_names], dtype=string)
        else:
            f.attrs["layer_names"] = [n.encode() for n in layer_names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.12.0"
        for layer in layer_names:
            g = f.create_group(layer)
            ws = [(w, v) for l, w, v in weights if l == layer]
            wn = [f"{layer}/{w}:0".encode() for w, _ in ws]
            if vlen and wn:
                g.attrs.create("weight_names", wn, dtype=string)
            else:
                g.attrs["weight_names"] = wn
            for (w, v), n in zip(ws, wn):
                g.create_dataset(n.decode(), data=v.astype(np.float64) if vlen else v)


def h5_matches(args):
    """nnc's safetensors save after loading h5_write's file holds its values in order."""
    got = list(safetensors(args[0]).values())
    want = [v for _, _, v in model_weights()]
    if len(got) != len(want):
        fail(f"{len(got)} tensors, want {len(want)}")
    for g, w in zip(got, want):
        if g.shape != w.shape or not np.array_equal(g, w):
            fail(f"values differ: {g.ravel()[:4]} vs {w.ravel()[:4]}")
    print("ok")


if __name__ == "__main__":
    commands = {"h5-layout": h5_layout, "h5-write": h5_write, "h5-matches": h5_matches}
    commands[sys.argv[1]](sys.argv[2:])
