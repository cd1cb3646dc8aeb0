#!/usr/bin/env bash
# Quick start, the main job: installs, builds, and trains the CNN on Fashion-MNIST (the embedded
# default configuration) under `kiln launch`, which starts a coordinator, runs the job, and
# restarts it from its last checkpoint if a rank fails. Each run gets its own folder under runs/
# (coordinator state, checkpoints, metrics). Extra arguments go to `kiln launch`
# (e.g. --set train.steps=500, --np 2 --set train.micro_batch=32, --config configs/mlp_fashion.yaml).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
cd "$root"
run="$root/runs/quickstart-$(date +%Y%m%d-%H%M%S)"
exec "$build/launcher/kiln" launch --run-dir "$run" --set checkpoint.dir="$run/ckpt" \
  --set checkpoint.every_steps=500 --set metrics.path="$run/metrics.jsonl" "$@"
