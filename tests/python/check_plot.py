"""Checks what scripts/plot_metrics.py made of a metrics file.

  check_plot.py METRICS.jsonl PNG

The PNG is a real PNG of the figure's size; the figure built from the same metrics has the four
panels in order, each drawing data from the file (train and eval loss, throughput, the four
stacked step-time parts plus the wall step, learning rate). Exits 1 on failure.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import plot_metrics  # noqa: E402


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def main():
    metrics, png = sys.argv[1], sys.argv[2]
    with open(png, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        fail(f"{png} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    if (width, height) != (1200, 800):
        fail(f"{png} is {width}x{height}, expected 1200x800 (12x8 in at 100 dpi)")

    train, evals = plot_metrics.read_metrics(metrics)
    fig = plot_metrics.build_figure(train, evals)
    titles = [ax.get_title() for ax in fig.axes]
    if titles != list(plot_metrics.PANELS):
        fail(f"panels {titles}, expected {list(plot_metrics.PANELS)}")
    loss, tput, time, lr = fig.axes
    steps = [r["step"] for r in train]
    if len(loss.lines) != 2 or list(loss.lines[1].get_xdata()) != [r["step"] for r in evals]:
        fail("the loss panel lacks the train curve or the evaluation points")
    if list(tput.lines[0].get_ydata()) != [r["samples_per_s"] for r in train]:
        fail("the throughput panel does not plot samples_per_s")
    if len(time.collections) != 4 or list(time.lines[0].get_xdata()) != steps:
        fail(f"the step-time panel has {len(time.collections)} stacked parts, expected 4")
    if list(lr.lines[0].get_ydata()) != [r["lr"] for r in train]:
        fail("the learning-rate panel does not plot lr")
    print(f"PASS: {png} ({width}x{height}) with panels {titles}; {len(train)} training "
          f"records, {len(evals)} evaluations")


if __name__ == "__main__":
    main()
