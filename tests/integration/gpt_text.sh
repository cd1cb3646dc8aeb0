#!/usr/bin/env bash
# End to end for language models: `kiln data prepare-text` on a small text, a short GPT run that
# must learn (final validation loss well under log(256) = 5.55 nats), the final weights it
# checkpoint holds, `kiln sample` from it (deterministic for a seed, also with --config), and a damaged
# shard refused with its file name. Given KILN (the binary); cleans up after itself.
set -euo pipefail
: "${KILN:?KILN must name the kiln binary}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ~100 KB of repetitive, learnable text.
for i in $(seq 1 400); do
  echo "And it came to pass on day $((i % 7)), that the shepherd counted $((i % 13)) sheep."
  echo "Then the shepherd said unto them, Behold, the flock is $((i % 5)) and the field is wide."
  echo "And they went forth into the field, and the evening and the morning were day $((i % 7))."
done > "$tmp/text.txt"

"$KILN" data prepare-text "$tmp/text.txt" --out "$tmp/shards" --val-fraction 0.1
[ -f "$tmp/shards/train-00000.tok" ] && [ -f "$tmp/shards/val-00000.tok" ] || fail "no shards"

cat > "$tmp/gpt.yaml" <<YAML
model: {name: gpt, n_layer: 2, n_head: 2, n_embd: 32, seq_len: 32, vocab: 256, dropout: 0.1}
data: {name: text, path: $tmp/shards, seed: 1}
train: {steps: 120, global_batch: 16, micro_batch: 8, eval_every: 60, eval_batch: 16, seed: 1,
        threads: 1}
optim: {name: adamw, lr: 3.0e-3, beta2: 0.95, weight_decay: 0.1, warmup_steps: 10,
        clip_norm: 1.0}
checkpoint: {dir: $tmp/ckpt}
metrics: {path: $tmp/metrics.jsonl, log_every: 50}
YAML
"$KILN" train --config "$tmp/gpt.yaml" > "$tmp/train.log" 2>&1 || {
  cat "$tmp/train.log"
  fail "kiln train failed"
}
final=$(grep '"final":true' "$tmp/metrics.jsonl" | sed 's/.*"eval_loss":\([0-9.e+-]*\).*/\1/')
echo "final validation loss: $final nats/token"
awk -v l="$final" 'BEGIN {exit !(l < 2.5)}' || fail "validation loss $final did not fall below 2.5"
"$KILN" ckpt verify "$tmp/ckpt" > /dev/null || fail "the run left no checkpoint that verifies"

a=$("$KILN" sample --checkpoint "$tmp/ckpt" --prompt "And the " -n 60 --seed 3 --top-k 5)
b=$("$KILN" sample --checkpoint "$tmp/ckpt" --prompt "And the " -n 60 --seed 3 --top-k 5 \
  --config "$tmp/gpt.yaml")
echo "sample: $a"
[ "$a" = "$b" ] || fail "the same seed gave different samples: '$a' vs '$b'"
[[ "$a" == "And the "* ]] || fail "the sample does not continue the prompt"
[ "${#a}" -ge 60 ] || fail "the sample is too short (${#a} bytes)"

# A truncated shard is refused, naming the file.
head -c 100 "$tmp/shards/val-00000.tok" > "$tmp/cut.tok"
mv "$tmp/cut.tok" "$tmp/shards/val-00000.tok"
if "$KILN" train --config "$tmp/gpt.yaml" --set train.steps=1 --set optim.warmup_steps=0 > "$tmp/bad.log" 2>&1; then
  fail "a truncated shard was accepted"
fi
grep -q "val-00000.tok is truncated" "$tmp/bad.log" || {
  cat "$tmp/bad.log"
  fail "the error does not name the truncated shard"
}
echo "ok"
