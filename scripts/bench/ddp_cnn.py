"""The PyTorch peer of scripts/bench/scaling: the same CNN as Kiln's `cnn` model (conv3x3 32,
ReLU, max-pool 2, conv3x3 64, ReLU, max-pool 2, linear 3136->128, ReLU, dropout, linear 10) on
Fashion-MNIST, trained data-parallel with DistributedDataParallel over gloo on the CPU.

Measures, on rank 0, samples/s and the communication the step waits for after backward: with
overlap on, DDP reduces buckets from its autograd hooks and backward() returns once all have
finished, so the exposed wait is backward's return minus the last bucket's hook call (a timing
comm hook doing what DDP's default hook does); with overlap off, gradients are computed under
no_sync() and one all-reduce of the flattened gradients follows, timed whole.
Run with /usr/bin/python3 (PyTorch 1.13). Prints one `ddp:` line with key=value pairs.
"""
import argparse
import gzip
import os
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP


def load_images(path, labels_path):
    with gzip.open(path, "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(labels_path, "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    # The normalisation Kiln's loader applies (core/data/fashion_mnist.cc).
    x = (torch.from_numpy(images.astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    return x, torch.from_numpy(labels.astype(np.int64))


def make_cnn(dropout):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128, 10))


def worker(rank, args, init_file):
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank,
                            world_size=args.np)
    world = args.np
    x, y = load_images(os.path.join(args.data, "train-images-idx3-ubyte.gz"),
                       os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    torch.manual_seed(1)
    model = make_cnn(args.dropout)
    last_ready = [0.0]
    if args.overlap:
        model = DDP(model, bucket_cap_mb=25)

        def timed_allreduce(state, bucket):
            last_ready[0] = time.perf_counter()
            buf = bucket.buffer().div_(world)
            fut = dist.all_reduce(buf, async_op=True).get_future()
            return fut.then(lambda f: f.value()[0])

        model.register_comm_hook(None, timed_allreduce)
    else:
        # The same starting weights everywhere, as DDP would broadcast them.
        for p in model.parameters():
            dist.broadcast(p.data, 0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    micro = args.global_batch // world
    gen = torch.Generator().manual_seed(1)
    order = torch.randperm(x.shape[0], generator=gen)

    total = wait_total = 0.0
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        start = (step * args.global_batch + rank * micro) % (x.shape[0] - micro)
        idx = order[start:start + micro]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(xb), yb)
        if args.overlap:
            loss.backward()
            t_back = time.perf_counter()
            waited = max(0.0, t_back - last_ready[0]) if world > 1 else 0.0
        else:
            loss.backward()
            t_back = time.perf_counter()
            if world > 1:
                grads = [p.grad for p in model.parameters()]
                flat = torch.cat([g.reshape(-1) for g in grads])
                dist.all_reduce(flat)
                flat.div_(world)
                offset = 0
                for g in grads:
                    g.copy_(flat[offset:offset + g.numel()].view_as(g))
                    offset += g.numel()
            waited = time.perf_counter() - t_back
        opt.step()
        if step >= args.warmup:
            total += time.perf_counter() - t0
            wait_total += waited
    if rank == 0:
        sps = args.steps * args.global_batch / total
        print("ddp: np=%d overlap=%s samples_per_s=%.1f step_ms=%.2f comm_wait_ms=%.2f "
              "comm_share=%.4f threads=%d" % (world, "on" if args.overlap else "off", sps,
                                             1000 * total / args.steps,
                                             1000 * wait_total / args.steps,
                                             wait_total / total, args.threads), flush=True)
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--global-batch", type=int, default=64)
    ap.add_argument("--overlap", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    if args.threads == 0:
        args.threads = max(1, (os.cpu_count() or 1) // args.np)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(args, os.path.join(tmp, "init")), nprocs=args.np, join=True)


if __name__ == "__main__":
    main()
