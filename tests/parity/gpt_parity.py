"""Parity of Kiln's GPT with the same model in PyTorch 1.13 (torch_gpt.py).

Runs the Kiln driver (kiln_gpt_parity), which writes its initial weights, one batch with its
logits, loss and gradients, and the losses of 50 AdamW steps; then does the same in PyTorch from
the same weights and batches and compares:
  - logits, loss and every parameter gradient: |kiln - torch| <= 1e-5 * |torch| + 1e-5 * max|torch|
    per tensor (float32: the max term covers elements near zero, whose relative error is noise);
  - the 50 losses: |kiln - torch| <= 1e-4 * |torch|.
Exits 0 on success, 1 on a mismatch, 77 (skipped) when torch cannot be imported.
Usage: /usr/bin/python3 gpt_parity.py --kiln-dump PATH/kiln_gpt_parity [--workdir DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: PyTorch/numpy cannot be imported here ({e}); install python3-torch and run "
          "with /usr/bin/python3")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_gpt  # noqa: E402

GRAD_RTOL = 1e-5
LOSS_RTOL = 1e-4


def compare(name, kiln, ref, rtol, tensor_scale=True):
    kiln = np.asarray(kiln, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if kiln.shape != ref.shape:
        return False, f"{name}: shape {kiln.shape} vs {ref.shape}"
    if not np.all(np.isfinite(kiln)):
        return False, f"{name}: non-finite values in Kiln's result"
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = np.abs(kiln - ref)
    allowed = rtol * np.abs(ref) + (rtol * scale if tensor_scale else 0.0)
    worst = float(np.max(err / np.maximum(allowed, 1e-300))) if ref.size else 0.0
    rel = float(np.max(err) / scale) if scale > 0 else float(np.max(err))
    ok = bool(np.all(err <= allowed))
    return ok, f"{name:34s} max|diff|/max|ref| {rel:9.2e}  worst diff/allowed {worst:6.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln-dump", required=True, help="the kiln_gpt_parity binary")
    ap.add_argument("--workdir", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    with tempfile.TemporaryDirectory(prefix="kiln-parity-") as tmp:
        work = args.workdir or tmp
        os.makedirs(work, exist_ok=True)
        subprocess.run([args.kiln_dump, work], check=True)
        init, _ = torch_gpt.read_safetensors(os.path.join(work, "init.safetensors"))
        step0, _ = torch_gpt.read_safetensors(os.path.join(work, "step0.safetensors"))
        train, meta = torch_gpt.read_safetensors(os.path.join(work, "train.safetensors"))

    dims = {k: int(meta[k]) for k in ("n_layer", "n_head", "n_embd", "seq_len", "vocab")}
    model = torch_gpt.Gpt(**dims)
    torch_gpt.load_kiln_weights(model, init)
    failures = []
    lines = []

    # One forward/backward from the same weights and batch.
    x = torch.from_numpy(step0["x"].astype(np.int64))
    y = torch.from_numpy(step0["y"].astype(np.int64))
    logits, loss = model(x, y)
    loss.backward()
    checks = [("logits", step0["logits"], logits.detach().numpy()),
              ("loss", step0["loss"], loss.item())]
    for name, p in model.named_parameters():
        checks.append(("grad." + torch_gpt.to_kiln_name(name),
                       step0["grad." + torch_gpt.to_kiln_name(name)], p.grad.numpy()))
    for name, k, r in checks:
        ok, line = compare(name, k, r, GRAD_RTOL)
        lines.append(("ok   " if ok else "FAIL ") + line)
        if not ok:
            failures.append(name)

    # 50 AdamW steps from the same initialisation over the same batches.
    model = torch_gpt.Gpt(**dims)
    torch_gpt.load_kiln_weights(model, init)
    wd = float(meta["weight_decay"])
    opt = torch.optim.AdamW(torch_gpt.param_groups(model, wd), lr=1.0,
                            betas=(float(meta["beta1"]), float(meta["beta2"])),
                            eps=float(meta["eps"]), weight_decay=wd)
    batches = torch.from_numpy(train["batches"].astype(np.int64))
    losses = []
    for step in range(batches.shape[0]):
        b = batches[step]
        opt.zero_grad(set_to_none=True)
        _, loss = model(b[:, :-1], b[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(meta["clip_norm"]))
        for g in opt.param_groups:
            g["lr"] = float(train["lr"][step])
        opt.step()
        losses.append(loss.item())
    ok, line = compare("loss over 50 AdamW steps", train["loss"], np.array(losses), LOSS_RTOL,
                       tensor_scale=False)
    lines.append(("ok   " if ok else "FAIL ") + line)
    if not ok:
        failures.append("training losses")
    lines.append(f"     losses: kiln {train['loss'][0]:.6f} -> {train['loss'][-1]:.6f}, "
                 f"torch {losses[0]:.6f} -> {losses[-1]:.6f}")

    print("\n".join(lines))
    if failures:
        print(f"parity FAILED: {', '.join(failures)}")
        return 1
    print(f"parity ok: logits, loss and {len(checks) - 2} gradients within {GRAD_RTOL} relative; "
          f"{len(losses)} AdamW losses within {LOSS_RTOL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
