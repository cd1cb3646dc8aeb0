# A rank that blocks inside a step (debug hook KILN_DEBUG_HANG_AT_STEP) trips the watchdog on
# the rank waiting for it: it logs the collective, its sequence number and step, and ends the
# job non-zero with MPI_Abort instead of hanging.
source "$(dirname "$0")/common.bash"
write_config 1000 5

set +e
timeout 120 "$KILN_MPIRUN" -np 2 -x KILN_DEBUG_HANG_AT_STEP=4 -x KILN_DEBUG_HANG_RANK=1 \
  "$KILN" train --config "$work/config.yaml" > "$work/out.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 124 ] || fail "the job hung until the test's own 120 s limit"
[ "$rc" -ne 0 ] || fail "the job exited 0"
grep -q "r1/2 .*KILN_DEBUG_HANG_AT_STEP=4" "$work/out.txt" || fail "rank 1 did not hang as asked"
grep -Eq "r0/2 .*watchdog: all_reduce #[0-9]+ \(control, step 4\) has not finished after [0-9.]+ s \(comm.timeout_s = 5\)" \
  "$work/out.txt" || fail "rank 0's watchdog did not report the control all-reduce of step 4"
[ "$rc" -eq 3 ] || fail "exit status $rc; the watchdog ends the job with 3"
echo "PASS: watchdog tripped, exit status $rc"
grep "watchdog:" "$work/out.txt"
