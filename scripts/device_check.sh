#!/usr/bin/env bash
# Every GPU check of Kiln in one run on a GPU machine (one H100/H200), in a few minutes, with a
# summary table last:
#   1. the GPU op suite (every op on the GPU against the CPU reference: the `cuda/*` tests),
#   2. compute-sanitizer (memcheck) over the same tests,
#   3. MLP and CNN through `kiln train` on the GPU vs the CPU, same seed and steps: test accuracy
#      within 1 point (the CNN also with an NCCL world of one, and in bf16),
#   4. scripts/bench/gpu_step: Kiln vs the machine's own PyTorch, CNN and MLP.
# Build here (x86-64, nvcc present): scripts/build.sh && scripts/device_bundle.sh; then carry
# `.carry` and run this script there. The bundle holds the binaries and Debian's shared libraries;
# NCCL, cuDNN and cuBLAS come from the GPU machine's PyTorch `nvidia` packages (LD_LIBRARY_PATH).
# Output: $OUT (or ./device-check) holds the logs; the table is printed last.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${OUT:-$root/device-check}"; mkdir -p "$out"
carry="$root/.carry"
py="${KILN_TORCH_PYTHON:-python3}"
steps="${KILN_CHECK_STEPS:-800}"
filter="${KILN_GPU_TEST_FILTER:-cuda/*}"
declare -a rows
row() { rows+=("$(printf '%-34s %-6s %s' "$1" "$2" "$3")"); }
finish() {
  echo; echo "== Kiln device check ($(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1))"
  printf '%-34s %-6s %s\n' check status detail
  printf '%s\n' "${rows[@]}"
}
trap finish EXIT

