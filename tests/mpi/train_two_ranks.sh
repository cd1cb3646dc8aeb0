# `mpirun -np 2 kiln train`: both ranks train, logs carry r0/2 and r1/2, rank 0 alone writes
# metrics with the step time split into compute, comm wait and optimizer; and plain
# `kiln train` without mpirun is a world of one that never starts MPI.
source "$(dirname "$0")/common.bash"
write_config 20 60

timeout 240 "$KILN_MPIRUN" -np 2 "$KILN" train --config "$work/config.yaml" > "$work/out.txt" 2>&1 \
  || fail "mpirun -np 2 kiln train exited with $?"
grep -q "r0/2 .*gradient sync over mpi (2)" "$work/out.txt" || fail "no gradient sync line from rank 0"
grep -q "r1/2 " "$work/out.txt" || fail "no line prefixed r1/2"
grep -q "r0/2 .*done: 20 steps" "$work/out.txt" || fail "rank 0 did not finish 20 steps"
[ "$(grep -c '"step":' "$work/metrics.jsonl")" -ge 20 ] || fail "fewer than 20 metrics records"
grep -q '"comm_wait_ms"' "$work/metrics.jsonl" || fail "metrics lack comm_wait_ms"
grep -q '"compute_ms"' "$work/metrics.jsonl" || fail "metrics lack compute_ms"
grep -q '"grad_wait_ms"' "$work/metrics.jsonl" || fail "metrics lack grad_wait_ms"
if grep -q "r1/2 .*\(step .*samples/s\|done:\)" "$work/out.txt"; then
  fail "rank 1 printed progress; only rank 0 should"
fi
loss2=$(grep -o '"loss":[^,]*' "$work/metrics.jsonl" | sed -n 20p)

rm -f "$work/metrics.jsonl"
# No launcher variables: a world of one, and no MPI (not even a singleton) is started.
env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_SIZE -u PMI_RANK \
  timeout 240 "$KILN" train --config "$work/config.yaml" > "$work/out.txt" 2>&1 \
  || fail "kiln train without mpirun exited with $?"
grep -q "r0/1 .*done: 20 steps" "$work/out.txt" || fail "the world of one did not finish"
if grep -q "gradient sync over" "$work/out.txt"; then fail "a world of one set up gradient sync"; fi
loss1=$(grep -o '"loss":[^,]*' "$work/metrics.jsonl" | sed -n 20p)
# Same global batch, same samples, same dropout keys: the step-20 loss prints the same digits
# (the metrics hold a rounded double; summation order differences are far below that).
close_enough() { awk -v a="${1#*:}" -v b="${2#*:}" 'BEGIN { d = a - b; if (d < 0) d = -d;
  exit !(d <= 1e-5 * (b < 0 ? -b : b)) }'; }
close_enough "$loss2" "$loss1" || fail "step-20 loss differs: 2 ranks $loss2, 1 rank $loss1"
echo "PASS: 2 ranks and a world of one train alike ($loss2 vs $loss1)"
