#!/usr/bin/env bash
# A flipped byte: `kiln ckpt verify` fails naming the file, `kiln ckpt export` refuses it, and
# `--resume auto` skips that checkpoint with a warning saying why, resumes from the previous
# one, and (training being exact) writes the same bytes again in its place.
set -euo pipefail
: "${KILN:?KILN must name the kiln binary}" "${KILN_SOURCE_DIR:?}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

dir="$work/ckpt"
run=(train -c "$KILN_SOURCE_DIR/configs/mlp_fashion.yaml" --set model.hidden=[64]
     --set train.steps=20 --set optim.warmup_steps=2 --set train.eval_every=0
     --set train.eval_samples=64 --set metrics.path= --set checkpoint.dir="$dir"
     --set checkpoint.every_steps=10 --set checkpoint.keep_last=0)
"$KILN" "${run[@]}" > "$work/first.log" 2>&1 || { cat "$work/first.log"; fail "training failed"; }
"$KILN" ckpt verify "$dir" > "$work/verify0.log" || { cat "$work/verify0.log"; fail "fresh checkpoints do not verify"; }
grep -q "2 of 2 checkpoint(s) verified" "$work/verify0.log" || fail "expected 2 checkpoints"
"$KILN" ckpt ls "$dir" | grep -q "step-00000020 *committed" || fail "ckpt ls does not list step 20"

model="$dir/step-00000020/model.safetensors"
cp "$model" "$work/original.safetensors"
# Flip one bit of one byte in the tensor data (near the end of the file).
off=$(( $(stat -c %s "$model") - 100 ))
byte=$(od -An -tu1 -j "$off" -N1 "$model" | tr -d ' ')
printf "$(printf '\\%03o' $(( byte ^ 1 )))" | dd of="$model" bs=1 seek="$off" conv=notrunc status=none
cmp -s "$model" "$work/original.safetensors" && fail "the byte was not flipped"

if "$KILN" ckpt verify "$dir/step-00000020" > "$work/verify1.log" 2>&1; then
  fail "verify passed a corrupted checkpoint"
fi
grep -q "model.safetensors: checksum mismatch" "$work/verify1.log" \
  || { cat "$work/verify1.log"; fail "verify does not name model.safetensors"; }
"$KILN" ckpt verify "$dir" > /dev/null 2>&1 && fail "verify of the directory passed"
"$KILN" ckpt export "$dir/step-00000020" --out "$work/x.safetensors" > /dev/null 2>&1 \
  && fail "export accepted a corrupted checkpoint"
echo "verify: fails naming model.safetensors"

"$KILN" "${run[@]}" --resume auto > "$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "resume failed"; }
grep -q "skipping checkpoint step-00000020: model.safetensors: checksum mismatch" "$work/resume.log" \
  || { cat "$work/resume.log"; fail "no warning naming the corrupted file"; }
grep -q "resumed from $dir/step-00000010: step 10" "$work/resume.log" \
  || { cat "$work/resume.log"; fail "did not fall back to step 10"; }
"$KILN" ckpt verify "$dir" > /dev/null || fail "the re-saved step 20 does not verify"
cmp "$model" "$work/original.safetensors" || fail "the re-trained step 20 differs from the first"
echo "resume auto: fell back to step 10 and re-created step 20 bit for bit"

"$KILN" ckpt export "$dir" --out "$work/export.safetensors" > "$work/export.log" \
  || fail "export failed"
grep -q "step-00000020 (step 20): 4 tensors" "$work/export.log" || { cat "$work/export.log"; fail "export"; }
echo "export: ok"
