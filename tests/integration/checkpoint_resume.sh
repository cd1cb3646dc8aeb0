#!/usr/bin/env bash
# Exact resume (single rank): a 60-step run, and the same run stopped during step 30 (as by
# SIGTERM, through KILN_DEBUG_STOP_AT_STEP) and resumed with --resume auto, end with bitwise
# identical parameters and optimizer state, for the MLP and the CNN. A cosine schedule over
# train.steps makes a real interruption necessary (a 30-step run would decay differently).
# Also: a changed model shape is refused naming the key; a safe change is allowed and logged.
set -euo pipefail
: "${KILN:?KILN must name the kiln binary}" "${KILN_SOURCE_DIR:?}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

common=(--set train.steps=60 --set train.global_batch=32 --set train.micro_batch=16
        --set optim.warmup_steps=5 --set optim.schedule=cosine --set train.eval_every=0
        --set train.eval_samples=64 --set metrics.path= --set metrics.log_every=10)
declare -A model_args=(
  [mlp]="-c $KILN_SOURCE_DIR/configs/mlp_fashion.yaml --set model.hidden=[64,32]"
  [cnn]="-c $KILN_SOURCE_DIR/configs/cnn_fashion.yaml --set model.channels=[4,8] --set model.fc=16"
)

for model in mlp cnn; do
  read -r -a args <<< "${model_args[$model]}"
  a="$work/$model-a" b="$work/$model-b"
  "$KILN" train "${args[@]}" "${common[@]}" --set checkpoint.dir="$a" > "$work/$model-a.log" 2>&1 \
    || { cat "$work/$model-a.log"; fail "$model: the uninterrupted run failed"; }
  KILN_DEBUG_STOP_AT_STEP=30 "$KILN" train "${args[@]}" "${common[@]}" --set checkpoint.dir="$b" \
    > "$work/$model-b1.log" 2>&1 || { cat "$work/$model-b1.log"; fail "$model: first half failed"; }
  [ -d "$b/step-00000030" ] || fail "$model: the stopped run did not save step 30"
  [ ! -e "$b/step-00000060" ] || fail "$model: the stopped run went on to step 60"
  "$KILN" train "${args[@]}" "${common[@]}" --set checkpoint.dir="$b" --set metrics.log_every=5 \
    --resume auto > "$work/$model-b2.log" 2>&1 \
    || { cat "$work/$model-b2.log"; fail "$model: the resumed run failed"; }
  grep -q "resumed from $b/step-00000030: step 30" "$work/$model-b2.log" \
    || { cat "$work/$model-b2.log"; fail "$model: did not resume from step 30"; }
  grep -q "config changed since the checkpoint: metrics.log_every 10 -> 5" "$work/$model-b2.log" \
    || fail "$model: the allowed change of metrics.log_every was not logged"

  # The check can fail: halfway weights differ from the final ones.
  ! cmp -s "$b/step-00000030/model.safetensors" "$a/step-00000060/model.safetensors" \
    || fail "$model: step 30 and step 60 hold the same weights: nothing was trained"
  cmp "$a/step-00000060/model.safetensors" "$b/step-00000060/model.safetensors" \
    || fail "$model: parameters after 60 steps differ between the uninterrupted and resumed runs"
  cmp "$a/step-00000060/optim-00000-of-00001.safetensors" \
      "$b/step-00000060/optim-00000-of-00001.safetensors" \
    || fail "$model: optimizer state after 60 steps differs"
  for key in '"step"' '"cursor"' '"steps_taken"'; do
    [ "$(grep "$key" "$a/step-00000060/trainer.json")" = "$(grep "$key" "$b/step-00000060/trainer.json")" ] \
      || fail "$model: trainer.json $key differs"
  done
  echo "$model: 60 steps == 30 steps + resume + 30 steps, bit for bit"
done

# A different model shape is refused, naming the key; nothing is written.
read -r -a args <<< "${model_args[mlp]}"
if "$KILN" train "${args[@]}" "${common[@]}" --set checkpoint.dir="$work/mlp-b" \
     --set model.hidden=[64,33] --resume auto > "$work/refuse.log" 2>&1; then
  fail "a run with model.hidden changed resumed"
fi
grep -q 'model.hidden: \[64,32\] -> \[64,33\]' "$work/refuse.log" \
  || { cat "$work/refuse.log"; fail "the refusal does not name model.hidden"; }
echo "a changed model.hidden is refused by name"
