#!/usr/bin/python3
"""Plots a Kiln metrics file (metrics.path, JSON lines) into one PNG with four panels: loss
(train windows and evaluations), throughput, the step time split into compute / comm wait /
optimizer / data, and the learning rate.

  /usr/bin/python3 scripts/plot_metrics.py runs/x/metrics.jsonl [--out plot.png] [--title T]

Uses Debian's python3-matplotlib (scripts/setup.sh), without a display.
"""
import argparse
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = ("Loss", "Throughput", "Step time breakdown", "Learning rate")
# The trainer's split of a step (launcher/trainer.cc); what is left of step_ms is the rest of
# the loop (logging, checkpoint hand-off, evaluation).
BREAKDOWN = (("compute_ms", "compute (forward/backward)"), ("comm_wait_ms", "comm wait"),
             ("optim_ms", "optimizer"), ("data_ms", "data"))


def number(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def read_metrics(path):
    """Training-window records and evaluation records, each sorted by step."""
    train, evals = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not a JSON line ({e})")
            if "samples_per_s" in r:
                train.append(r)
            elif "eval_loss" in r:
                evals.append(r)
    if not train:
        sys.exit(f"{path} holds no training records (lines with samples_per_s): is it a Kiln "
                 "metrics file?")
    return sorted(train, key=lambda r: r["step"]), sorted(evals, key=lambda r: r["step"])


def series(records, key):
    pts = [(r["step"], r[key]) for r in records if number(r.get(key))]
    return [p[0] for p in pts], [p[1] for p in pts]


def build_figure(train, evals, title=""):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    loss_ax, tput_ax, time_ax, lr_ax = axes.flat

    x, y = series(train, "loss")
    loss_ax.plot(x, y, label="train (mean over the logging window)")
    x, y = series(evals, "eval_loss")
    if x:
        loss_ax.plot(x, y, "o--", label="evaluation")
    loss_ax.set_ylabel("cross-entropy")
    loss_ax.legend()

    x, y = series(train, "samples_per_s")
    tput_ax.plot(x, y, color="tab:green")
    tput_ax.set_ylabel("samples / s")
    tput_ax.set_ylim(bottom=0)

    steps = [r["step"] for r in train]
    parts = [[r.get(k) if number(r.get(k)) else 0.0 for r in train] for k, _ in BREAKDOWN]
    time_ax.stackplot(steps, *parts, labels=[label for _, label in BREAKDOWN], alpha=0.8)
    x, y = series(train, "step_ms")
    time_ax.plot(x, y, "k--", linewidth=1, label="step (wall)")
    time_ax.set_ylabel("ms per step (mean over the logging window)")
    time_ax.set_ylim(bottom=0)
    time_ax.legend(loc="upper right", fontsize="small")

    x, y = series(train, "lr")
    lr_ax.plot(x, y, color="tab:purple")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_ylim(bottom=0)

    for ax, name in zip(axes.flat, PANELS):
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("metrics", help="a metrics.jsonl written by kiln train")
    ap.add_argument("--out", help="PNG to write (default: the metrics path with .png)")
    ap.add_argument("--title", default="", help="figure title (default: the metrics path)")
    a = ap.parse_args()
    out = a.out or (a.metrics.rsplit(".", 1)[0] + ".png")
    train, evals = read_metrics(a.metrics)
    fig = build_figure(train, evals, a.title or a.metrics)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}: {len(fig.axes)} panels: {' | '.join(ax.get_title() for ax in fig.axes)}"
          f" ({len(train)} training records, {len(evals)} evaluations)")


if __name__ == "__main__":
    main()
