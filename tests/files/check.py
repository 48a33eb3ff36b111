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


BN_KEYS = {"name", "trainable", "dtype", "axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
           "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer",
           "gamma_regularizer", "beta_constraint", "gamma_constraint"}


def batch_norm_check(layers, group, axes):
    """Each BatchNormalization's config as Keras 2's get_config writes it
    (axis a list, as build() leaves it), and its weights as Keras makes them:
    gamma only with scale, beta only with center."""
    bns = [l["config"] for l in layers if l["class_name"] == "BatchNormalization"]
    if [c["axis"] for c in bns] != [[a] for a in axes]:
        fail(f"BatchNormalization axes {[c['axis'] for c in bns]}, want {[[a] for a in axes]}")
    for c in bns:
        if set(c) - {"batch_input_shape"} != BN_KEYS:
            fail(f"{c['name']}: config keys {sorted(c)} != Keras's {sorted(BN_KEYS)}")
        if c["gamma_initializer"] != {"class_name": "Ones", "config": {}} or any(
                c[k] is not None for k in ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint")):
            fail(f"{c['name']}: {c}")
        own = (["gamma"] if c["scale"] else []) + (["beta"] if c["center"] else []) + ["moving_mean", "moving_variance"]
        if names(group[c["name"]].attrs["weight_names"]) != [f"{c['name']}/{w}:0" for w in own]:
            fail(f"{c['name']}: weights {names(group[c['name']].attrs['weight_names'])}, want {own}")


def model_check(args):
    """A whole model as Keras 2's save_model_to_hdf5 lays it out; args[4],
    if given, the axis of each BatchNormalization ('3,1')."""
    import h5py
    path, kind, weights_file = args[0], args[1], args[2]
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        training = json.loads(f.attrs["training_config"])
        if config["class_name"] != kind:
            fail(f"model_config class {config['class_name']}, want {kind}")
        layers = config["config"]["layers"]
        if layers[0]["class_name"] != "InputLayer" or layers[0]["config"]["batch_input_shape"][0] is not None:
            fail(f"first layer {layers[0]}")
        group = f["model_weights"]
        want = [l["config"]["name"] for l in layers if kind == "Functional" or l["class_name"] != "InputLayer"]
        if names(group.attrs["layer_names"]) != want:
            fail(f"layer_names {names(group.attrs['layer_names'])} != config's {want}")
        if kind == "Functional":
            for l in layers[1:]:
                inbound = l["inbound_nodes"][0][0]
                if inbound[0] not in want or inbound[1:3] != [0, 0]:
                    fail(f"{l['name']} inbound {inbound}")
            if config["config"]["input_layers"] != [[want[0], 0, 0]] or config["config"]["output_layers"] != [[want[-1], 0, 0]]:
                fail(f"inputs/outputs {config['config']['input_layers']} {config['config']['output_layers']}")
        dense = [l for l in layers if l["class_name"] == "Dense"][0]["config"]
        for key in ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer"):
            if key not in dense:
                fail(f"Dense config lacks {key}: {dense}")
        if training["loss"] != "sparse_categorical_crossentropy" or training["metrics"] != ["accuracy"]:
            fail(f"training_config {training}")
        oc = training["optimizer_config"]
        if oc["class_name"] != "Adam" or abs(oc["config"]["learning_rate"] - 0.001) > 1e-12:
            fail(f"optimizer_config {oc}")
        with h5py.File(weights_file, "r") as w:
            for layer in want:
                for n in names(w[layer].attrs["weight_names"]):
                    if not np.array_equal(group[layer][n][()], w[layer][n][()]):
                        fail(f"{layer}/{n} differs from save_weights")
        opt = f["optimizer_weights"]
        on = names(opt.attrs["weight_names"])
        if on[0] != "Adam/iter:0" or opt["Adam/iter:0"][()] != int(args[3]):
            fail(f"optimizer weights {on[:2]}, iter {opt['Adam/iter:0'][()]}")
        batch_norm_check(layers, group, [int(a) for a in args[4].split(",")] if len(args) > 4 else [])
        trainable = [n for layer in want for n in names(group[layer].attrs["weight_names"])
                     if "/moving_" not in n]
        slots = [f"Adam/{n[:-2]}/m:0" for n in trainable] + [f"Adam/{n[:-2]}/v:0" for n in trainable]
        if on[1:] != slots:
            fail(f"slots {on[1:]} != {slots}")
    print("ok")


def model_write(args):
    """A Functional Dense(3 -> 2, linear) model as Keras 2.6 saves it, with
    known weights; prints the predictions for x = [[1, 2, 3], [-1, 0.5, 2]].
    --payload-names: the layers and the model are named with Lua code (a
    marker file `pwned`, exit status 3) that loading must treat as data;
    --payload-class and --payload-loss put such code where nnc refuses it."""
    import h5py
    code = "os.execute('touch pwned')"
    features, out, model = "features", "out", "model"
    if "--payload-names" in args:
        features = "x'); " + code + "; --[["
        out = "]] .. os.exit(3) .. [[ %s%n"
        model = "\"); " + code + " --"
    kernel = np.array([[0.5, -1.0], [0.25, 2.0], [-0.75, 1.5]], dtype=np.float32)
    bias = np.array([0.1, -0.2], dtype=np.float32)
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": features},
         "name": features, "inbound_nodes": []},
        {"class_name": "Dense", "config": {"name": out, "trainable": True, "dtype": "float32", "units": 2,
                                           "activation": "linear", "use_bias": True,
                                           "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                                           "bias_initializer": {"class_name": "Zeros", "config": {}},
                                           "kernel_regularizer": None, "bias_regularizer": None,
                                           "activity_regularizer": None, "kernel_constraint": None,
                                           "bias_constraint": None},
         "name": out, "inbound_nodes": [[[features, 0, 0, {}]]]},
    ]
    if "--regularized" in args:
        layers[1]["config"]["kernel_regularizer"] = {"class_name": "L2", "config": {"l2": 0.01}}
    if "--payload-class" in args:
        layers[1]["class_name"] = "Dense'); " + code + " --"
    config = {"class_name": "Functional", "config": {"name": model, "layers": layers,
                                                     "input_layers": [[features, 0, 0]],
                                                     "output_layers": [[out, 0, 0]]}}
    training = {"loss": "mse", "metrics": None, "weighted_metrics": None, "loss_weights": None,
                "optimizer_config": {"class_name": "SGD", "config": {"name": "SGD", "learning_rate": 0.01,
                                                                     "decay": 0.0, "momentum": 0.0,
                                                                     "nesterov": False}}}
    if "--payload-loss" in args:
        training["loss"] = code
    with h5py.File(args[0], "w") as f:
        f.attrs["keras_version"] = b"2.6.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        f.attrs["training_config"] = json.dumps(training).encode("utf8")
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [features.encode(), out.encode()]
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.6.0"
        g.create_group(features).attrs["weight_names"] = []
        o = g.create_group(out)
        o.attrs["weight_names"] = [(out + "/kernel:0").encode(), (out + "/bias:0").encode()]
        o.create_dataset(out + "/kernel:0", data=kernel)
        o.create_dataset(out + "/bias:0", data=bias)
    x = np.array([[1, 2, 3], [-1, 0.5, 2]], dtype=np.float32)
    for row in x @ kernel + bias:
        print(" ".join("%.6f" % v for v in row))