# -- the carried build and the GPU libraries of this machine's PyTorch ---------------------------
[ -f "$carry/kiln-device.tar.xz" ] || { row bundle FAIL "no .carry/kiln-device.tar.xz: run scripts/device_bundle.sh here and carry .carry"; exit 1; }
dev=/tmp/kiln-device; rm -rf "$dev"; mkdir -p "$dev"
tar -C "$dev" -xJf "$carry/kiln-device.tar.xz"
site=$($py -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
gpu_libs=$(find "$site/nvidia" -name 'libnccl.so*' -o -name 'libcudnn.so*' -o -name 'libcublasLt.so*' 2>/dev/null |
           xargs -r -n1 dirname | sort -u | paste -sd:)
export LD_LIBRARY_PATH="$dev/lib:$gpu_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kiln="$dev/bin/kiln"; unit="$dev/bin/kiln_unit_tests"
missing=$(ldd "$kiln" "$unit" | grep 'not found' | sort -u)
if [ -n "$missing" ]; then row libraries FAIL "$(echo "$missing" | awk '{print $1}' | paste -sd' ')"; exit 1; fi
row libraries ok "GPU libs from $gpu_libs"
export KILN_SET="data.path=$carry/fashion-mnist;checkpoint.dir="
nvidia-smi > "$out/nvidia-smi.txt" 2>&1

# -- 1, 2: the GPU op suite, then under compute-sanitizer ----------------------------------------
"$unit" --gtest_filter="$filter" > "$out/gpu_tests.log" 2>&1
rc=$?
passed=$(grep -c '^\[       OK' "$out/gpu_tests.log" || true)
skipped=$(grep -c '^\[  SKIPPED' "$out/gpu_tests.log" || true)
if [ "$rc" -ne 0 ]; then
  row "gpu op suite" FAIL "$(grep -m3 -E '^\[  FAILED|Failure' "$out/gpu_tests.log" | paste -sd' ' | cut -c1-120)"
elif [ "$passed" -eq 0 ] || [ "$skipped" -ne 0 ]; then
  # On a GPU machine nothing may skip: a skip means the GPU was not usable.
  row "gpu op suite" FAIL "$passed passed, $skipped skipped: $(grep -m1 -A1 SKIPPED "$out/gpu_tests.log" | tail -1 | cut -c1-100)"
else
  row "gpu op suite" ok "$passed passed ($filter)"
fi
tail -3 "$out/gpu_tests.log"
if command -v compute-sanitizer >/dev/null; then
  if timeout 240 compute-sanitizer --tool memcheck --error-exitcode 99 "$unit" --gtest_filter="$filter" \
       --gtest_brief=1 > "$out/sanitizer.log" 2>&1; then
    row "compute-sanitizer memcheck" ok "$(grep -m1 'ERROR SUMMARY' "$out/sanitizer.log")"
  else
    row "compute-sanitizer memcheck" FAIL "$(grep -m1 -E 'ERROR SUMMARY|Invalid|error' "$out/sanitizer.log" | cut -c1-120)"
  fi
else
  row "compute-sanitizer memcheck" SKIP "compute-sanitizer not on PATH"
fi

# -- 3: training on the GPU vs the CPU, same seed ------------------------------------------------
accuracy() {  # log -> test accuracy in percent, from the `done:` line
  sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$1" | tail -1
}
train() {  # name config device extra...
  local name=$1 cfg=$2 device=$3; shift 3
  "$kiln" train --config "$root/configs/$cfg.yaml" --set train.device="$device" \
    --set train.steps="$steps" --set train.eval_every=0 --set metrics.path="$out/$name.jsonl" \
    "$@" > "$out/$name.log" 2>&1
  accuracy "$out/$name.log"
}
for model in mlp cnn; do
  cpu=$(train "${model}_cpu" "${model}_fashion" cpu --set train.threads=8)
  gpu=$(train "${model}_gpu" "${model}_fashion" cuda)
  ok=$($py -c "print('ok' if '$gpu' and '$cpu' and abs(float('$gpu') - float('$cpu')) <= 1.0 else 'FAIL')" 2>/dev/null || echo FAIL)
  row "$model train gpu vs cpu ($steps st)" "$ok" "test acc gpu ${gpu:-none}% cpu ${cpu:-none}%"
done
nccl=$(train cnn_gpu_nccl cnn_fashion cuda --set comm.backend=nccl)
ok=$([ -n "$nccl" ] && grep -q 'NCCL' "$out/cnn_gpu_nccl.log" && echo ok || echo FAIL)
row "cnn gpu, NCCL world of one" "$ok" "test acc ${nccl:-none}% ($(grep -m1 -o 'NCCL [0-9.]*' "$out/cnn_gpu_nccl.log"))"
bf16=$(train cnn_gpu_bf16 cnn_fashion cuda --set train.precision=bf16)
ok=$($py -c "print('ok' if '$bf16' and abs(float('$bf16') - float('${cpu:-0}')) <= 1.5 else 'FAIL')" 2>/dev/null || echo FAIL)
row "cnn gpu bf16" "$ok" "test acc ${bf16:-none}%"
fp16=$(train cnn_gpu_fp16 cnn_fashion cuda --set train.precision=fp16)
ok=$($py -c "print('ok' if '$fp16' and abs(float('$fp16') - float('${cpu:-0}')) <= 1.5 else 'FAIL')" 2>/dev/null || echo FAIL)
row "cnn gpu fp16 (loss scaling)" "$ok" "test acc ${fp16:-none}%, $(grep -c 'overflowed' "$out/cnn_gpu_fp16.log") skipped steps"

# -- 4: the benchmark -----------------------------------------------------------------------------
KILN="$kiln" KILN_FASHION_MNIST="$carry/fashion-mnist" bash "$root/scripts/bench/gpu_step" 300 > "$out/gpu_step.log" 2>&1
cat "$out/gpu_step.log"
res=$(grep '^result:' "$out/gpu_step.log" | tail -1)
row "bench gpu_step" "$([ -n "$res" ] && echo ok || echo FAIL)" "${res:-$(tail -1 "$out/gpu_step.log")}"
