# Crash safety at 2 ranks: a tiny GPT job saving at every step (KILN_DEBUG_CKPT_SLOW_MS stretches
# each phase of a save so that kills land inside saves) loses one rank - rank 0 or rank 1, chosen
# at random - to SIGKILL at a random moment, 20 times, each time resumed with --resume auto.
# After every kill: every committed checkpoint verifies and holds both ranks' shards, the newest
# advances, and the next job resumes from the newest without skipping one. A save of 2 ranks
# commits only after both ranks' files are durable, so a kill of either rank mid-save must never
# leave a manifest over an incomplete set of shards. Then one flipped byte in rank 1's optimizer
# shard: `kiln ckpt verify` names the file, and --resume auto at 2 ranks falls back to the
# previous checkpoint and, training being exact, writes the same bytes again.
source "$(dirname "$0")/common.bash"
: "${KILN_SOURCE_DIR:?}"

# A tiny model on a generated text loads in a blink, so the 20 jobs spend their time saving.
for i in $(seq 1 100); do
  echo "And it came to pass on day $((i % 7)), that the shepherd counted $((i % 13)) sheep."
done > "$work/text.txt"
"$KILN" data prepare-text "$work/text.txt" --out "$work/shards" --val-fraction 0.1 \
  > "$work/out.txt" 2>&1 || fail "kiln data prepare-text failed"
cat > "$work/gpt.yaml" <<YAML
model: {name: gpt, n_layer: 1, n_head: 2, n_embd: 32, seq_len: 16, vocab: 256, dropout: 0.1}
data: {name: text, path: $work/shards, seed: 1}
train: {global_batch: 8, micro_batch: 4, eval_every: 0, eval_batch: 16}
optim: {name: adamw, lr: 3.0e-3, warmup_steps: 2}
YAML
dir="$work/ckpt"
run=(train -c "$work/gpt.yaml" --set train.steps=100000 --set metrics.path=
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
# Whether process $1 still runs: a zombie does not (this container's init reaps orphans late).
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$st" != Z* ]]
}
step_dir() { printf '%s/step-%08d' "$dir" "$1"; }

RANDOM=20240611  # the same victims and kill times on every run of the test
kills=20 mid_save=0 prev=-1 prev_tmp="" victims=(0 0)
for i in $(seq 1 "$kills"); do
  # odls_base_sigkill_timeout 0: mpirun kills the surviving rank at once instead of a second
  # later (a second crash at a random moment, as when a node is lost), which keeps 20 jobs quick.
  KILN_DEBUG_CKPT_SLOW_MS=10 "$KILN_MPIRUN" -np 2 --mca odls_base_sigkill_timeout 0 \
    -x KILN_DEBUG_CKPT_SLOW_MS "$KILN" "${run[@]}" > "$work/out.txt" 2>&1 &
  job_pid=$!
  # Start-up time varies with the machine's load: wait for this job's first commit, then kill
  # 0 .. 0.5 s later, somewhere in the saves that follow back to back.
  for _ in $(seq 1 1200); do
    grep -q "\[ckpt\] committed" "$work/out.txt" && break
    kill -0 "$job_pid" 2>/dev/null || fail "job $i exited by itself"
    sleep 0.05
  done
  sleep "0.$(printf '%02d' $(( RANDOM % 50 )))"
  victim_rank=$(( RANDOM % 2 ))
  victims[victim_rank]=$(( victims[victim_rank] + 1 ))
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
    for _ in $(seq 1 50); do alive "$p" || break; sleep 0.1; done
    alive "$p" && fail "job $i: rank process $p outlived mpirun"
  done

  # A .tmp directory this kill left (not one an earlier kill left and no job has cleared yet).
  tmp_now="$(ls "$dir" 2>/dev/null | grep '\.tmp$' || true)"
  [ -n "$tmp_now" ] && [ "$tmp_now" != "$prev_tmp" ] && mid_save=$((mid_save + 1))
  prev_tmp="$tmp_now"
  # Every committed checkpoint (a .tmp or a folder without a manifest is never loaded).
  "$KILN" ckpt verify "$dir" > "$work/verify.txt" 2>&1 \
    || { cat "$work/verify.txt"; fail "kill $i: a committed checkpoint does not verify"; }
  for d in "$dir"/step-*; do
    [ -f "$d/MANIFEST.json" ] && [[ "$d" != *.tmp ]] || continue
    [ -f "$d/optim-00000-of-00002.safetensors" ] && [ -f "$d/optim-00001-of-00002.safetensors" ] \
      || fail "kill $i: committed checkpoint ${d##*/} lacks a rank's optimizer shard"
  done
  now=$(newest_committed)
  (( now > prev )) || fail "kill $i: the newest checkpoint did not advance from $prev (now $now)"
  grep -q "skipping checkpoint" "$work/out.txt" \
    && fail "kill $i: a resume found a committed checkpoint that does not verify"
  if (( prev >= 0 )); then
    grep -q "resumed from $(step_dir "$prev"):" "$work/out.txt" \
      || fail "kill $i: did not resume from step $prev"
  fi
  echo "kill $i (rank $victim_rank): newest committed step $now, left ${tmp_now:-no .tmp}"
  prev=$now
