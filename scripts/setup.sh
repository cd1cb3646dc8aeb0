#!/usr/bin/env bash
# Installs every Debian package that Kiln's build, tests, examples and benchmarks need.
# Safe to run any number of times: apt-get skips what is already installed.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates
  # core libraries
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libopenblas-dev libopenblas0-openmp zlib1g-dev libxxhash-dev
  # tests
  libgtest-dev libgmock-dev
  # distributed
  openmpi-bin libopenmpi-dev
  # coordinator
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libsqlite3-dev libssl-dev
  openssl  # test certificates for the coordinator's TLS tests
  # data shipped as packages
  dataset-fashion-mnist bible-kjv
  # parity tests, peer benchmarks and plots (never a runtime dependency)
  python3 python3-torch python3-numpy python3-matplotlib
  # multi-node tests with network namespaces
  iproute2 procps psmisc
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
