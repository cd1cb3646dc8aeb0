#!/usr/bin/env bash
# Checkpoint benchmark (CPU) with a ~100 MB model (MLP 784-4096-4096-1024-10, 24.2M fp32
# parameters; with AdamW's two moments a checkpoint is ~290 MB), on one rank or, with RANKS=2,
# on `mpirun -np 2` (each rank writes its optimizer shard, rank 0 also the model):
#   1. save throughput: what rank 0's writer thread wrote per second (files, checksums, fsyncs)
#      for the last save, which runs while training waits at the end (no CPU contention), and
#      the whole checkpoint's bytes over the time from the step to the commit (all ranks'
#      files, the agreement and the commit: the rate that counts at several ranks), next to
#      `dd if=/dev/zero bs=8M conv=fsync` of the same size into the same directory (peer); the
#      median rate of the saves written while training runs is printed too;
#   2. stall: time the training loop was blocked by an asynchronous save, as a share of a step
#      (Kiln's own accounting), and the slowdown: extra wall time per save against the same run
#      without checkpoints, which also counts the writer thread competing with the training
#      threads for the CPU cores; next to it, the slowdown that `dd oflag=direct` writing the
#      same bytes at the same steps causes the same run (the disk write's own cost: on a VM the
#      block device's I/O path takes guest CPU, whoever writes).
# Usage: scripts/bench/checkpoint.sh [STEPS]
#   env: KILN, BENCH_DIR (default runs/bench_checkpoint), RANKS (1 or more; default 1)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
KILN="${KILN:-$root/build/launcher/kiln}"
dir="${BENCH_DIR:-$root/runs/bench_checkpoint}"
steps="${1:-60}"
ranks="${RANKS:-1}"
launch=()
if (( ranks > 1 )); then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  launch=(mpirun -np "$ranks")
fi
every=10  # far enough apart that one save is written before the next is due
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"/ckpt "$dir"/dd.bin' EXIT

common=(train -c "$root/configs/mlp_fashion.yaml" --set model.hidden=[4096,4096,1024]
        --set model.dropout=0 --set train.steps="$steps" --set optim.warmup_steps=1
        --set train.eval_every=0 --set train.eval_samples=64 --set metrics.log_every=1
        --set train.global_batch=64 --set train.micro_batch=$((64 / ranks)))

dd_mbps() {  # MB/s of one dd of $1 bytes with fsync (and extra dd flags $2)
  local count=$(( ($1 + 8388607) / 8388608 )) t0 t1
  t0=$(date +%s.%N)
  dd if=/dev/zero of="$dir/dd.bin" bs=8M count="$count" conv=fsync ${2:-} status=none
  t1=$(date +%s.%N)
  rm -f "$dir/dd.bin"
  python3 -c "print(f'{$count * 8388608 / 1e6 / ($t1 - $t0):.1f}')"
}

echo "== run without checkpoints ($steps steps, $ranks rank(s))"
"${launch[@]}" "$KILN" "${common[@]}" --set metrics.path="$dir/plain.jsonl" > "$dir/plain.log" 2>&1
echo "== run with a checkpoint every $every steps"
"${launch[@]}" "$KILN" "${common[@]}" --set metrics.path="$dir/ckpt.jsonl" --set checkpoint.dir="$dir/ckpt" \
  --set checkpoint.every_steps="$every" --set checkpoint.keep_last=1 > "$dir/ckpt.log" 2>&1
