"""Checks a merged Kiln trace (kiln trace merge) of a data-parallel run.

  check_trace.py MERGED.json --ranks N --steps FIRST-LAST --overlap on|off [--skew-us S]

Asserts: a named process row per rank with "main" and "comm" threads; every traced step's
gradient all-reduce appears on every rank with the same sequence number (with overlap on: the
same several buckets per step, issued in bucket order; with it off: one all-reduce of the whole
buffer); each all-reduce has its enqueue-to-completion pair; the ranks' spans of one all-reduce
intersect on the merged time axis within the clock bound the trace states (no rank can finish a
collective before every rank has entered it); and gradient all-reduces run during backward on
every rank when overlap is on, never when it is off. With --skew-us (KILN_DEBUG_TRACE_SKEW_US:
rank r's clock runs r * S us ahead), the measured offsets must find that skew within their bound. Prints a summary line; exits 1 on failure.
"""
import argparse
import collections
import json
import sys


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("merged")
    ap.add_argument("--ranks", type=int, required=True)
    ap.add_argument("--steps", required=True)
    ap.add_argument("--overlap", choices=["on", "off"], required=True)
    ap.add_argument("--skew-us", type=float, default=0.0)
    a = ap.parse_args()
    first, last = (int(x) for x in a.steps.split("-"))
    steps = set(range(first, last + 1))
    trace = json.load(open(a.merged))
    events = trace["traceEvents"]
    other = trace["otherData"]["kiln"]
    if other["ranks"] != a.ranks:
        fail(f"otherData says {other['ranks']} ranks, expected {a.ranks}")
    clock_error = other["clock_error_us"]
    for r in range(a.ranks):
        off, want = other["clock_offset_us"][r], r * a.skew_us
        if abs(off - want) > clock_error[r] + 1e-3:
            fail(f"rank {r}'s clock offset was measured as {off:.3f} us +- {clock_error[r]:.3f}, "
                 f"but its clock was set {want:.3f} us ahead")

    # Process and thread rows.
    procs, threads = {}, collections.defaultdict(dict)
    for e in events:
        if e["ph"] == "M" and e["name"] == "process_name":
            procs[e["pid"]] = e["args"]["name"]
        if e["ph"] == "M" and e["name"] == "thread_name":
            threads[e["pid"]][e["args"]["name"]] = e["tid"]
    for r in range(a.ranks):
        if procs.get(r) != f"rank {r}":
            fail(f"process {r} is named {procs.get(r)!r}, expected 'rank {r}'")
        for t in ("main", "comm"):
            if t not in threads[r]:
                fail(f"rank {r} has no '{t}' thread row (rows: {sorted(threads[r])})")

    # Gradient all-reduces: (step, bucket) -> (seq, span) per rank.
    grads = collections.defaultdict(dict)
    asyncs = collections.defaultdict(dict)  # (rank, seq) -> {ph: ts}
    backward = collections.defaultdict(list)
    for e in events:
        pid = e["pid"]
        if e.get("cat") == "gradients" and e["name"] == "all_reduce":
            if e["ph"] == "X":
                ar = e["args"]
                if e["tid"] != threads[pid]["comm"]:
                    fail(f"rank {pid}: a gradient all-reduce on thread {e['tid']}, not comm")
                key = (ar["step"], ar["bucket"])
                if key in grads[pid]:
                    fail(f"rank {pid}: step {key[0]} bucket {key[1]} reduced twice")
                grads[pid][key] = (ar["seq"], e["ts"], e["ts"] + e["dur"], ar["bytes"])
            elif e["ph"] in "be":
                asyncs[(pid, e["id"])][e["ph"]] = e["ts"]
        if e.get("cat") == "layer" and e["name"].startswith("backward") and e["ph"] == "X":
            if e["tid"] != threads[pid]["main"]:
                fail(f"rank {pid}: backward span on thread {e['tid']}, not main")
            backward[pid].append((e["ts"], e["ts"] + e["dur"]))

    ref = grads[0]
    if not ref:
        fail("rank 0 has no gradient all-reduce events")
    if {k[0] for k in ref} != steps:
        fail(f"gradient all-reduces cover steps {sorted({k[0] for k in ref})}, expected "
             f"{sorted(steps)}")
    for r in range(1, a.ranks):
        if set(grads[r]) != set(ref):
            fail(f"rank {r} reduced (step, bucket) {sorted(set(grads[r]) ^ set(ref))} "
                 f"that rank 0 did not, or the other way round")
        for key, (seq, *_rest) in ref.items():
            if grads[r][key][0] != seq:
                fail(f"step {key[0]} bucket {key[1]}: sequence number {grads[r][key][0]} on "
                     f"rank {r}, {seq} on rank 0")
            if grads[r][key][3] != ref[key][3]:
                fail(f"step {key[0]} bucket {key[1]}: {grads[r][key][3]} bytes on rank {r}, "
                     f"{ref[key][3]} on rank 0")

    by_step = collections.defaultdict(dict)
    for (step, bucket), v in ref.items():
        by_step[step][bucket] = v[0]
    plans = {tuple(sorted(b)) for b in by_step.values()}
    if len(plans) != 1:
        fail(f"steps reduced different buckets: {plans}")
    plan = plans.pop()
    if a.overlap == "on":
        if plan != tuple(range(len(plan))) or len(plan) < 3:
            fail(f"buckets per step are {plan}, expected 0..B-1 with B >= 3")
        for step, seqs in by_step.items():
            if [seqs[b] for b in plan] != list(range(seqs[0], seqs[0] + len(plan))):
                fail(f"step {step}: buckets were not issued in order: {seqs}")
    elif plan != (-1,):
        fail(f"with overlap off each step should reduce the whole buffer once; got {plan}")

    # Enqueue-to-completion pairs, and the collective's spans meeting across ranks.
    for r in range(a.ranks):
        for key, (seq, start, end, _) in grads[r].items():
            pair = asyncs.get((r, seq), {})
            if "b" not in pair or "e" not in pair:
                fail(f"rank {r}: all-reduce #{seq} has no enqueue/completion pair")
            if not pair["b"] <= start + 1e-3 or not pair["e"] >= end - 1e-3:
                fail(f"rank {r}: all-reduce #{seq} ran [{start}, {end}] outside its "
                     f"enqueue-to-completion span [{pair['b']}, {pair['e']}]")
    worst_gap = 0.0
    for r in range(1, a.ranks):
        bound = clock_error[r] + clock_error[0] + 2e-3  # plus the printed rounding
        for key, (_, s0, e0, _) in ref.items():
            _, s1, e1, _ = grads[r][key]
            gap = max(s1 - e0, s0 - e1)  # > 0: the spans miss each other
            worst_gap = max(worst_gap, gap)
            if gap > bound:
                fail(f"step {key[0]} bucket {key[1]}: on the merged time axis rank {r}'s "
                     f"all-reduce [{s1:.3f}, {e1:.3f}] and rank 0's [{s0:.3f}, {e0:.3f}] miss "
                     f"each other by {gap:.3f} us, more than the clock bound {bound:.3f} us")

    # Overlap with backward. Each all-reduce from enqueue to completion: with overlap on, every
    # bucket is issued from inside a layer's backward, so each such span overlaps backward on
    # every rank; with it off, none does. The all-reduce running (its span on the comm thread)
    # while backward computes depends on the comm thread getting a core, so it is counted, and
    # required of at least one rank.
    issued, running = {}, {}
    for r in range(a.ranks):
        spans = sorted(backward[r])
        if not spans:
            fail(f"rank {r} has no backward layer spans")
        during = lambda s, e: any(bs < e and s < be for bs, be in spans)  # noqa: E731
        issued[r] = sum(during(asyncs[(r, v[0])]["b"], asyncs[(r, v[0])]["e"])
                        for v in grads[r].values())
        running[r] = sum(during(v[1], v[2]) for v in grads[r].values())
    n = len(ref)
    if a.overlap == "on":
        if min(issued.values()) != n:
            fail(f"overlap on, but of {n} gradient all-reduces per rank only {issued} were in "
                 f"flight during backward")
        if max(running.values()) == 0:
            fail(f"overlap on, but no gradient all-reduce ran during backward on any rank")
    elif max(issued.values()) > 0 or max(running.values()) > 0:
        fail(f"overlap off, but gradient all-reduces were in flight during backward: "
             f"{issued} (running: {running})")
    print(f"PASS: {a.ranks} ranks, steps {first}-{last}, {len(plan)} bucket(s) per step with "
          f"matching sequence numbers; of {n} gradient all-reduces per rank, in flight during "
          f"backward {issued}, running during backward {running}; cross-rank spans meet "
          f"within the clock bound (worst gap {worst_gap:.1f} us)")


if __name__ == "__main__":
    main()
