# Ranks started with different configs fail together at start-up, with one message naming the
# differing item, the ranks and their values, before any tensor moves.
source "$(dirname "$0")/common.bash"
write_config 20 30

set +e
timeout 120 "$KILN_MPIRUN" -np 1 "$KILN" train --config "$work/config.yaml" --set train.seed=1 \
  : -np 1 "$KILN" train --config "$work/config.yaml" --set train.seed=2 > "$work/out.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 124 ] || fail "the job hung"
[ "$rc" -ne 0 ] || fail "ranks with different configs trained"
grep -q "disagree at start-up" "$work/out.txt" || fail "no start-up agreement error"
grep -Eq "config hash: rank 0 = [0-9a-f]{16}; rank 1 = [0-9a-f]{16};" "$work/out.txt" \
  || fail "the error does not name both ranks and their config hashes"
if grep -q "model:" "$work/out.txt"; then fail "the model agreed but was reported"; fi
if grep -q "step .*samples/s" "$work/out.txt"; then fail "training started despite the mismatch"; fi
echo "PASS: start-up mismatch reported"
grep -A1 "disagree at start-up" "$work/out.txt" | head -4