grep -E "\[ckpt\]" "$dir/ckpt.log" | sed 's/^/  /'
bytes=$(python3 -c "
import json, sys
m = json.load(open('$dir/ckpt/' + sorted(__import__('os').listdir('$dir/ckpt'))[-1] + '/MANIFEST.json'))
print(sum(f['size'] for f in m['files']))")
echo "== run without checkpoints, with dd writing the same bytes (oflag=direct) at the same steps"
# The floor of the slowdown: what the disk write alone costs the training threads. On a VM the
# block device's I/O path takes guest CPU too, whoever writes.
"${launch[@]}" "$KILN" "${common[@]}" --set metrics.path="$dir/dd.jsonl" > "$dir/dd.log" 2>&1 &
train_pid=$!
python3 - "$dir/dd.jsonl" "$dir/dd.bin" "$bytes" "$every" "$steps" "$train_pid" <<'PY'
import json, os, subprocess, sys, time
metrics, out, nbytes, every, steps, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
done, offset, partial = set(), 0, ""
while True:  # polls cheaply (new bytes only, every 5 ms) so the watcher costs training little
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    if os.path.exists(metrics):
        with open(metrics) as f:
            f.seek(offset)
            chunk = f.read()
            offset = f.tell()
        *lines, partial = (partial + chunk).split("\n")
        for line in lines:
            step = json.loads(line).get("step", 0) if "step_ms" in line else 0
            if step % every == 0 and 0 < step < steps and step not in done:
                done.add(step)
                subprocess.run(["dd", "if=/dev/zero", f"of={out}", "bs=8M",
                                f"count={(nbytes + 8388607) // 8388608}", "oflag=direct",
                                "conv=fsync", "status=none"], check=True)
                os.remove(out)
    time.sleep(0.005)
print(f"  dd wrote {len(done)} x {nbytes // 1000000} MB at steps {sorted(done)}")
PY
wait "$train_pid"
echo "== dd peer: 3 x $((bytes / 1000000)) MB with conv=fsync into $dir"
dd_runs=() direct_runs=()
for i in 1 2 3; do
  dd_runs+=("$(dd_mbps "$bytes")")
  direct_runs+=("$(dd_mbps "$bytes" oflag=direct)")
done
echo "  dd MB/s: ${dd_runs[*]} | with oflag=direct (Kiln writes with O_DIRECT too): ${direct_runs[*]}"
direct_median=$(printf '%s\n' "${direct_runs[@]}" | sort -n | sed -n 2p)

python3 - "$dir" "$steps" "$every" "$bytes" "$ranks" "$direct_median" "${dd_runs[@]}" <<'PY'
import json, re, statistics, sys
d, steps, every, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ranks, direct = int(sys.argv[5]), float(sys.argv[6])
dd = [float(x) for x in sys.argv[7:]]

def step_ms(path):
    return {r["step"]: r["step_ms"] for r in map(json.loads, open(path)) if "step_ms" in r}

plain, ckpt = step_ms(f"{d}/plain.jsonl"), step_ms(f"{d}/ckpt.jsonl")
warm = [s for s in range(3, steps + 1) if s in plain and s in ckpt]  # skip start-up steps
step = statistics.median(plain[s] for s in warm)
log = open(f"{d}/ckpt.log").read()
rates = [float(x) for x in re.findall(r"wrote [\d.]+ MB in [\d.]+ s = (\d+) MB/s", log)]
to_commit = [float(x) for x in re.findall(r"([\d.]+) s from the step to the commit", log)]
end_to_end = nbytes / 1e6 / to_commit[-1]  # the last save: no training competes with it
waited = re.search(r"(\d+) checkpoint\(s\) saved this run; training waited ([\d.]+) ms", log)
saves, blocked = int(waited.group(1)), float(waited.group(2))
# Saves inside the measured window (the last one's wait at the end of the run is not a stall).
in_window = len([s for s in warm if s % every == 0 and s < steps])
extra = sum(ckpt[s] - plain[s] for s in warm) / max(1, in_window)
with_dd = step_ms(f"{d}/dd.jsonl")
dd_extra = sum(with_dd[s] - plain[s] for s in warm if s in with_dd) / max(1, in_window)
kiln, during = rates[-1], statistics.median(rates[:-1] or rates)
peer = statistics.median(dd)
stall = blocked / saves
print(f"step {step:.0f} ms (median, no checkpoints); {saves} saves, writer MB/s {rates}, "
      f"step to commit s {to_commit}")
print(f"result: ranks={ranks} model_mb=96.8 ckpt_mb={nbytes / 1e6:.0f} kiln_save_mbps={kiln:.0f} "
      f"kiln_step_to_commit_mbps={end_to_end:.0f} step_to_commit_ratio={end_to_end / peer:.2f} "
      f"dd_mbps={peer:.0f} save_ratio={kiln / peer:.2f} dd_direct_mbps={direct:.0f} "
      f"save_ratio_vs_direct={kiln / direct:.2f} save_mbps_while_training={during:.0f} "
      f"stall_ms_per_save={stall:.1f} "
      f"step_ms={step:.0f} stall_pct={100 * stall / step:.2f} "
      f"slowdown_ms_per_save={extra:.0f} slowdown_pct={100 * extra / step:.1f} "
      f"dd_alongside_slowdown_ms={dd_extra:.0f} slowdown_ratio_to_dd={extra / max(dd_extra, 1e-9):.2f}")
PY
