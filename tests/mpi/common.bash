# Shared by the multi-rank scripts (sourced, not a test itself): a scratch folder removed on
# exit together with any job still running, small quick configs, and failure reporting.
set -euo pipefail
: "${KILN:?set KILN to the kiln binary}"
KILN_MPIRUN="${KILN_MPIRUN:-mpirun}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-mpi-test-XXXXXX")"
job_pid=""
cleanup() {
  if [ -n "$job_pid" ] && kill -0 "$job_pid" 2>/dev/null; then
    kill -TERM "$job_pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$job_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  if [ -f "$work/out.txt" ]; then
    echo "---- job output (last 60 lines)"
    tail -n 60 "$work/out.txt"
  fi
  exit 1
}

# A small MLP on Fashion-MNIST: quick steps and a quick final evaluation.
write_config() {
  cat > "$work/config.yaml" <<YAML
model:
  name: mlp
  hidden: [32]
  dropout: 0.1
data:
  name: fashion_mnist
  path: /usr/share/datasets/fashion-mnist
  seed: 1
train:
  steps: ${1:-20}
  global_batch: 32
  micro_batch: 8
  eval_every: 0
  eval_batch: 1000
  seed: 1
optim:
  name: adamw
  lr: 1.0e-3
  warmup_steps: 0
comm:
  timeout_s: ${2:-60}
metrics:
  path: $work/metrics.jsonl
  log_every: 1
YAML
}

# A small byte-level GPT on a repetitive, learnable text of ~40 KB: token shards in
# $work/shards and the config in $work/gpt.yaml (training keys come from the caller's --set).
write_gpt_job() {
  local i
  for i in $(seq 1 200); do
    echo "And it came to pass on day $((i % 7)), that the shepherd counted $((i % 13)) sheep."
    echo "Then the shepherd said unto them, Behold, the flock is $((i % 5)) and the field is wide."
  done > "$work/text.txt"
  "$KILN" data prepare-text "$work/text.txt" --out "$work/shards" --val-fraction 0.1 \
    > "$work/out.txt" 2>&1 || fail "kiln data prepare-text failed"
  cat > "$work/gpt.yaml" <<YAML
model: {name: gpt, n_layer: 1, n_head: 2, n_embd: 16, seq_len: 16, vocab: 256, dropout: 0.1}
data: {name: text, path: $work/shards, seed: 1}
train: {eval_batch: 16}
optim: {name: adamw, lr: 3.0e-3, beta2: 0.95, weight_decay: 0.1, clip_norm: 1.0}
YAML
}

# The pid of rank `r` among mpirun's children (Open MPI puts the rank in each one's environment).
rank_pid() {
  local r="$1" p
  for p in $(pgrep -P "$job_pid" || true); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$r"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
