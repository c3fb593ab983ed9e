"""How well a data-parallel step hides its gradient exchange, from a profiler trace.

Reads the trace.json that `ablate-train --profile-dir` (or torch.profiler) writes and prints,
per step of the recorded window: the window's wall time on the device, the time compute
kernels ran, the time NCCL kernels ran, the part of that communication no compute kernel ran
beside (exposed), and the time the device ran nothing (idle).

The longest idle gaps follow, each with the kernels around it and the host's longest
operators during it, which say what the device was waiting for.

Usage: python3 scripts/bench/overlap.py TRACE_JSON [STEPS [GAPS]]   (2 steps, 5 gaps)
"""
import json
import sys


def union(intervals):
    """Sorted, merged (start, end) pairs."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def length(intervals):
    return sum(end - start for start, end in intervals)


def intersect(a, b):
    """The total length where merged interval lists a and b overlap."""
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            total += end - start
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def main():
    trace = json.load(open(sys.argv[1]))
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    gaps_to_show = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    compute, comm, kernels, host = [], [], [], []
    for e in events:
        if e.get("ph") != "X":
            continue
        interval = (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)))
        if e.get("cat") == "cpu_op":
            host.append((interval, e.get("name", "")))
            continue
        if e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        kernels.append((interval, e.get("name", "")))
        (comm if "nccl" in e.get("name", "").lower() else compute).append(interval)
    if not compute:
        sys.exit("no device kernels in the trace (a CPU run?)")
    compute, comm = union(compute), union(comm)
    both = union(compute + comm)
    window = both[-1][1] - both[0][0]
    overlap = intersect(compute, comm)
    ms = lambda us: us / 1000.0 / steps
    print(f"per step (us -> ms, {steps} steps): window {ms(window):.1f} ms, compute "
          f"{ms(length(compute)):.1f}, communication {ms(length(comm)):.1f} of which exposed "
          f"{ms(length(comm) - overlap):.1f}, idle {ms(window - length(both)):.1f}")
    gaps = sorted(((b[0] - a[1], a[1], b[0]) for a, b in zip(both, both[1:])), reverse=True)
    short = lambda name: name[:70]
    for gap, start, end in gaps[:gaps_to_show]:
        before = max((k for k in kernels if k[0][1] <= start + 0.5), default=((0, 0), "?"),
                     key=lambda k: k[0][1])
        after = min((k for k in kernels if k[0][0] >= end - 0.5), default=((0, 0), "?"),
                    key=lambda k: k[0][0])
        during = sorted(((min(e, end) - max(s, start), n) for (s, e), n in host
                         if s < end and e > start), reverse=True)[:3]
        print(f"  idle {gap / 1000:.2f} ms after {short(before[1])} | before {short(after[1])}"
              " | host: " + "; ".join(f"{n} {d / 1000:.2f} ms" for d, n in during))


if __name__ == "__main__":
    main()
