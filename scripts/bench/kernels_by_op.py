"""Which host operator each kernel's device time comes from, from a profiler trace.

Reads the trace.json that `ablate-train --profile-dir` (or torch.profiler) writes. Each kernel,
copy or fill is tied to the host call that launched it (a runtime or driver API call) by its
correlation id, and that call to
the operators running on its thread at that moment: the autograd node whose backward it is
("forward" outside backward) and the innermost operator. Prints the device time per step of
the largest (node, operator, kernel) triples, optionally only kernels whose name matches a
regular expression, which says, for instance, which operators make the copies and adds.

Usage: python3 scripts/bench/kernels_by_op.py TRACE_JSON [STEPS [ROWS [KERNEL_REGEX]]]
       (2 steps, 30 rows, every kernel)
"""
import bisect
import collections
import json
import re
import sys

DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
BACKWARD = "autograd::engine::evaluate_function: "


def parents(ops):
    """For ops sorted by (start, -end), properly nested, each one's enclosing op index or -1."""
    parent, open_ops = [], []
    for i, (start, end, _) in enumerate(ops):
        # An op that ended by this one's start is done, unless both start at once (an op of
        # no duration holding it).
        while open_ops and ops[open_ops[-1]][1] <= start and ops[open_ops[-1]][0] < start:
            open_ops.pop()
        parent.append(open_ops[-1] if open_ops else -1)
        open_ops.append(i)
    return parent


def enclosing(ops, starts, parent, ts):
    """The names of the operators of one thread whose interval holds ts, outermost first."""
    i = bisect.bisect_right(starts, ts) - 1
    while i >= 0 and ops[i][1] < ts:  # the op that holds ts, if any, encloses this one
        i = parent[i]
    names = []
    while i >= 0:
        names.append(ops[i][2])
        i = parent[i]
    return names[::-1]


def main():
    trace = json.load(open(sys.argv[1]))
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    pattern = re.compile(sys.argv[4]) if len(sys.argv) > 4 else None
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    ops, launches, device = collections.defaultdict(list), {}, []
    for e in events:
        if e.get("ph") != "X":
            continue
        cat, args = e.get("cat"), e.get("args", {})
        if cat == "cpu_op":
            ops[e["tid"]].append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"]))
        elif cat in ("cuda_runtime", "cuda_driver") and "correlation" in args:
            launches[args["correlation"]] = (e["tid"], float(e["ts"]))
        elif cat in DEVICE_CATEGORIES:
            device.append((e.get("name", ""), float(e.get("dur", 0)), args.get("correlation")))
    if not device:
        sys.exit("no device kernels in the trace (a CPU run?)")
    for thread_ops in ops.values():
        thread_ops.sort(key=lambda op: (op[0], -op[1]))
    starts = {tid: [s for s, _, _ in thread_ops] for tid, thread_ops in ops.items()}
    parent = {tid: parents(thread_ops) for tid, thread_ops in ops.items()}
    totals = collections.Counter()
    for name, dur, correlation in device:
        if pattern and not pattern.search(name):
            continue
        node, op = "?", "?"
        if correlation in launches:
            tid, ts = launches[correlation]
            stack = enclosing(ops.get(tid, []), starts.get(tid, []), parent.get(tid, []), ts)
            node = next((n[len(BACKWARD):] for n in reversed(stack) if n.startswith(BACKWARD)),
                        "forward")
            op = stack[-1] if stack else "?"
        totals[(node, op, name[:60])] += dur
    total = sum(totals.values())
    print(f"device time per step by (autograd node, operator, kernel): {total / 1e3 / steps:.1f}"
          f" ms{' matching ' + pattern.pattern if pattern else ''}")
    for (node, op, name), dur in totals.most_common(rows):
        print(f"  {dur / 1e3 / steps:7.2f} ms  {node[:34]:34} {op[:34]:34} {name}")


if __name__ == "__main__":
    main()
