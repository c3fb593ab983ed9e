"""Reads the lines of optimizer_benchmark and optimizers_reference.py (one run, both in the same
file) and prints the Markdown table of docs/benchmarks.md: each of Ablate's optimizers beside
its reference, the ratio of the two, the ratio to torch's fused AdamW on the same model, and the
share of one training step.

    optimizers_table.py FILE [--step_ms 416]

--step_ms is a full Qwen3-0.6B training step at 4,096 x 4 tokens on the same GPU (416 ms on an
H200, docs/benchmarks.md); the share is given for the 0.6B rows only, as in that table.
"""

import argparse
import re

REFERENCES = {
    "adamw": ("torch_adamw_fused", "torch.optim.AdamW, fused"),
    "muon": ("torch_muon", "torch.optim.Muon + fused AdamW"),
    "soap": ("po_soap", "pytorch-optimizer SOAP"),
    "shampoo": ("po_shampoo", "pytorch-optimizer ScalableShampoo"),
}
OURS = ["adamw", "adamw8bit", "muon", "soap", "shampoo", "soap4bit"]
LINE = re.compile(r"(\w+)=(\"[^\"]*\"|\S+)")


def read(path):
    """{(model, tf32, optimizer): ms or error text}, the last line of each winning."""
    results = {}
    with open(path) as f:
        for line in f:
            fields = {k: v.strip('"') for k, v in LINE.findall(line)}
            if "optimizer" not in fields or "model" not in fields:
                continue
            key = (fields["model"], fields.get("tf32", "0"), fields["optimizer"])
            if "ms_per_step" in fields:
                results[key] = float(fields["ms_per_step"])
            elif "error" in fields:
                results[key] = fields["error"][:60]
    return results


def cell(value):
    if value is None:
        return ""
    return f"{value:,.3g}" if isinstance(value, float) and value < 100 else (
        f"{value:,.0f}" if isinstance(value, float) else value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--step_ms", type=float, default=416.0)
    args = parser.parse_args()
    results = read(args.file)
    print("| model | tf32 | optimizer | ours (ms/step) | reference | reference (ms/step) "
          "| ratio | × fused AdamW | share of a 0.6B step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    runs = sorted({(m, t) for m, t, _ in results}, key=lambda r: (r[1], r[0]))
    for model, tf32 in runs:
        adamw = results.get((model, "0", "torch_adamw_fused"))
        for name in OURS:
            ours = results.get((model, tf32, name))
            if ours is None:
                continue
            ref_key, ref_name = REFERENCES.get(name, (None, "(none)"))
            ref = results.get((model, tf32, ref_key)) if ref_key else None
            both = isinstance(ours, float) and isinstance(ref, float)
            timed = isinstance(ours, float)
            ratio = f"{ours / ref:.2f}" if both else ""
            vs_adamw = f"{ours / adamw:.1f}" if timed and isinstance(adamw, float) else ""
            share = (f"{100 * ours / args.step_ms:.1f}%"
                     if timed and model == "qwen3-0.6b" else "")
            print(f"| {model} | {'on' if tf32 == '1' else 'off'} | {name} | {cell(ours)} "
                  f"| {ref_name if ref_key else ''} | {cell(ref)} | {ratio} | {vs_adamw} "
                  f"| {share} |")


if __name__ == "__main__":
    main()
