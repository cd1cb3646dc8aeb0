#!/usr/bin/env bash
# Quick start, the tests: installs, builds, and runs every test with ctest (unit, multi-rank and
# integration; GPU tests skip without a GPU). Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
cd "$build"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@"
