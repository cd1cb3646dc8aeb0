# Shared by the kiln launch tests (sourced; not a test itself): a scratch folder removed on exit
# with every process the test started, a small MLP config, waiting helpers and failure reports.
# Exits 77 (ctest: skipped) when the build has no `kiln launch` (no gRPC) or no mpirun.
set -euo pipefail
: "${KILN:?set KILN to the kiln binary}" "${KILN_SOURCE_DIR:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset KILN_LOG_LEVEL KILN_SET KILN_COORDINATOR_TOKEN

if ! "$KILN" launch --help > /dev/null 2>&1 || ! "$KILN" launch --help | grep -q -- --hostfile; then
  echo "SKIP: this kiln has no launch command (built without gRPC)"
  exit 77
fi
command -v mpirun > /dev/null || { echo "SKIP: no mpirun"; exit 77; }

work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-elastic-XXXXXX")"
launch_pid=""
extra_cleanup=()
cleanup() {
  local rc=$?
  if [ -n "$launch_pid" ] && kill -0 "$launch_pid" 2>/dev/null; then
    kill -KILL "$launch_pid" 2>/dev/null || true
  fi
  # Anything still running from this test's folder (ranks, coordinators) goes too.
  pkill -KILL -f -- "$work" 2>/dev/null || true
  for c in "${extra_cleanup[@]}"; do eval "$c" || true; done
  if [ -n "${KILN_TEST_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f (last 40 lines)"
    tail -n 40 "$f"
  done
  exit 1
}

# write_config FILE STEPS [KEY: VALUE lines for train:] - a tiny MLP with dropout.
write_mlp() {
  local file="$1" steps="$2" ckpt="$3" every="${4:-3}"
  cat > "$file" <<YAML
model:
  name: mlp
  hidden: [32]
  dropout: 0.1
data:
  name: fashion_mnist
  path: /usr/share/datasets/fashion-mnist
  seed: 1
train:
  steps: $steps
  global_batch: 32
  micro_batch: 8
  eval_every: 0
  eval_samples: 256
  seed: 1
optim:
  name: adamw
  lr: 1.0e-3
  warmup_steps: 2
comm:
  timeout_s: 60
checkpoint:
  dir: $ckpt
  every_steps: $every
  keep_last: 2
metrics:
  path: ${ckpt%/*}/metrics.jsonl
  log_every: 1
coordinator:
  heartbeat_s: 0.5
YAML
}

# The step of the last training line of metrics FILE (0 when none).
last_step() {
  local line
  line=$(grep '"lr"' "$1" 2>/dev/null | tail -n 1 || true)
  [ -n "$line" ] || { echo 0; return; }
  sed -E 's/.*"step":([0-9]+).*/\1/' <<< "$line"
}

# wait_for SECONDS CONDITION...: polls every 0.1 s; fails naming the condition on timeout.
wait_for() {
  local limit="$1"; shift
  local end=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${limit}s waiting for: $*"
    if [ -n "$launch_pid" ] && ! kill -0 "$launch_pid" 2>/dev/null; then
      "$@" && return 0
      fail "kiln launch ended while waiting for: $*"
    fi
    sleep 0.1
  done
}

# pid of rank R of the job whose ranks' command lines hold MARK.
rank_pid() {
  local mark="$1" r="$2" p
  for p in $(pgrep -f -- "train.*$mark" || true); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$r"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# `kiln status --json` of JOB at the coordinator whose state folder is DIR (started by launch).
status_json() {
  local dir="$1" job="$2" addr
  addr=$(sed -E 's/.*"address":"([^"]+)".*/\1/' "$dir/ready.json")
  "$KILN" status --coordinator "$addr" --token-file "$dir/token" --job "$job" --json
}

# start_coordinator DIR [LISTEN [COMMAND PREFIX...]]: a `kiln coordinator` of the test's own
# (it outlives kiln launch, so the job's history can be read afterwards), with its token in
# DIR/token and its address in DIR/ready.json. A prefix runs it elsewhere (ip netns exec NS).
start_coordinator() {
  local dir="$1" listen="${2:-127.0.0.1:0}"
  shift; [ $# -gt 0 ] && shift
  mkdir -p "$dir"
  echo "elastic-test-token-$RANDOM$RANDOM$RANDOM" > "$dir/token"
  chmod 600 "$dir/token"
  "$@" "$KILN" coordinator --listen "$listen" --state-dir "$dir/state" --token-file "$dir/token" \
    --ready-file "$dir/ready.json" > "$dir/coordinator.log" 2>&1 &
  disown  # the clean-up kills it; no "Killed" notice from the shell
  local i
  for i in $(seq 1 300); do
    [ -f "$dir/ready.json" ] && return 0
    sleep 0.1
  done
  cat "$dir/coordinator.log"
  fail "the coordinator in $dir did not start"
}
coordinator_address() { sed -E 's/.*"address":"([^"]+)".*/\1/' "$1/ready.json"; }

# reached_step N: rank 0 has logged step N or later of the job in $work/job.
reached_step() { [ "$(last_step "$work/job/metrics.jsonl")" -ge "$1" ]; }
