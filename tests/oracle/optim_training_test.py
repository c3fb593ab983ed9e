"""Each optimizer trains: every cell of examples/optimizers.yaml (all six optimizers), run by
ablate-train on CPU (same data, seed and steps; each optimizer at the learning rate and
arguments of its override), ends well below the loss it starts from. Long: a few minutes on two
cores.

Usage: optim_training_test.py BIN_DIR EXAMPLE_YAML  (BIN_DIR holds ablate-train).
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

OPTIMIZERS = {"adamw", "adamw8bit", "muon", "soap", "shampoo", "soap4bit"}
STEPS = 60
# The tiny model starts near ln(vocab) ~ 5.5 on the byte corpus; trained it drops well below.
# Every step is logged, so the first loss is the untrained model's, the same for every
# optimizer; measured from the fifth step's, Shampoo, fast in its first steps, passed by 1%.
MAX_FINAL_RATIO = 0.8


def number(value):
    """YAML 1.1 reads 3e-3 (no dot) as a string; the sweep reads it as a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def cell_config(spec, optimizer):
    """The cell's TrainConfig as the sweep would resolve it: fixed, then matching overrides."""
    config = {"optimizer": optimizer}
    config.update(spec.get("fixed", {}))
    for override in spec.get("overrides", []):
        wanted = override["when"]["optimizer"]
        if optimizer in (wanted if isinstance(wanted, list) else [wanted]):
            config.update({k: number(v) for k, v in override["set"].items()})
    args = {}
    for key in [k for k in config if k.startswith("optimizer_args.")]:
        value = config.pop(key)
        args[key[len("optimizer_args."):]] = float(value) if not isinstance(value, bool) else (
            1.0 if value else 0.0)
    config.update(optimizer_args=args, steps=STEPS, warmup_steps=5, log_every=1,
                  batch_size=8, dataset="builtin:tiny-corpus", precision="fp32",
                  cpu_threads=1, eval_every=0, eval_batches=2, checkpoint_every=0,
                  attention="dense", weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1)
    return config


def train(bin_dir, config):
    with tempfile.TemporaryDirectory() as tmp:
        job = os.path.join(tmp, "job.json")
        with open(job, "w") as f:
            json.dump({"job_id": "t", "sweep_id": "t", "checkpoint_dir": tmp, "config": config}, f)
        run = subprocess.run([os.path.join(bin_dir, "ablate-train"), "train", "--job", job],
                             capture_output=True, text=True)
    losses = [float(m) for m in re.findall(r"^step \d+/\d+ loss ([0-9.]+)", run.stdout, re.M)]
    return run, losses


def main(bin_dir, example):
    with open(example) as f:
        spec = yaml.safe_load(f)
    assert set(spec["grid"]["optimizer"]) == OPTIMIZERS, spec["grid"]["optimizer"]
    for optimizer in spec["grid"]["optimizer"]:
        run, losses = train(bin_dir, cell_config(spec, optimizer))
        assert run.returncode == 0, f"{optimizer}: {run.stdout}\n{run.stderr}"
        assert len(losses) >= 2, f"{optimizer}: no losses in {run.stdout}"
        print(f"{optimizer}: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
        assert losses[-1] < MAX_FINAL_RATIO * losses[0], f"{optimizer} did not train: {losses}"
    print("PASS")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
