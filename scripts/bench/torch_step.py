"""PyTorch peer for scripts/bench/step_vs_pytorch (CPU, Debian's PyTorch 1.13 under
/usr/bin/python3) and scripts/bench/gpu_step (--device cuda, the GPU machine's own PyTorch): trains
the same MLP or CNN as Kiln's configs on Fashion-MNIST (same shapes, batch, AdamW, clipping,
dropout) and prints samples/s."""
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
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.device == "cuda":
        # Kiln's fp32 GEMMs use TF32 on the GPU; the peer is given the same.
        torch.backends.cuda.matmul.allow_tf32 = a.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = a.precision != "fp32"
    torch.manual_seed(1)
    images = read_idx(a.data + "/train-images-idx3-ubyte.gz")
    labels = read_idx(a.data + "/train-labels-idx1-ubyte.gz")
    x_all = ((torch.from_numpy(images.astype(np.float32)) / 255.0 - 0.2860) / 0.3530).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.int64))
    x_all, y_all = x_all.to(dev), y_all.to(dev)
    model = build(a.model, [int(v) for v in a.hidden.split(",")],
                  [int(v) for v in a.channels.split(",")], a.fc, a.dropout).to(dev)
    # Same optimizer split as Kiln: weight decay on weights, not on biases.
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(x_all.shape[0]).to(dev)
    autocast = a.device == "cuda" and a.precision == "bf16"

    def step(i):
        idx = perm[(i * a.batch) % (x_all.shape[0] - a.batch):][:a.batch]
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(a.device, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    warm = max(10, a.steps // 10)
    for i in range(warm):
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(warm + i)
    sync()
    dt = time.perf_counter() - t0
    print(f"samples_per_s={a.steps * a.batch / dt:.1f}")


if __name__ == "__main__":
    main()
