#!/usr/bin/env bash
# Issue 8 acceptance: what kiln launch refuses before anything starts - a malformed hostfile, an
# unreachable host, --min-np above the slots, a global batch that no allowed world size splits
# (also with mpirun arguments after --). And one that kiln launch completes where kiln train
# would refuse: saves asked for without checkpoint.dir.
# Each is a clear error (exit 1, naming the file, host or key and what to change) within
# seconds, and no coordinator, run folder or rank is created.
source "$(dirname "$0")/elastic_common.bash"
write_mlp "$work/job.yaml" 20 "$work/run/ckpt" 5

refuse() {  # NAME EXPECTED-MESSAGE ARGS...: kiln launch ARGS fails with the message
  local name="$1" want="$2"; shift 2
  set +e
  timeout 60 "$KILN" launch --config "$work/job.yaml" --run-dir "$work/run" "$@" \
    > "$work/$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -eq 1 ] || fail "$name: exit status $rc, not 1"
  grep -qF -- "$want" "$work/$name.log" || fail "$name: the error does not say: $want"
  [ ! -e "$work/run" ] || fail "$name: something was created in the run folder"
  ! pgrep -f -- "$work/run" > /dev/null || fail "$name: a process was started"
  echo "$name: $(grep -o 'E \[kiln\] .*' "$work/$name.log" | cut -c1-160)"
}

printf 'localhost slots=2\nnode-b slots=two\n' > "$work/bad-hosts"
refuse hostfile "hostfile $work/bad-hosts line 2: 'slots=two': slots must be a positive number" \
  --hostfile "$work/bad-hosts"

# 198.18.255.254 is in the range set aside for network tests and routed nowhere here.
printf 'localhost slots=2\n198.18.255.254 slots=2\n' > "$work/far-hosts"
refuse unreachable "unreachable host(s): 198.18.255.254" \
  --hostfile "$work/far-hosts" --rsh-agent ssh --probe-timeout 3

printf 'localhost slots=2\n' > "$work/hosts"
refuse min_np "--min-np 3 is above the 2 slot(s) the hosts offer (localhost:2)" \
  --hostfile "$work/hosts" --min-np 3 --max-np 4

printf 'localhost slots=8\n' > "$work/big-hosts"
refuse batch "train.global_batch (--set train.global_batch=48) = 48 with train.micro_batch = 8 splits exactly over no world size in [4, 5]" \
  --hostfile "$work/big-hosts" --min-np 4 --max-np 5 --set train.global_batch=48
grep -q "world sizes that work: 1, 2, 3, 6" "$work/batch.log" || fail "batch: valid sizes not listed"
# mpirun's arguments right after a --set: the -- ends kiln's flags, not just that --set's values.
refuse batch_then_mpirun_args "train.global_batch (--set train.global_batch=48) = 48" \
  --hostfile "$work/big-hosts" --min-np 4 --max-np 5 --set train.global_batch=48 -- --mca btl self
echo "five bad set-ups refused before anything started"

# Not a bad set-up: saves asked for without checkpoint.dir, which kiln launch defaults to
# <run folder>/ckpt (a plain kiln train refuses it).
write_mlp "$work/nodir.yaml" 4 "$work/unused/ckpt" 2
sed -i '/^  dir: /d' "$work/nodir.yaml"
grep -q "every_steps: 2" "$work/nodir.yaml" && ! grep -q "^  dir:" "$work/nodir.yaml" \
  || fail "nodir.yaml still names a checkpoint folder"
timeout 120 "$KILN" launch --config "$work/nodir.yaml" --run-dir "$work/nodir" --np 1 \
  > "$work/nodir.log" 2>&1 || { cat "$work/nodir.log"; fail "kiln launch without checkpoint.dir failed"; }
[ -f "$work/nodir/ckpt/step-00000004/MANIFEST.json" ] \
  || fail "no checkpoint of step 4 under the run folder: $(ls -R "$work/nodir" | head -20)"
echo "PASS: five bad set-ups refused; saves without checkpoint.dir went to <run folder>/ckpt"
