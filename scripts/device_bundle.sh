#!/usr/bin/env bash
# Packs what a GPU machine needs to run this build's GPU checks into .carry/ (git-ignored), to be
# carried there with the working tree (64 MiB limit): the kiln and test binaries, every Debian
# shared library they load except glibc and the GPU libraries, all in one xz tarball, and the
# Fashion-MNIST files the training checks read. NCCL, cuDNN and cuBLAS are NOT bundled: the GPU
# machine's PyTorch ships them (its `nvidia` packages); scripts/device_check.sh points
# LD_LIBRARY_PATH there.
# Usage: scripts/build.sh && scripts/device_bundle.sh [BUILD_DIR]     (then run device_check.sh there)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
out="$root/.carry"
bins=("$build/launcher/kiln" "$build/tests/kiln_unit_tests")
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "device_bundle: $b missing; run scripts/build.sh" >&2; exit 1; }; done
ldd "${bins[0]}" | grep -q libcudnn ||
  { echo "device_bundle: $build was built without the CUDA backend (nvcc not found?)" >&2; exit 1; }

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp "${bins[@]}" "$stage/bin/"
# Libraries the binaries load, minus the C runtime (the GPU machine's own, newer glibc serves) and
# the GPU libraries (taken from PyTorch's packages there, matched to its driver).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|librt\.so|libdl\.so|libnccl|libcudnn|libcublas|libcudart|libcuda\.so)'
for b in "${bins[@]}"; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r name path; do
    [[ "$name" =~ $skip ]] && continue
    cp -L "$path" "$stage/lib/$name"
  done
mkdir -p "$out"
tar -C "$stage" -cJf "$out/kiln-device.tar.xz" bin lib
rm -rf "$out/fashion-mnist"
cp -r /usr/share/datasets/fashion-mnist "$out/fashion-mnist"
du -sh "$out"/* | sed 's/^/device_bundle: /'
echo "device_bundle: carry .carry with the call (run: scripts/device_check.sh)"