def config_edit(args):
    """Replaces text in a saved model's model_config, as a hand-edited or
    newer Keras's file would differ."""
    import h5py
    with h5py.File(args[0], "r+") as f:
        text = f.attrs["model_config"]
        text = text.decode("utf8") if hasattr(text, "decode") else text
        if args[1] not in text:
            fail(f"{args[1]!r} not in model_config")
        f.attrs["model_config"] = text.replace(args[1], args[2]).encode("utf8")


def layer_configs(args):
    """Each layer's class and the config keys an activation depends on, one
    layer a line, as Keras would read them from the saved model_config."""
    import h5py
    with h5py.File(args[0], "r") as f:
        config = json.loads(f.attrs["model_config"])
    for l in config["config"]["layers"]:
        c = l["config"]
        keys = [k for k in ("activation", "alpha", "negative_slope") if k in c]
        print(" ".join([l["class_name"]] + [f"{k}={c[k]!r}" for k in keys]))


def color_count(img, box, rgb, tol=40):
    """Pixels within box (x0, y0, x1, y1) close to rgb."""
    px = img.load()
    n = 0
    for y in range(box[1], box[3]):
        for x in range(box[0], box[2]):
            p = px[x, y][:3]
            n += all(abs(p[i] - rgb[i]) <= tol for i in range(3))
    return n


