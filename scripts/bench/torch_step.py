"""PyTorch 1.13 peer for scripts/bench/step_vs_pytorch: trains the same MLP or CNN as Kiln's
configs on Fashion-MNIST (same shapes, batch, AdamW, clipping, dropout) and prints samples/s.
Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import gzip
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def build(name, hidden, channels, fc, dropout):
    if name == "mlp":
        layers, width = [nn.Flatten()], 784
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 10))
        return nn.Sequential(*layers)
    layers, c, hw = [], 1, 28
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c, hw = out, hw // 2
    layers += [nn.Flatten(), nn.Linear(c * hw * hw, fc), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(fc, 10))
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["mlp", "cnn"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--channels", default="32,64")
    p.add_argument("--fc", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    images = read_idx(a.data + "/train-images-idx3-ubyte.gz")
    labels = read_idx(a.data + "/train-labels-idx1-ubyte.gz")
    x_all = ((torch.from_numpy(images.astype(np.float32)) / 255.0 - 0.2860) / 0.3530).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.int64))
    model = build(a.model, [int(v) for v in a.hidden.split(",")],
                  [int(v) for v in a.channels.split(",")], a.fc, a.dropout)
    # Same optimizer split as Kiln: weight decay on weights, not on biases.
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(x_all.shape[0])

    def step(i):
        idx = perm[(i * a.batch) % (x_all.shape[0] - a.batch):][:a.batch]
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    warm = max(10, a.steps // 10)
    for i in range(warm):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(warm + i)
    dt = time.perf_counter() - t0
    print(f"samples_per_s={a.steps * a.batch / dt:.1f}")


if __name__ == "__main__":
    main()
