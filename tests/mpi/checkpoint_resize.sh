# Resume at another world size (DESIGN decision 6): a job saved by 4 ranks and resumed on 2, and
# one saved by 2 and resumed on 4, follow the loss curve of the uninterrupted 4-rank job within
# 1e-5 relative at every step, for the MLP, the CNN and a small GPT. The global batch stays 16
# (4 ranks accumulate 1 micro-batch of 4, 2 ranks accumulate 2), the data cursor is global and
# dropout is keyed by global sample index, so the same samples and masks are seen; the optimizer
# state is re-sliced from the shards.
source "$(dirname "$0")/common.bash"
: "${KILN_SOURCE_DIR:?}"

steps=24 half=12
common=(--set train.steps=$steps --set train.global_batch=16 --set train.micro_batch=4
        --set optim.warmup_steps=3 --set optim.schedule=cosine --set optim.lr=3e-3
        --set train.eval_every=0 --set train.eval_samples=64 --set metrics.log_every=1
        --set comm.timeout_s=60)
write_gpt_job
declare -A model_args=(
  [mlp]="-c $KILN_SOURCE_DIR/configs/mlp_fashion.yaml --set model.hidden=[32] --set model.dropout=0.2"
  [cnn]="-c $KILN_SOURCE_DIR/configs/cnn_fashion.yaml --set model.channels=[4,8] --set model.fc=16"
  [gpt]="-c $work/gpt.yaml"
)

# run NP NAME [args...]: one job; its metrics go to $work/NAME.jsonl (appended to on resume).
run() {
  local np="$1" name="$2"
  shift 2
  timeout 120 "$KILN_MPIRUN" -np "$np" --oversubscribe -x KILN_DEBUG_STOP_AT_STEP "$KILN" train \
    "${args[@]}" "${common[@]}" --set metrics.path="$work/$name.jsonl" --set checkpoint.dir="$work/$name" "$@" \
    > "$work/out.txt" 2>&1 || fail "$name: the $np-rank job failed"
}
# The loss of every step, one per line, in order.
losses() { grep -o '"loss":[^,}]*' "$1" | cut -d: -f2; }

export KILN_DEBUG_STOP_AT_STEP=-1
for model in mlp cnn gpt; do
  read -r -a args <<< "${model_args[$model]}"
  run 4 "$model-ref"
  for pair in "4 2" "2 4"; do
    read -r from to <<< "$pair"
    name="$model-from${from}to${to}"
    KILN_DEBUG_STOP_AT_STEP=$half run "$from" "$name"
    [ -f "$work/$name/step-$(printf %08d $half)/MANIFEST.json" ] || fail "$name: no checkpoint at step $half"
    run "$to" "$name" --resume auto
    grep -q "r0/$to .*saved by $from rank(s), resuming on $to" "$work/out.txt" \
      || fail "$name: the resumed job did not report the change of world size"
    grep -q "r0/$to .*resumed from .*step-$(printf %08d $half): step $half" "$work/out.txt" \
      || fail "$name: did not resume from step $half"

    [ "$(losses "$work/$name.jsonl" | wc -l)" -eq $steps ] || fail "$name: expected $steps losses"
    # Relative difference per step; the curve must also move (a flat one would prove nothing).
    paste <(losses "$work/$model-ref.jsonl") <(losses "$work/$name.jsonl") | awk -v name="$name" '
      { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > worst) worst = r
        if (r > 1e-5) { printf "FAIL: %s: step %d loss %s, uninterrupted 4 ranks %s\n", name, NR, $2, $1; bad = 1 }
        if (NR == 1) first = $1; last = $1 }
      END { if (bad) exit 1
            if (first - last < 0.05) { printf "FAIL: the loss did not fall (%s -> %s)\n", first, last; exit 1 }
            printf "%s: %d steps, worst relative loss difference %.2g\n", name, NR, worst }' \
      || fail "$name: the loss curve left the uninterrupted 4-rank one"
  done
  "$KILN" ckpt verify "$work/$model-from2to4" > "$work/out.txt" 2>&1 || fail "$model: checkpoints do not verify"
done
echo "PASS: MLP, CNN and GPT: 4 -> 2 and 2 -> 4 follow the uninterrupted 4-rank loss curve"