C0, C1, RED = (0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e), (0xd6, 0x27, 0x28)


def png_curves(args):
    """nnc.plot's figure: size, and per panel the curves it should hold by
    their matplotlib colours (C0 train, C1 validation), e.g. '2,2' or '1'."""
    from PIL import Image
    img = Image.open(args[0]).convert("RGB")
    w, h = (int(v) for v in args[1].split("x"))
    if img.size != (w, h):
        fail(f"size {img.size}, want {(w, h)}")
    panels = [int(n) for n in args[2].split(",")]
    dark = color_count(img, (0, 0, w, h), (0, 0, 0), 60)
    if dark < 500:
        fail(f"only {dark} dark pixels: no axes or text")
    for i, n in enumerate(panels):
        box = (i * w // len(panels), 0, (i + 1) * w // len(panels), h)
        found = [color_count(img, box, c) for c in (C0, C1)]
        want = [200, 200 if n == 2 else 0]
        if found[0] < want[0] or (found[1] >= 200) != (n == 2):
            fail(f"panel {i}: {found} pixels of C0, C1; want {n} curve(s)")
    print("ok")


def png_grid(args):
    """nnc.show_images' grid: size, a bright square where each test image has
    one, and red captions exactly over the cells listed."""
    from PIL import Image
    img = Image.open(args[0]).convert("RGB")
    w, h, cols, n = (int(v) for v in args[1:5])
    red = set(int(v) for v in args[5].split(",") if v) if len(args) > 5 else set()
    if img.size != (w, h):
        fail(f"size {img.size}, want {(w, h)}")
    cw, ch = w // cols, (h - 12) // ((n + cols - 1) // cols)
    px = img.load()
    for k in range(n):
        x0, y0 = (k % cols) * cw, (k // cols) * ch
        caption = color_count(img, (x0, y0, x0 + cw, y0 + 34), RED)
        if (caption > 20) != (k in red):
            fail(f"cell {k}: {caption} red caption pixels, wrong={k in red}")
        # test images are black with a white square in their top-left quarter
        inner = px[x0 + 12 + 20, y0 + 34 + 20]
        outer = px[x0 + 12 + 100, y0 + 34 + 100]
        if inner != (255, 255, 255) or outer != (0, 0, 0):
            fail(f"cell {k}: pixels {inner} {outer}, want white then black")
    print("ok")


def read_history(path):
    """nnc's history as the test script prints it: 'key v1 v2 ...' lines, %.17g."""
    hist = {}
    with open(path) as f:
        for line in f:
            key, *values = line.split()
            hist[key] = [float(v) for v in values]
    return hist


def csv_check(args):
    """CSVLogger's file, read by Python's csv module as Keras wrote it:
    header epoch + sorted log keys, one row per epoch, values exact."""
    import csv
    path, hist, sep = args[0], read_history(args[1]), args[2] if len(args) > 2 else ","
    runs = int(args[3]) if len(args) > 3 else 1
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=sep))
    keys = sorted(hist)
    if rows[0] != ["epoch"] + keys:
        fail(f"header {rows[0]} != {['epoch'] + keys}")
    n = len(hist[keys[0]])
    if len(rows) != 1 + n * runs:
        fail(f"{len(rows) - 1} rows, want {n * runs}")
    for run in range(runs):
        for e in range(n):
            row = rows[1 + run * n + e]
            if int(row[0]) != e:
                fail(f"row {row}: epoch {row[0]}, want {e}")
            for k, v in zip(keys, row[1:]):
                if run == runs - 1 and float(v) != hist[k][e]:
                    fail(f"epoch {e} {k}: {v} != {hist[k][e]!r}")
    print("ok")


def checkpoint_check(args):
    """ModelCheckpoint's files: the names Python's str.format gives the
    pattern from the history, each a complete Keras .h5 that h5py reads."""
    import glob
    import h5py
    import os
    os.chdir(args[0])
    pattern, hist, mode = args[1], read_history(args[2]), args[3]
    logs = [dict((k, v[e]) for k, v in hist.items()) for e in range(len(hist["loss"]))]
    want, best = [], float("inf")
    for e, log in enumerate(logs):
        if mode == "best":
            if not log["val_loss"] < best:
                continue
            best = log["val_loss"]
        want.append(pattern.format(epoch=e + 1, **log))
    have = sorted(p for p in glob.glob("*.h5") if not p.startswith("_"))
    if have != sorted(set(want)):
        fail(f"files {have}, want {sorted(set(want))}")
    for p in have:
        with h5py.File(p, "r") as f:
            if "model_config" not in f.attrs or "dense" not in f["model_weights"]:
                fail(f"{p} is not a whole Keras model")
    print("ok")


