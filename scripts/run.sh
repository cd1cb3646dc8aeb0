#!/usr/bin/env bash
# Quick start, the main job: installs, builds, and trains the CNN on Fashion-MNIST with the
# embedded default configuration. Extra arguments go to `kiln train` (e.g. --set train.steps=500).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
cd "$root"
exec "$build/launcher/kiln" train "$@"
