#!/usr/bin/env bash
# Issue 8 acceptance, multi-node for real: two hosts (network namespaces, 2 slots each) and a
# coordinator on a third. A 4-rank job loses a whole host (its link goes down): kiln launch sees
# the host's heartbeats stop, blacklists it, and goes on with 2 ranks on the other host (the same
# global batch, through twice the gradient accumulation). When the host is back and its
# cool-down is over, the job checkpoints on request and grows back to 4 ranks, and finishes.
# The coordinator holds the history: start (4), failure (2), membership (4).
source "$(dirname "$0")/elastic_common.bash"
source "$(dirname "$0")/elastic_netns.bash"
netns_setup 2

start_coordinator "$work/coord" "$net.10:0" ip netns exec "$tag-0"
addr=$(coordinator_address "$work/coord")
printf '%s slots=2\n%s slots=2\n' "$net.11" "$net.12" > "$work/hosts"
mkdir -p "$work/job"
write_mlp "$work/job.yaml" 400 "$work/job/ckpt" 10

export KILN_DEBUG_STEP_SLEEP_MS=60
"$KILN" launch --config "$work/job.yaml" --hostfile "$work/hosts" --min-np 2 --max-np 4 \
  --coordinator "$addr" --token-file "$work/coord/token" --job netns --rsh-agent "$work/agent" \
  --heartbeat-timeout 3 --blacklist-cooldown 4 --probe-timeout 3 --kill-grace 2 \
  --max-restarts 2 -- "${mpirun_net[@]}" > "$work/launch.log" 2>&1 &
launch_pid=$!
unset KILN_DEBUG_STEP_SLEEP_MS

generation_world() {  # GEN WORLD: generation GEN runs WORLD ranks and has trained
  grep -q "generation $1 is training" "$work/launch.log" &&
    grep -q "generation $1 (.*): $2 rank(s)" "$work/launch.log"
}
wait_for 120 generation_world 0 4
wait_for 60 reached_step 15
echo "4 ranks training; taking host 2 ($net.12) down"
host_down 2
down_at=$SECONDS
wait_for 60 generation_world 1 2
echo "the job went on with 2 ranks $((SECONDS - down_at)) s after the host went down"
# Ranks 2 and 3 go silent together, but their last heartbeats are apart by up to a period: the
# supervisor may name one of them or both.
grep -E -q "generation 0 failed: no heartbeat from rank\(s\) (2|3|2,3) on $net.12" "$work/launch.log" \
  || fail "the failure does not name the silent ranks (2, 3) and their host"
grep -q "host $net.12 blacklisted" "$work/launch.log" || fail "host 2 was not blacklisted"
grep -q "generation 1 (failure.*): 2 rank(s) on $net.11:2, gradient accumulation 2" \
  "$work/launch.log" || fail "generation 1 is not 2 ranks on host 1 with accumulation 2"
grep -q "r0/2 .*world 2 x micro-batch 8 x accumulation 2 = global batch 32" "$work/launch.log" \
  || fail "the ranks do not keep the global batch of 32 through accumulation"

sleep 2
host_up 2
echo "host 2 is back"
wait_for 90 generation_world 2 4
grep -q "hosts added: world 2 -> 4" "$work/launch.log" || fail "the resize gives no reason"
grep -q "checkpoint of step [0-9]* committed; relaunching" "$work/launch.log" \
  || fail "the job did not checkpoint before growing"

set +e
wait "$launch_pid"
rc=$?
set -e
launch_pid=""
[ "$rc" -eq 0 ] || fail "kiln launch exited $rc"
[ -f "$work/job/ckpt/step-00000400/MANIFEST.json" ] || fail "no final checkpoint"

status_json "$work/coord" netns > "$work/status.json" || fail "kiln status failed"
python_check=$(tr -d ' \n' < "$work/status.json")
for want in '"generation":"0","world":4,"cause":"CAUSE_START"' \
            '"generation":"1","world":2,"cause":"CAUSE_FAILURE"' \
            '"generation":"2","world":4,"cause":"CAUSE_MEMBERSHIP"'; do
  grep -qF "$want" <<< "$python_check" || fail "the coordinator's history lacks $want"
done
grep -q '"failures": 1' "$work/status.json" || fail "the failure count is not 1"
for ns in "$tag-1" "$tag-2"; do
  [ -z "$(ip netns pids "$ns")" ] || fail "processes are left in $ns: $(ip netns pids "$ns")"
done
echo "PASS: lost a host, went on with 2 ranks, grew back to 4 and finished"