def complete_files(args):
    """After kill -9: every file under a checkpoint's own name opens in h5py
    with all its weights; temporaries are the only other files."""
    import glob
    import h5py
    checked = 0
    for p in sorted(glob.glob(args[0])):
        with h5py.File(p, "r") as f:
            g = f["model_weights"]
            for layer in names(g.attrs["layer_names"]):
                for n in names(g[layer].attrs["weight_names"]):
                    g[layer][n][()]
        checked += 1
    print(checked)


def crc32c(data):
    """CRC32C bit by bit (no table), independent of nnc's table-driven one."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tb_events(folder, pb2):
    """Every Event of the one events file in folder, checking the TFRecord framing."""
    import glob
    files = glob.glob(folder + "/events.out.tfevents.*")
    if len(files) != 1 or not files[0].endswith(".v2"):
        fail(f"{folder}: event files {files}")
    raw = open(files[0], "rb").read()
    events, at = [], 0
    while at < len(raw):
        header = raw[at:at + 8]
        (n,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", raw[at + 8:at + 12])
        if crc != masked(header):
            fail(f"{files[0]}: bad length CRC at byte {at}")
        body = raw[at + 12:at + 12 + n]
        (crc,) = struct.unpack("<I", raw[at + 12 + n:at + 16 + n])
        if len(body) != n or crc != masked(body):
            fail(f"{files[0]}: bad data CRC at byte {at}")
        e = pb2.Event()
        e.ParseFromString(body)
        events.append(e)
        at += 16 + n
    if events[0].file_version != "brain.Event:2":
        fail(f"{files[0]}: first event {events[0]}")
    return events


def scalars(events, prefix):
    out = {}
    for e in events:
        if e.WhichOneof("what") == "summary":
            for v in e.summary.value:
                if v.tag.startswith(prefix) and v.WhichOneof("value") == "simple_value":
                    out.setdefault(v.tag, []).append((e.step, v.simple_value))
    return out


def tb_check(args):
    """nn.TensorBoard's log_dir decoded with protoc's Python output of
    runtime/store/tensorboard.proto: framing CRCs, tags, steps and values against
    the history, histograms every histogram_freq epochs, the graph."""
    import importlib
    sys.path.insert(0, args[0])
    pb2 = importlib.import_module("tensorboard_pb2")
    log_dir, hist, freq, batches = args[1], read_history(args[2]), int(args[3]), int(args[4])
    f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
    train, val = tb_events(log_dir + "/train", pb2), tb_events(log_dir + "/validation", pb2)
    epochs = len(hist["loss"])
    for events, keys in ((train, ["loss", "accuracy"]), (val, ["val_loss", "val_accuracy"])):
        got = scalars(events, "epoch_")
        for k in keys:
            tag = "epoch_" + k.replace("val_", "")
            want = [(e, f32(hist[k][e])) for e in range(epochs)]
            if got.get(tag) != want:
                fail(f"{tag}: {got.get(tag)} != {want}")
    histos = {}
    for e in train:
        for v in (e.summary.value if e.WhichOneof("what") == "summary" else []):
            if v.WhichOneof("value") == "histo":
                histos.setdefault(v.tag, []).append((e.step, v.histo))
    want_steps = [e for e in range(epochs) if freq and e % freq == 0]
    for tag in ("dense/kernel_0", "dense/bias_0", "dense_1/kernel_0"):
        if [s for s, _ in histos.get(tag, [])] != want_steps:
            fail(f"histogram {tag} at steps {[s for s, _ in histos.get(tag, [])]}, want {want_steps}")
        for _, h in histos[tag]:
            if sum(h.bucket) != h.num or h.num != {"dense/kernel_0": 24, "dense/bias_0": 8, "dense_1/kernel_0": 16}[tag]:
                fail(f"{tag}: {h.num} values, buckets hold {sum(h.bucket)}")
    graphs = [e.graph_def for e in train if e.WhichOneof("what") == "graph_def"]
    if len(graphs) != 1:
        fail(f"{len(graphs)} graphs")
    g = pb2.GraphDef()
    g.ParseFromString(graphs[0])
    names = {n.name for n in g.node}
    if not any(n.startswith("fused_") for n in names) or not any(n.op == "matmul" for n in g.node):
        fail(f"graph nodes {sorted(names)[:20]}")
    for n in g.node:
        for i in n.input:
            if i not in names:
                fail(f"{n.name} reads {i}, which is not a node")
    if not any(n.attr["script_line"].s.startswith(b"script.lua:") for n in g.node):
        fail("no node carries its script line")
    got = scalars(train, "batch_")
    if batches and [s for s, _ in got.get("batch_loss", [])] != list(range(1, batches + 1)):
        fail(f"batch_loss steps {[s for s, _ in got.get('batch_loss', [])]}, want 1..{batches}")
    if not batches and got:
        fail(f"batch scalars {list(got)} with update_freq='epoch'")
    print("ok")


def keras_weight_images(w):
    """Keras 2's TensorBoard._log_weight_as_image in numpy: the images a
    weight is logged as (at most tf.summary.image's 3), uint8 as
    tf.image.convert_image_dtype(saturate=True) makes them."""
    w = np.squeeze(w)
    if w.ndim == 1:
        imgs = w.reshape(1, w.shape[0], 1)
    elif w.ndim == 2:
        imgs = (w.T if w.shape[0] > w.shape[1] else w)[None]
    elif w.ndim == 3:
        imgs = np.transpose(w, (2, 0, 1))
    else:
        return []
    scaled = np.clip(imgs.astype(np.float32) * np.float32(255.5), 0, 255)
    return list(scaled.astype(np.uint8)[:3])


def tb_images(args):
    """write_images: every weight's images at every epoch, tags as TF's
    image summary names them, the PNGs (decoded by PIL) equal to
    keras_weight_images of the final weights at the last epoch."""
    import importlib
    import io
    from PIL import Image
    sys.path.insert(0, args[0])
    pb2 = importlib.import_module("tensorboard_pb2")
    events, final, epochs = tb_events(args[1] + "/train", pb2), safetensors(args[2]), int(args[3])
    got = {}
    for e in events:
        for v in (e.summary.value if e.WhichOneof("what") == "summary" else []):
            if v.WhichOneof("value") == "image":
                got.setdefault(v.tag, []).append((e.step, v.image))
    want_tags = set()
    for name, w in final.items():
        imgs = keras_weight_images(w)
        base = name.replace(":", "_") + "/image"
        for k, want in enumerate(imgs):
            tag = f"{base}/{k}"
            want_tags.add(tag)
            if [s for s, _ in got.get(tag, [])] != list(range(epochs)):
                fail(f"{tag} at steps {[s for s, _ in got.get(tag, [])]}, want 0..{epochs - 1}")
            im = got[tag][-1][1]
            png = Image.open(io.BytesIO(im.encoded_image_string))
            if (im.height, im.width, im.colorspace) != (*want.shape, 1) or png.mode != "L" or png.size != want.shape[::-1]:
                fail(f"{tag}: {im.height}x{im.width} colorspace {im.colorspace}, PNG {png.mode} {png.size}; want {want.shape}")
            if not np.array_equal(np.asarray(png), want):
                fail(f"{tag}: pixels {np.asarray(png).ravel()[:8]} != {want.ravel()[:8]}")
    if set(got) != want_tags:
        fail(f"image tags {sorted(got)} != {sorted(want_tags)}")
    if not any(np.asarray(Image.open(io.BytesIO(v[-1][1].encoded_image_string))).any() for v in got.values()):
        fail("every image is black")
    print(len(want_tags))


if __name__ == "__main__":
    commands = {"h5-layout": h5_layout, "h5-write": h5_write, "h5-matches": h5_matches,
                "model-check": model_check, "model-write": model_write, "config-edit": config_edit, "layer-configs": layer_configs, "png-curves": png_curves,
                "png-grid": png_grid, "csv-check": csv_check, "checkpoint-check": checkpoint_check,
                "complete-files": complete_files, "tb-check": tb_check,
                "tb-images": tb_images}
    commands[sys.argv[1]](sys.argv[2:])
