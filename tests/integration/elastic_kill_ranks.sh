#!/usr/bin/env bash
# Issue 8 acceptance: SIGKILL a random rank at a random step, 10 times (5 in each of two jobs,
# an MLP and a CNN with dropout, 2 ranks). kiln launch restarts each time from the last
# checkpoint with --resume auto, and every job finishes with model and optimizer state bitwise
# identical to an uninterrupted run of the same world size. The coordinator records each
# restart as a failure naming the dead rank and its signal.
source "$(dirname "$0")/elastic_common.bash"

start_coordinator "$work/coord"
addr=$(coordinator_address "$work/coord")
printf 'localhost slots=2\n' > "$work/hosts"
# Long enough that 5 kills (each at most 8 steps after the last) land before the end, even
# when a restart rolls back to a checkpoint 2 steps old.
steps=100

cnn_lines='model:
  name: cnn
  channels: [4, 8]
  kernel: 3
  fc: 16
  dropout: 0.25'

# config NAME MODEL: a config whose checkpoints go to $work/NAME/ckpt.
config() {
  local name="$1" model="$2" file="$work/$1.yaml"
  mkdir -p "$work/$name"
  write_mlp "$file" "$steps" "$work/$name/ckpt" 3
  if [ "$model" = cnn ]; then
    # Swap the model section for the CNN's.
    awk -v cnn="$cnn_lines" 'BEGIN{skip=0} /^model:/{print cnn; skip=1; next}
      /^[a-z]/{skip=0} !skip' "$file" > "$file.tmp" && mv "$file.tmp" "$file"
  fi
}

launch() {  # NAME: kiln launch of config NAME in the background, output in NAME.log
  "$KILN" launch --config "$work/$1.yaml" --hostfile "$work/hosts" --np 2 --coordinator "$addr" \
    --token-file "$work/coord/token" --job "$1" --max-restarts 10 --kill-grace 1 \
    > "$work/$1.log" 2>&1 &
  launch_pid=$!
}

reached() { [ "$(last_step "$work/$1/metrics.jsonl")" -ge "$2" ]; }

for model in mlp cnn; do
  # The uninterrupted reference.
  config "ref-$model" "$model"
  launch "ref-$model"
  wait "$launch_pid" || fail "$model: the uninterrupted run failed (exit $?)"
  launch_pid=""
  ref="$work/ref-$model/ckpt/step-$(printf %08d $steps)"
  [ -f "$ref/model.safetensors" ] || fail "$model: the reference has no final checkpoint"

  # The same job, killed 5 times.
  config "kill-$model" "$model"
  export KILN_DEBUG_STEP_SLEEP_MS=80
  launch "kill-$model"
  unset KILN_DEBUG_STEP_SLEEP_MS
  target=$((2 + RANDOM % 6))
  for kill in 1 2 3 4 5; do
    wait_for 180 reached "kill-$model" "$target"
    rank=$((RANDOM % 2))
    pid=$(rank_pid "coordinator.job=kill-$model" "$rank") || fail "$model: no rank $rank process"
    at=$(last_step "$work/kill-$model/metrics.jsonl")
    kill -KILL "$pid" || fail "$model: rank $rank (pid $pid) was gone before the kill"
    echo "$model: kill $kill: SIGKILL to rank $rank (pid $pid) at step $at"
    target=$((at + 4 + RANDOM % 5))
  done
  set +e
  wait "$launch_pid"
  rc=$?
  set -e
  launch_pid=""
  [ "$rc" -eq 0 ] || fail "$model: kiln launch exited $rc after 5 kills"
  got="$work/kill-$model/ckpt/step-$(printf %08d $steps)"
  cmp "$ref/model.safetensors" "$got/model.safetensors" \
    || fail "$model: final parameters differ from the uninterrupted run"
  for shard in optim-00000-of-00002 optim-00001-of-00002; do
    cmp "$ref/$shard.safetensors" "$got/$shard.safetensors" \
      || fail "$model: optimizer state $shard differs from the uninterrupted run"
  done
  # Restarts went on from checkpoints (a kill before the first save of step 3 may start over).
  resumed=$(grep -c "resumed from $work/kill-$model/ckpt/step-" "$work/kill-$model.log" || true)
  [ "$resumed" -ge 4 ] || fail "$model: only $resumed of 5 restarts resumed from a checkpoint"

  status_json "$work/coord" "kill-$model" > "$work/status-$model.json" || fail "kiln status failed"
  failures=$(grep -c '"cause": "CAUSE_FAILURE"' "$work/status-$model.json" || true)
  [ "$failures" -eq 5 ] || fail "$model: the coordinator recorded $failures failure generations, not 5"
  grep -q '"restarts": 5' "$work/status-$model.json" || fail "$model: restarts is not 5"
  deaths=$(grep -c 'died of signal 9' "$work/status-$model.json" || true)
  [ "$deaths" -ge 5 ] || fail "$model: the recorded reasons do not name 5 ranks killed by signal 9"
  echo "$model: 5 kills, final state bitwise equal to the uninterrupted run"
done
echo "PASS: 10 SIGKILLs, both jobs finished exactly"
