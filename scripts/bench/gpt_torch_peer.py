"""The PyTorch 1.13 side of scripts/bench/gpt_vs_pytorch: trains the same GPT as Kiln
(tests/parity/torch_gpt.py) with the same batch, threads, clipping and AdamW on windows of the
same token shard, and prints `torch_tokens_per_s=<float>` measured after the warmup steps.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "tests", "parity"))
import torch_gpt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for k in ("n_layer", "n_head", "n_embd", "seq_len", "batch", "steps", "warmup", "threads"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, required=True)
    ap.add_argument("--shard", required=True, help="a Kiln token shard (train-00000.tok)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    tokens = np.fromfile(a.shard, dtype=np.uint8, offset=32).astype(np.int64)
    model = torch_gpt.Gpt(a.n_layer, a.n_head, a.n_embd, a.seq_len, 256)
    opt = torch.optim.AdamW(torch_gpt.param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95))
    rng = np.random.default_rng(1)
    T = a.seq_len
    start = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        offs = rng.integers(0, len(tokens) - T - 1, size=a.batch)
        w = torch.from_numpy(np.stack([tokens[o:o + T + 1] for o in offs]))
        opt.zero_grad(set_to_none=True)
        _, loss = model(w[:, :-1], w[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - start
    print(f"torch: {a.steps} steps of {a.batch}x{T} tokens in {seconds:.2f}s, last loss "
          f"{loss.item():.4f}")
    print(f"torch_tokens_per_s={a.steps * a.batch * T / seconds:.1f}")


if __name__ == "__main__":
    main()
