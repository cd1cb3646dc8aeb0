#!/usr/bin/env bash
# Issue 8 acceptance, preemption: SIGTERM to kiln launch, then SIGTERM to one worker, each stop
# the job at the next step boundary with a checkpoint of that step, cleanly (exit 75: stopped,
# resumable) and without a restart; running the same command again resumes from it, and the
# third run finishes. Here kiln launch starts its own coordinator (under the run folder), which
# `kiln status` reads while the job runs.
source "$(dirname "$0")/elastic_common.bash"
mkdir -p "$work/job"
write_mlp "$work/job.yaml" 150 "$work/job/ckpt" 50
printf 'localhost slots=2\n' > "$work/hosts"

launch() {
  KILN_DEBUG_STEP_SLEEP_MS=40 "$KILN" launch --config "$work/job.yaml" --hostfile "$work/hosts" \
    --np 2 --job stop --max-restarts 0 >> "$work/launch.log" 2>&1 &
  launch_pid=$!
}
finish() {  # EXPECTED-EXIT
  set +e
  wait "$launch_pid"
  local rc=$?
  set -e
  launch_pid=""
  [ "$rc" -eq "$1" ] || fail "kiln launch exited $rc, not $1"
}
newest() { ls -d "$work/job/ckpt"/step-* 2> /dev/null | sort | tail -n 1 | sed -E 's/.*step-0*//'; }

# 1. SIGTERM to kiln launch.
launch
wait_for 60 reached_step 12
status_json "$work/job/coordinator" stop > "$work/status1.json" || fail "kiln status failed"
grep -q '"world": 2' "$work/status1.json" || fail "kiln status does not show the 2-rank job"
kill -TERM "$launch_pid"
at=$(last_step "$work/job/metrics.jsonl")
finish 75
stopped=$(newest)
[ "$stopped" -ge "$at" ] && [ "$stopped" -lt 50 ] \
  || fail "the stop saved step $stopped; SIGTERM came at step $at (periodic saves: every 50)"
grep -q "r0/2 .*stop requested: stopping after step $stopped" "$work/launch.log" \
  || fail "the ranks did not stop together at a step boundary"
grep -q "generation 1" "$work/launch.log" && fail "a stopped job was restarted"
echo "SIGTERM to kiln launch at step $at: checkpoint of step $stopped, exit 75"

# 2. Again: resumes; SIGTERM to a worker (preemption of its node).
launch
wait_for 60 grep -q "resumed from $work/job/ckpt/step-$(printf %08d "$stopped")" "$work/launch.log"
wait_for 60 reached_step $((stopped + 10))
pid=$(rank_pid "coordinator.job=stop" 1) || fail "no rank 1"
kill -TERM "$pid"
at=$(last_step "$work/job/metrics.jsonl")
finish 75
second=$(newest)
[ "$second" -ge "$at" ] && [ "$second" -gt "$stopped" ] || fail "the worker's stop saved step $second"
grep -q "the ranks stopped before the last step" "$work/launch.log" \
  || fail "kiln launch did not report the workers' own stop"
echo "SIGTERM to rank 1 at step $at: checkpoint of step $second, exit 75"

# 3. Once more: finishes.
launch
finish 0
[ "$(newest)" -eq 150 ] || fail "the third run did not reach step 150"
grep -q "job 'stop' finished" "$work/launch.log" || fail "no final report"
echo "PASS: two stops, each checkpointed and resumable; the job finished"
