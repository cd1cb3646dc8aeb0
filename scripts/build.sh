#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh), then configures and builds Kiln into build/
# (or $KILN_BUILD_DIR). Extra arguments go to CMake, e.g. -DKILN_WITH_CUDA=OFF.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build}"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build"
