"""Loads a Kiln model.safetensors into PyTorch (1.13, which has no safetensors package: the file is
parsed here with struct + json + numpy), rebuilds the MLP or CNN with torch.nn layers, runs the
inputs Kiln saved, and compares the logits with Kiln's. Exit status 0 when they match.

usage: safetensors_logits.py MODEL.safetensors IO.safetensors [MODEL2 IO2 ...]
Each IO.safetensors holds x (N, ...), logits (N, classes) and Kiln's model config in its metadata.
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32,
          "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if (8 + n) % 8 != 0:
        sys.exit(f"{path}: data section does not start 8-byte aligned")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e_ = e["data_offsets"]
        if b != end:
            sys.exit(f"{path}: tensor {name} starts at {b}, expected {end}")
        end = e_
        arr = np.frombuffer(data[b:e_], dtype=np.dtype(DTYPES[e["dtype"]]).newbyteorder("<"))
        tensors[name] = arr.reshape(e["shape"]).copy()
    if end != len(data):
        sys.exit(f"{path}: {len(data) - end} trailing bytes after the tensors")
    return tensors, meta


def build(cfg, sample_shape, classes):
    """The same stack as Kiln's models/classifiers.cc, layer for layer, so indices match."""
    m = cfg["model"]
    layers = []
    if m["name"] == "mlp":
        layers.append(torch.nn.Flatten())
        width = int(np.prod(sample_shape))
        for h in m["hidden"]:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            if m["dropout"] > 0:
                layers.append(torch.nn.Dropout(m["dropout"]))
            width = h
        layers.append(torch.nn.Linear(width, classes))
    elif m["name"] == "cnn":
        c, h, w = sample_shape
        k = m["kernel"]
        for out in m["channels"]:
            layers += [torch.nn.Conv2d(c, out, k, stride=1, padding=k // 2), torch.nn.ReLU(),
                       torch.nn.MaxPool2d(2, 2)]
            c, h, w = out, h // 2, w // 2
        layers += [torch.nn.Flatten(), torch.nn.Linear(c * h * w, m["fc"]), torch.nn.ReLU()]
        if m["dropout"] > 0:
            layers.append(torch.nn.Dropout(m["dropout"]))
        layers.append(torch.nn.Linear(m["fc"], classes))
    else:
        sys.exit(f"model {m['name']} is not rebuilt by this script")
    return torch.nn.Sequential(*layers)


def check(model_path, io_path):
    weights, wmeta = read_safetensors(model_path)
    io, meta = read_safetensors(io_path)
    cfg = json.loads(meta["config"])
    x, kiln_logits = io["x"], io["logits"]
    model = build(cfg, x.shape[1:], kiln_logits.shape[1])
    state = {}
    for name, value in weights.items():
        if not name.startswith("layers."):
            sys.exit(f"unexpected tensor name {name}")
        state[name[len("layers."):]] = torch.from_numpy(value)
    model.load_state_dict(state, strict=True)  # same names, same shapes, nothing left over
    model.eval()
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()
    diff = np.abs(torch_logits - kiln_logits)
    # fp32 with different summation orders (BLAS, im2col vs PyTorch's conv): far under 1e-4.
    tol = 1e-5 + 1e-4 * np.abs(kiln_logits)
    worst = float(diff.max())
    print(f"{wmeta.get('model', '?')}: {len(weights)} tensors, {x.shape[0]} inputs, max |diff| "
          f"{worst:.3g}, predictions agree on {int((torch_logits.argmax(1) == kiln_logits.argmax(1)).sum())}"
          f"/{x.shape[0]}")
    if np.any(np.isnan(torch_logits)) or np.any(diff > tol):
        sys.exit(f"{model_path}: logits differ beyond 1e-5 + 1e-4|ref|: worst {worst}")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit(__doc__)
    for i in range(0, len(args), 2):
        check(args[i], args[i + 1])


if __name__ == "__main__":
    main()
