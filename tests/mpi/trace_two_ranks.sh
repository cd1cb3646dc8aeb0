# Tracing a 2-rank CNN run: both ranks write a trace of steps 3-6 and rank 0 prints what it
# cost; `kiln trace merge` joins them onto rank 0's clock (rank 1's trace clock is set 2.5 s
# ahead, which the start-up measurement must find and the merge undo); the merged trace has every
# bucket's all-reduce on both ranks with matching sequence numbers, overlapping backward
# (tests/python/check_trace.py). Rank 0 names the slowest rank every logging step, and
# scripts/plot_metrics.py draws the run's metrics as four panels. A second run with overlap off
# is the control: one all-reduce per step, never during backward.
source "$(dirname "$0")/common.bash"
py=/usr/bin/python3  # Debian's, with matplotlib

# train_traced OVERLAP STEPS TRACE_START TRACE_STEPS
train_traced() {
  cat > "$work/cnn.yaml" <<YAML
model: {name: cnn, channels: [16, 32], kernel: 3, fc: 64}
data: {name: fashion_mnist, path: /usr/share/datasets/fashion-mnist, seed: 1}
train: {steps: $2, global_batch: 32, micro_batch: 16, eval_every: 4, eval_samples: 200, seed: 1}
optim: {name: adamw, lr: 1.0e-3, warmup_steps: 2}
comm: {bucket_mb: 0.05, first_bucket_mb: 0.01, overlap: $1, timeout_s: 60}
checkpoint: {dir: $work/ckpt-$1, every_steps: 4}
metrics: {path: $work/metrics-$1.jsonl, log_every: 2}
trace: {dir: $work/trace-$1, start_step: $3, steps: $4}
YAML
  KILN_DEBUG_TRACE_SKEW_US=2500000 timeout 240 "$KILN_MPIRUN" -np 2 "$KILN" train \
    --config "$work/cnn.yaml" > "$work/out.txt" 2>&1 || fail "mpirun -np 2 kiln train exited with $?"
}

train_traced true 8 3 4
for r in 00000 00001; do
  [ -s "$work/trace-true/rank-$r.trace.json" ] || fail "no trace file for rank $r"
done
grep -q "r0/2 .*trace: steps 3-6 into .*clocks aligned to rank 0's within" "$work/out.txt" \
  || fail "rank 0 did not report the clock alignment"
grep -Eq "r0/2 .*trace: steps 3-6 written to .*: [0-9]+ events \([0-9]+ per step, 0 dropped\).* KB of JSON .*estimated cost [0-9.]+ us per step" \
  "$work/out.txt" || fail "rank 0 did not print what tracing cost"
grep -Eq "r0/2 .*ranks at step 4: work \(data \+ forward/backward\) per step min [0-9.]+ \| median [0-9.]+ \| max [0-9.]+ ms; slowest rank [01]" \
  "$work/out.txt" || fail "no straggler line at the logging step 4"
grep -q '"slowest_rank":' "$work/metrics-true.jsonl" || fail "metrics lack slowest_rank"

"$KILN" trace merge "$work/trace-true" --out "$work/merged.json" > "$work/merge.txt" 2>&1 \
  || { cat "$work/merge.txt"; fail "kiln trace merge failed"; }
grep -q "merged 2 ranks" "$work/merge.txt" || fail "kiln trace merge said: $(cat "$work/merge.txt")"
"$py" "$KILN_SOURCE_DIR/tests/python/check_trace.py" "$work/merged.json" --ranks 2 --steps 3-6 \
  --overlap on --skew-us 2500000 || fail "the merged trace (overlap on) is wrong"

"$py" "$KILN_SOURCE_DIR/scripts/plot_metrics.py" "$work/metrics-true.jsonl" --out "$work/plot.png" \
  > "$work/plot.txt" 2>&1 || { cat "$work/plot.txt"; fail "plot_metrics.py failed"; }
grep -q "4 panels: Loss | Throughput | Step time breakdown | Learning rate" "$work/plot.txt" \
  || fail "plot_metrics.py said: $(cat "$work/plot.txt")"
"$py" "$KILN_SOURCE_DIR/tests/python/check_plot.py" "$work/metrics-true.jsonl" "$work/plot.png" \
  || fail "the plot is wrong"

train_traced false 4 2 2
"$KILN" trace merge "$work/trace-false" --out "$work/merged-off.json" > "$work/merge.txt" 2>&1 \
  || { cat "$work/merge.txt"; fail "kiln trace merge (overlap off) failed"; }
"$py" "$KILN_SOURCE_DIR/tests/python/check_trace.py" "$work/merged-off.json" --ranks 2 \
  --steps 2-3 --overlap off --skew-us 2500000 || fail "the merged trace (overlap off) is wrong"
echo "PASS: traced 2-rank runs merge, align and overlap as expected; plot has four panels"