done

(( mid_save * 2 >= kills )) || fail "only $mid_save of $kills kills landed during a save"
(( victims[0] >= 5 && victims[1] >= 5 )) || fail "victims unbalanced: ${victims[*]}"
echo "$mid_save of $kills kills landed during a save (rank 0 killed ${victims[0]} times, rank 1 ${victims[1]})"

# The job goes on to the end from the newest checkpoint, at 2 ranks, saving 3 more.
end=$((prev + 3))
timeout 120 "$KILN_MPIRUN" -np 2 "$KILN" "${run[@]}" --set train.steps=$end \
  > "$work/out.txt" 2>&1 || fail "the final resume failed"
grep -q "resumed from $(step_dir "$prev"):" "$work/out.txt" \
  || fail "the final job did not resume from step $prev"
"$KILN" ckpt verify "$dir" > "$work/verify.txt" 2>&1 || fail "checkpoints do not verify at the end"
echo "resumed from step $prev at 2 ranks and finished at step $end"

# One flipped bit in rank 1's optimizer shard of the newest checkpoint.
shard="$(step_dir "$end")/optim-00001-of-00002.safetensors"
cp "$shard" "$work/original.safetensors"
off=$(( $(stat -c %s "$shard") - 100 ))
byte=$(od -An -tu1 -j "$off" -N1 "$shard" | tr -d ' ')
printf "$(printf '\\%03o' $(( byte ^ 1 )))" | dd of="$shard" bs=1 seek="$off" conv=notrunc status=none
cmp -s "$shard" "$work/original.safetensors" && fail "the byte was not flipped"
"$KILN" ckpt verify "$(step_dir "$end")" > "$work/verify.txt" 2>&1 \
  && fail "verify passed a checkpoint with a flipped byte"
grep -q "optim-00001-of-00002.safetensors: checksum mismatch" "$work/verify.txt" \
  || { cat "$work/verify.txt"; fail "verify does not name the corrupted shard"; }
timeout 120 "$KILN_MPIRUN" -np 2 "$KILN" "${run[@]}" --set train.steps=$end \
  > "$work/out.txt" 2>&1 || fail "the resume past the corrupted checkpoint failed"
grep -q "skipping checkpoint step-$(printf %08d "$end"): optim-00001-of-00002.safetensors: checksum mismatch" \
  "$work/out.txt" || fail "no warning naming the corrupted shard"
grep -q "resumed from $(step_dir $((end - 1))):" "$work/out.txt" \
  || fail "did not fall back to step $((end - 1))"
cmp "$shard" "$work/original.safetensors" || fail "the re-trained step $end differs from the first"
echo "PASS: a flipped byte is named by verify; resume falls back to step $((end - 1)) and re-creates step $end bit for bit"
