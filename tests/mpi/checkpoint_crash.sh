# Crash safety at 2 ranks: a job saving at every step (KILN_DEBUG_CKPT_SLOW_MS stretches each
# phase of a save so that kills land inside saves) loses one rank - rank 0 or rank 1, chosen
# at random - to SIGKILL at a random moment, 5 times, each time resumed with --resume auto.
# After every kill: every committed checkpoint verifies, the newest advances, and the next job
# resumes from the newest without skipping one. A save of 2 ranks commits only after both
# ranks' files are durable, so a kill of either rank mid-save must never leave a manifest over
# an incomplete set of shards. (tests/integration/checkpoint_crash.sh does 20 kills at 1 rank.)
source "$(dirname "$0")/common.bash"
: "${KILN_SOURCE_DIR:?}"

dir="$work/ckpt"
run=(train -c "$KILN_SOURCE_DIR/configs/mlp_fashion.yaml" --set model.hidden=[256,256]
     --set train.steps=100000 --set train.global_batch=32 --set train.micro_batch=16
     --set optim.warmup_steps=2 --set train.eval_every=0 --set metrics.path=
     --set checkpoint.dir="$dir" --set checkpoint.every_steps=1 --set checkpoint.keep_last=3
     --set comm.timeout_s=30 --resume auto)

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

RANDOM=20240611  # the same victims and kill times on every run of the test
kills=5 mid_save=0 prev=-1 prev_tmp=""
for i in $(seq 1 "$kills"); do
  KILN_DEBUG_CKPT_SLOW_MS=10 "$KILN_MPIRUN" -np 2 -x KILN_DEBUG_CKPT_SLOW_MS "$KILN" "${run[@]}" \
    > "$work/out.txt" 2>&1 &
  job_pid=$!
  # Start-up time varies with the machine's load: wait for this job's first commit, then kill
  # 0 .. 0.6 s later, somewhere in the saves that follow back to back.
  for _ in $(seq 1 1200); do
    grep -q "\[ckpt\] committed" "$work/out.txt" && break
    kill -0 "$job_pid" 2>/dev/null || fail "job $i exited by itself"
    sleep 0.1
  done
  sleep "0.$(printf '%02d' $(( RANDOM % 60 )))"
  victim_rank=$(( RANDOM % 2 ))
  pids=("$(rank_pid 0)" "$(rank_pid 1)") || fail "job $i: could not find both ranks"
  kill -KILL "${pids[$victim_rank]}" 2>/dev/null || true
  # mpirun notices the lost rank and ends the other; it must not outlive the collective deadline.
  for _ in $(seq 1 300); do
    kill -0 "$job_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$job_pid" 2>/dev/null && fail "job $i still runs 30 s after rank $victim_rank was killed"
  wait "$job_pid" 2>/dev/null && fail "job $i exited 0 after losing rank $victim_rank"
  job_pid=""
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && fail "job $i: rank process $p outlived mpirun"
  done

  # A .tmp directory this kill left (not one an earlier kill left and no job has cleared yet).
  tmp_now="$(ls "$dir" 2>/dev/null | grep '\.tmp$' || true)"
  [ -n "$tmp_now" ] && [ "$tmp_now" != "$prev_tmp" ] && mid_save=$((mid_save + 1))
  prev_tmp="$tmp_now"
  for d in "$dir"/step-*; do
    [ -e "$d" ] || continue
    case "$d" in *.tmp) continue ;; esac
    [ -f "$d/MANIFEST.json" ] || continue  # a removal cut short: never loaded
    "$KILN" ckpt verify "$d" > "$work/verify.txt" 2>&1 \
      || { cat "$work/verify.txt"; fail "kill $i: committed checkpoint ${d##*/} does not verify"; }
    [ -f "$d/optim-00000-of-00002.safetensors" ] && [ -f "$d/optim-00001-of-00002.safetensors" ] \
      || fail "kill $i: committed checkpoint ${d##*/} lacks a rank's optimizer shard"
  done
  now=$(newest_committed)
  (( now > prev )) || fail "kill $i: the newest checkpoint did not advance from $prev (now $now)"
  grep -q "skipping checkpoint" "$work/out.txt" \
    && fail "kill $i: a resume found a committed checkpoint that does not verify"
  if (( prev >= 0 )); then
    grep -q "resumed from $dir/$(printf 'step-%08d' "$prev"):" "$work/out.txt" \
      || fail "kill $i: did not resume from step $prev"
  fi
  echo "kill $i (rank $victim_rank): newest committed step $now"
  prev=$now
done

(( mid_save * 2 >= kills )) || fail "only $mid_save of $kills kills landed during a save"
echo "$mid_save of $kills kills landed during a save"

# The job goes on to the end from the newest checkpoint, at 2 ranks.
timeout 120 "$KILN_MPIRUN" -np 2 "$KILN" "${run[@]}" --set train.steps=$((prev + 3)) \
  > "$work/out.txt" 2>&1 || fail "the final resume failed"
grep -q "resumed from $dir/$(printf 'step-%08d' "$prev"):" "$work/out.txt" \
  || fail "the final job did not resume from step $prev"
"$KILN" ckpt verify "$dir" > "$work/verify.txt" 2>&1 || fail "checkpoints do not verify at the end"
echo "PASS: resumed from step $prev at 2 ranks and finished at step $((prev + 3))"
