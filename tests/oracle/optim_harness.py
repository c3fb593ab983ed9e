"""Replays fresh random gradients through one of Ablate's optimizers and through a reference
implementation, and compares the parameters they arrive at.

A case names the optimizer, its learning rate, weight decay and optimizer_args as a sweep file
would, and a `reference` function that builds the reference optimizers over a dict of named
torch parameters. The harness writes the initial parameters and every step's gradients to a
safetensors file, runs `optimizer_replay` (trainer_lib/optim/optimizer_replay.cc) on it, steps
the reference over the same gradients, and returns the largest error relative to each
parameter's size (max |ours - reference| / max |reference|).

Parameters are named as Ablate's Qwen3 names them, because the name decides a parameter's role
(hidden matrix, embedding or head, gain): see trainer_lib/optim/optimizer.h.
"""

import os
import subprocess
import tempfile

import torch
from safetensors.torch import load_file, save_file

# Square, tall, wide and 1-D parameters in every role, plus one larger than the 1,024 that
# preconditioned optimizers use as max_precond_dim by default and one that 8-bit optimizers
# quantize (at least 4,096 elements, a multiple of 256). Layer 1 repeats a square, a tall and a
# wide matrix of layer 0, so that optimizers which batch same-shaped matrices batch here.
SHAPES = {
    "embed_tokens.weight": (61, 24),
    "layers.0.input_layernorm.weight": (24,),
    "layers.0.self_attn.q_proj.weight": (24, 24),
    "layers.0.self_attn.k_norm.weight": (8,),
    "layers.0.mlp.up_proj.weight": (40, 24),
    "layers.0.mlp.down_proj.weight": (24, 40),
    "layers.0.mlp.gate_proj.weight": (1040, 24),
    "layers.1.self_attn.o_proj.weight": (64, 128),  # 8,192 elements: 8-bit moments quantize it
    "layers.1.self_attn.q_proj.weight": (24, 24),
    "layers.1.mlp.up_proj.weight": (40, 24),
    "layers.1.mlp.down_proj.weight": (24, 40),
    "norm.weight": (24,),
    "lm_head.weight": (61, 24),
}


def random_case(shapes, steps, seed):
    """Initial parameters and per-step gradients, fresh random numbers at every step."""
    g = torch.Generator().manual_seed(seed)
    params = {n: torch.randn(s, generator=g) * 0.5 for n, s in shapes.items()}
    grads = [{n: torch.randn(s, generator=g) * (0.1 + step) for n, s in shapes.items()}
             for step in range(steps)]
    return params, grads


def run_ours(bin_dir, optimizer, lr, weight_decay, args, params, grads, reload_after=None,
             device="cpu"):
    """Final parameters after Ablate's optimizer took every step, by name."""
    with tempfile.TemporaryDirectory() as tmp:
        tensors = {f"param.{n}": p.contiguous() for n, p in params.items()}
        for step, step_grads in enumerate(grads):
            tensors.update({f"grad.{step}.{n}": g.contiguous() for n, g in step_grads.items()})
        case = os.path.join(tmp, "case.safetensors")
        save_file(tensors, case)
        out = os.path.join(tmp, "out")
        command = [os.path.join(bin_dir, "optimizer_replay"), "--in", case, "--out", out,
                   "--optimizer", optimizer, "--lr", repr(lr), "--weight_decay",
                   repr(weight_decay)]
        for key, value in args.items():
            text = str(value).lower() if isinstance(value, bool) else value  # YAML's true/false
            command += ["--arg", f"{key}={text}"]
        if reload_after is not None:
            command += ["--reload_after", str(reload_after)]
        command += ["--device", device]
        subprocess.run(command, check=True)
        final = load_file(os.path.join(out, "model.safetensors"))
        return {n[len("param."):]: t for n, t in final.items()}


def run_reference(reference, params, grads, device="cpu"):
    """Final parameters after the reference optimizers built by `reference(named)` stepped."""
    named = {n: torch.nn.Parameter(p.clone().to(device)) for n, p in params.items()}
    optimizers = reference(named)
    for step_grads in grads:
        for n, p in named.items():
            p.grad = step_grads[n].clone().to(device)
        for o in optimizers:
            o.step()
    return {n: p.detach().cpu() for n, p in named.items()}


def relative_errors(ours, reference):
    """max |a - b| / max |b| for each parameter."""
    assert ours.keys() == reference.keys(), (sorted(ours), sorted(reference))
    return {n: ((ours[n] - reference[n]).abs().max() / reference[n].abs().max()).item()
            for n in reference}


def check_case(bin_dir, name, optimizer, lr, weight_decay, args, reference, tolerance,
               shapes=SHAPES, steps=5, seed=0, error=None, device="cpu"):
    """Runs one case and raises AssertionError naming the parameters beyond `tolerance`;
    returns the largest error for the test's log. `error(ours, reference, initial)` measures
    one parameter's error (default: relative to the reference's largest entry). Both run on
    `device`."""
    params, grads = random_case(shapes, steps, seed)
    ours = run_ours(bin_dir, optimizer, lr, weight_decay, args, params, grads, device=device)
    reference_final = run_reference(reference, params, grads, device)
    if error is None:
        errors = relative_errors(ours, reference_final)
    else:
        errors = {n: error(ours[n], reference_final[n], params[n]) for n in params}
    worst = max(errors.values())
    print(f"{name}: largest relative error {worst:.2e} (tolerance {tolerance:.0e})")
    bad = {n: e for n, e in errors.items() if not e <= tolerance}
    assert not bad, f"{name}: beyond {tolerance}: {bad}"
    # The parameters moved: a silently skipped step would otherwise compare equal to nothing.
    moved = min((ours[n] - params[n]).abs().max().item() for n in params)
    assert moved > 0, f"{name}: some parameter did not move"
    return worst


def check_reload(bin_dir, name, optimizer, lr, weight_decay, args, shapes=SHAPES, steps=5):
    """Save after step 2, load into a fresh optimizer, continue: bit-identical parameters."""
    params, grads = random_case(shapes, steps, seed=1)
    straight = run_ours(bin_dir, optimizer, lr, weight_decay, args, params, grads)
    reloaded = run_ours(bin_dir, optimizer, lr, weight_decay, args, params, grads, reload_after=2)
    different = [n for n in straight if not torch.equal(straight[n], reloaded[n])]
    assert not different, f"{name}: save, load and continue changed {different}"
    print(f"{name}: save/load/continue bit-identical")


def is_hidden_matrix(name, p):
    """trainer_lib/optim/optimizer.h: IsHiddenMatrix."""
    return p.dim() == 2 and "embed_tokens" not in name and "lm_head" not in name


def decay_groups(params, weight_decay, **options):
    """Ablate's groups: weight decay on matrices, none on norms, gains and biases (1-D)."""
    return [dict(params=[p for p in params if p.dim() >= 2], weight_decay=weight_decay, **options),
            dict(params=[p for p in params if p.dim() < 2], weight_decay=0.0, **options)]
