"""Prints scripts/device-train-bench.sh's table: each run's tokens/s, model TFLOP/s, MFU and
peak allocated memory, and each of Ablate's runs against the peers measured at the same model
and shape: its tokens/s over the fastest peer's and over the compiled plain-PyTorch peer's
(pt-compile), its peak memory over the leanest peer's.

    train_bench_table.py ROWS_FILE [CEILING_TFLOPS]   (790: an 8192^3 bf16 matmul on an H200)

Each line of ROWS_FILE is one run, as scripts/bench/peer_shape.py prints a peer's:
    WHO MODEL SEQ BATCH CKPT TOKENS_PER_S PEAK_BYTES PARAMS
    WHO MODEL SEQ BATCH CKPT FAILED|SKIPPED REASON...
WHO starting with "ablate" is one of Ablate's runs, anything else a peer. Model FLOPs per token
are peer_shape.flops_per_token of the model's shape for every row, so TFLOP/s ratios equal
tokens/s ratios; PARAMS is what the run reports, and a run whose count is not the shape's is
marked, since it did not train the model the peers did.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer_shape import SHAPES, flops_per_token, parameters  # noqa: E402

COMPILED_PEER = "pt-compile"


class Row:
    def __init__(self, line):
        fields = line.split()
        self.who, self.model = fields[0], fields[1]
        self.seq, self.batch, self.ckpt = int(fields[2]), int(fields[3]), fields[4] == "1"
        self.measured = fields[5] not in ("FAILED", "SKIPPED")
        if self.measured:
            self.tokens_per_s, self.peak, self.params = map(float, fields[5:8])
        else:
            self.outcome = " ".join(fields[5:])

    @property
    def ours(self):
        return self.who.startswith("ablate")

    @property
    def key(self):
        return (self.model, self.seq, self.batch, self.ckpt)


def ratio(value, reference, name):
    return f"{value / reference:.2f}x {name}"


def comparisons(row, peers):
    """vs the fastest peer, vs the compiled peer, peak vs the leanest peer ("" where none)."""
    same = [p for p in peers if p.key == row.key]
    if not row.ours or not same:
        return "", "", ""
    fastest = max(same, key=lambda p: p.tokens_per_s)
    leanest = min(same, key=lambda p: p.peak)
    compiled = [p for p in same if p.who == COMPILED_PEER]
    return (ratio(row.tokens_per_s, fastest.tokens_per_s, fastest.who),
            f"{row.tokens_per_s / compiled[0].tokens_per_s:.2f}x" if compiled else "",
            ratio(row.peak, leanest.peak, leanest.who))


def table(rows, ceiling):
    peers = [r for r in rows if r.measured and not r.ours]
    header = (f"{'run':<18} {'model':<11} {'seq x batch':>11} {'ckpt':>4} {'tokens/s':>9} "
              f"{'TFLOP/s':>7} {'MFU':>6} {'peak GiB':>8}  {'vs fastest peer':<24} "
              f"{'vs ' + COMPILED_PEER:<14} {'peak vs leanest peer'}")
    lines = [header]
    for r in rows:
        start = (f"{r.who:<18} {r.model:<11} {f'{r.seq:,} x {r.batch}':>11} "
                 f"{'yes' if r.ckpt else 'no':>4}")
        if not r.measured:
            lines.append(f"{start} {r.outcome}")
            continue
        tflops = r.tokens_per_s * flops_per_token(SHAPES[r.model], r.seq) / 1e12
        fastest, compiled, leanest = comparisons(r, peers)
        line = (f"{start} {r.tokens_per_s:>9,.0f} {tflops:>7.0f} {100 * tflops / ceiling:>5.1f}% "
                f"{r.peak / 2**30:>8.2f}  {fastest:<24} {compiled:<14} {leanest:<24}").rstrip()
        expected = parameters(SHAPES[r.model])
        if r.params != expected:
            line += f"  ({r.params:,.0f} parameters, not the shape's {expected:,})"
        lines.append(line)
    return "\n".join(lines)


def main(argv):
    with open(argv[0]) as f:
        rows = [Row(line) for line in f if line.strip()]
    print(table(rows, float(argv[1]) if len(argv) > 1 else 790.0))


if __name__ == "__main__":
    main(sys.argv[1:])
