#!/usr/bin/env bash
# Issue 8 acceptance: a rank that hangs (debug hook KILN_DEBUG_HANG_AT_STEP, rank 1, step 12) is
# detected and the job recovers by a restart from its last checkpoint, twice: once caught by the
# collective watchdog of the rank waiting for it (comm.timeout_s), once by kiln launch itself
# (no step progress for --step-timeout while the watchdog's deadline is far). The hook reaches
# the first generation only, so the restarted job runs through and finishes.
source "$(dirname "$0")/elastic_common.bash"
start_coordinator "$work/coord"
addr=$(coordinator_address "$work/coord")
printf 'localhost slots=2\n' > "$work/hosts"

run() {  # NAME COMM_TIMEOUT STEP_TIMEOUT
  local name="$1"
  mkdir -p "$work/$name"
  write_mlp "$work/$name.yaml" 40 "$work/$name/ckpt" 5
  set +e
  KILN_DEBUG_HANG_AT_STEP=12 KILN_DEBUG_HANG_RANK=1 KILN_DEBUG_STEP_SLEEP_MS=20 \
    timeout 180 "$KILN" launch --config "$work/$name.yaml" --hostfile "$work/hosts" --np 2 \
    --set comm.timeout_s="$2" --step-timeout "$3" --coordinator "$addr" \
    --token-file "$work/coord/token" --job "$name" --max-restarts 1 --kill-grace 1 \
    > "$work/$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -ne 124 ] || fail "$name: kiln launch hung"
  [ "$rc" -eq 0 ] || fail "$name: kiln launch exited $rc"
  [ "$(grep -c "r1/2 .*KILN_DEBUG_HANG_AT_STEP=12: this rank now blocks forever" \
       "$work/$name.log")" -eq 1 ] || fail "$name: rank 1 did not hang exactly once"
  [ -f "$work/$name/ckpt/step-00000040/MANIFEST.json" ] || fail "$name: no final checkpoint"
  # The newest checkpoint before the hang: step 10, or step 5 when the save of step 10 had not
  # committed yet (its acknowledgements travel asynchronously) when rank 1 stopped.
  grep -E -q "resumed from $work/$name/ckpt/step-000000(10: step 10|05: step 5)" "$work/$name.log" \
    || fail "$name: the restart did not resume from step 10 or 5"
  status_json "$work/coord" "$name" > "$work/$name.json" || fail "kiln status failed"
  grep -q '"failures": 1' "$work/$name.json" || fail "$name: the coordinator did not count 1 failure"
  ! grep -q "blacklisted" "$work/$name.log" || fail "$name: a hang blacklisted a host"
}

run watchdog 3 0
grep -q "r0/2 .*watchdog: all_reduce .*(control, step 12) has not finished" "$work/watchdog.log" \
  || fail "watchdog: rank 0's watchdog did not name the control all-reduce of step 12"
grep -q "generation 0 failed: mpirun exited with exit status 3" "$work/watchdog.log" \
  || fail "watchdog: the failure is not the watchdog's exit status 3"
echo "watchdog: detected, restarted, finished"

run supervisor 600 3
grep -q "generation 0 failed: no step progress for [0-9.]* s at step 11 (--step-timeout 3 s)" \
  "$work/supervisor.log" || fail "supervisor: the hang was not detected by step progress"
echo "supervisor: detected, restarted, finished"
echo "PASS: both hangs detected and recovered from"
