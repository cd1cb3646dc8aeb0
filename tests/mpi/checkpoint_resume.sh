# Exact resume at 2 ranks: `mpirun -np 2` for 60 steps, and the same job stopped during step 30
# (KILN_DEBUG_STOP_AT_STEP, passed to every rank with -x as a remote node would need) and
# resumed with --resume auto, end with bitwise identical parameters, optimizer shards and
# position, for the MLP, the CNN and a small GPT (byte-level, on a generated text). Both jobs also
# save every 20 steps, so saves are in flight while the ranks train; a cosine schedule over
# train.steps makes a real interruption necessary. Dropout is on in every model.
source "$(dirname "$0")/common.bash"
: "${KILN_SOURCE_DIR:?}"

common=(--set train.steps=60 --set train.global_batch=16 --set train.micro_batch=4
        --set optim.warmup_steps=5 --set optim.schedule=cosine --set train.eval_every=0
        --set train.eval_samples=64 --set metrics.path= --set metrics.log_every=10
        --set checkpoint.every_steps=20 --set checkpoint.keep_last=0 --set comm.timeout_s=60)
write_gpt_job
declare -A model_args=(
  [mlp]="-c $KILN_SOURCE_DIR/configs/mlp_fashion.yaml --set model.hidden=[64,32]"
  [cnn]="-c $KILN_SOURCE_DIR/configs/cnn_fashion.yaml --set model.channels=[4,8] --set model.fc=16"
  [gpt]="-c $work/gpt.yaml"
)

np2() { timeout 120 "$KILN_MPIRUN" -np 2 -x KILN_DEBUG_STOP_AT_STEP "$KILN" train "$@"; }

for model in mlp cnn gpt; do
  read -r -a args <<< "${model_args[$model]}"
  a="$work/$model-a" b="$work/$model-b"
  KILN_DEBUG_STOP_AT_STEP=-1 np2 "${args[@]}" "${common[@]}" --set checkpoint.dir="$a" \
    > "$work/out.txt" 2>&1 || fail "$model: the uninterrupted 2-rank run failed"
  KILN_DEBUG_STOP_AT_STEP=30 np2 "${args[@]}" "${common[@]}" --set checkpoint.dir="$b" \
    > "$work/out.txt" 2>&1 || fail "$model: the first half failed"
  [ -f "$b/step-00000030/MANIFEST.json" ] || fail "$model: the stopped job did not save step 30"
  [ ! -e "$b/step-00000040" ] || fail "$model: the stopped job went on past step 30"
  KILN_DEBUG_STOP_AT_STEP=-1 np2 "${args[@]}" "${common[@]}" --set checkpoint.dir="$b" \
    --resume auto > "$work/out.txt" 2>&1 || fail "$model: the resumed job failed"
  grep -q "r0/2 .*resumed from $b/step-00000030: step 30" "$work/out.txt" \
    || fail "$model: did not resume from step 30"

  # The check can fail: halfway weights differ from the final ones.
  ! cmp -s "$b/step-00000030/model.safetensors" "$a/step-00000060/model.safetensors" \
    || fail "$model: step 30 and step 60 hold the same weights: nothing was trained"
  for f in model.safetensors optim-00000-of-00002.safetensors optim-00001-of-00002.safetensors; do
    cmp "$a/step-00000060/$f" "$b/step-00000060/$f" \
      || fail "$model: $f after 60 steps differs between the uninterrupted and resumed jobs"
  done
  for key in '"step"' '"cursor"' '"steps_taken"' '"world_size"'; do
    [ "$(grep "$key" "$a/step-00000060/trainer.json")" = \
      "$(grep "$key" "$b/step-00000060/trainer.json")" ] || fail "$model: trainer.json $key differs"
  done
  grep -q '"world_size": 2' "$b/step-00000060/trainer.json" || fail "$model: trainer.json lacks world 2"
  "$KILN" ckpt verify "$b" > "$work/out.txt" 2>&1 || fail "$model: the checkpoints do not verify"
  echo "$model: 2 ranks x 60 steps == 30 steps + resume + 30 steps, bit for bit"
done
