# SIGKILL of one rank mid-run ends the whole job, non-zero, within comm.timeout_s, with an
# error naming the lost rank (mpirun notices the dead process and names it; the watchdog is the
# fallback), never a hang.
source "$(dirname "$0")/common.bash"
timeout_s=30
write_config 100000 "$timeout_s"

"$KILN_MPIRUN" -np 2 "$KILN" train --config "$work/config.yaml" > "$work/out.txt" 2>&1 &
job_pid=$!
# Wait until training is under way (rank 0 has logged a few steps).
for _ in $(seq 1 600); do
  [ -f "$work/metrics.jsonl" ] && [ "$(wc -l < "$work/metrics.jsonl")" -ge 3 ] && break
  kill -0 "$job_pid" 2>/dev/null || fail "the job ended before it was killed"
  sleep 0.2
done
[ "$(wc -l < "$work/metrics.jsonl" 2>/dev/null || echo 0)" -ge 3 ] || fail "training never got going"
victim=$(rank_pid 1) || fail "could not find rank 1's process"
kill -KILL "$victim"
killed_at=$(date +%s)

# The job must end by itself; allow the deadline plus start-up slack before calling it a hang.
for _ in $(seq 1 $(( (timeout_s + 30) * 5 ))); do
  kill -0 "$job_pid" 2>/dev/null || break
  sleep 0.2
done
if kill -0 "$job_pid" 2>/dev/null; then fail "the job still runs $((timeout_s + 30)) s after rank 1 died"; fi
set +e
wait "$job_pid"
rc=$?
set -e
job_pid=""
took=$(( $(date +%s) - killed_at ))
[ "$rc" -ne 0 ] || fail "the job exited 0 after losing a rank"
grep -Eq "rank 1 .*(signal 9|Killed)|process rank 1 " "$work/out.txt" \
  || fail "the error does not name the lost rank 1"
[ "$took" -le "$timeout_s" ] || fail "the job took ${took}s to end (comm.timeout_s = $timeout_s)"
echo "PASS: job ended ${took}s after rank 1 was killed, exit status $rc"
# -m 3, not a pipe into head: under pipefail a grep cut off by head fails the script.
grep -m 3 -E "rank 1 " "$work/out.txt" || true
