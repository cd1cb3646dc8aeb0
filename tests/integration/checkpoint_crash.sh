#!/usr/bin/env bash
# Crash safety: a run saving at every step (with KILN_DEBUG_CKPT_SLOW_MS stretching each phase
# of a save, so that kills land inside saves) is killed with SIGKILL at random moments, 20
# times, each time resuming with --resume auto. After every kill: every committed checkpoint
# (a step-N directory with a manifest) verifies, the newest advances, and a resume
# starts from the newest one without skipping anything. Most kills must have hit a save in
# progress (a .tmp directory left behind), else the test proves nothing.
set -euo pipefail
: "${KILN:?KILN must name the kiln binary}" "${KILN_SOURCE_DIR:?}"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A tiny model on a generated text starts in a blink, so the 20 runs spend their time saving.
for i in $(seq 1 100); do
  echo "And it came to pass on day $((i % 7)), that the shepherd counted $((i % 13)) sheep."
done > "$work/text.txt"
"$KILN" data prepare-text "$work/text.txt" --out "$work/shards" --val-fraction 0.1 \
  > "$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; fail "kiln data prepare-text failed"; }
cat > "$work/gpt.yaml" <<YAML
model: {name: gpt, n_layer: 1, n_head: 2, n_embd: 32, seq_len: 16, vocab: 256, dropout: 0.1}
data: {name: text, path: $work/shards, seed: 1}
train: {global_batch: 8, micro_batch: 8, eval_every: 0, eval_batch: 16}
optim: {name: adamw, lr: 3.0e-3, warmup_steps: 2}
YAML
dir="$work/ckpt"
run=(train -c "$work/gpt.yaml" --set train.steps=100000 --set metrics.path=
     --set checkpoint.dir="$dir" --set checkpoint.every_steps=1 --set checkpoint.keep_last=3
     --resume auto)

newest_committed() {
  local best=-1 d n
  for d in "$dir"/step-*; do
    [ -f "$d/MANIFEST.json" ] || continue
    n="${d##*/step-}"
    [[ "$n" =~ ^[0-9]+$ ]] || continue
    n=$((10#$n))
    (( n > best )) && best=$n
  done
  echo "$best"
}

RANDOM=20240607  # the same kill times on every run of the test
kills=20 mid_save=0 prev=-1 prev_tmp=""
for i in $(seq 1 "$kills"); do
  KILN_DEBUG_CKPT_SLOW_MS=30 "$KILN" "${run[@]}" > "$work/run$i.log" 2>&1 &
  pid=$!
  # Start-up time varies with the machine's load: wait for this run's first commit, then kill
  # it 0 .. 0.5 s later, somewhere in the saves that follow back to back.
  for _ in $(seq 1 1200); do
    grep -q "\[ckpt\] committed" "$work/run$i.log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/run$i.log"; fail "run $i exited by itself"; }
    sleep 0.05
  done
  sleep "0.$(printf '%02d' $(( RANDOM % 50 )))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""

  # A .tmp directory this kill left (not one an earlier kill left and no run has cleared yet).
  tmp_now="$(ls "$dir" 2>/dev/null | grep '\.tmp$' || true)"
  [ -n "$tmp_now" ] && [ "$tmp_now" != "$prev_tmp" ] && mid_save=$((mid_save + 1))
  prev_tmp="$tmp_now"
  # Every committed checkpoint (a .tmp or a folder without a manifest is never loaded).
  "$KILN" ckpt verify "$dir" > "$work/verify.log" 2>&1 \
    || { cat "$work/verify.log"; fail "kill $i: a committed checkpoint does not verify"; }
  now=$(newest_committed)
  (( now > prev )) || fail "kill $i: the newest checkpoint did not advance from $prev (now $now)"
  if grep -q "skipping checkpoint" "$work/run$i.log"; then
    cat "$work/run$i.log"; fail "kill $i: a resume found a committed checkpoint that does not verify"
  fi
  if (( prev >= 0 )) && grep -q "resumed from" "$work/run$i.log"; then
    grep -q "resumed from $dir/$(printf 'step-%08d' "$prev"):" "$work/run$i.log" \
      || { grep "resumed from" "$work/run$i.log"; fail "kill $i: did not resume from step $prev"; }
  fi
  echo "kill $i: newest committed step $now"
  prev=$now
done

(( prev > 0 )) || fail "no checkpoint was ever committed"
(( mid_save * 2 >= kills )) || fail "only $mid_save of $kills kills landed during a save"
echo "$mid_save of $kills kills landed during a save"

# The run goes on to the end from the newest checkpoint.
"$KILN" "${run[@]}" --set train.steps=$((prev + 3)) > "$work/final.log" 2>&1 \
  || { cat "$work/final.log"; fail "the final resume failed"; }
grep -q "resumed from $dir/$(printf 'step-%08d' "$prev"):" "$work/final.log" \
  || fail "the final run did not resume from step $prev"
"$KILN" ckpt verify "$dir" > /dev/null || fail "checkpoints do not verify at the end"
echo "resumed from step $prev and finished at step $((prev + 3))"
