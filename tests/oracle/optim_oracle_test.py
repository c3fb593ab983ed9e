"""Ablate's optimizers against their references, on CPU in fp32 (tests/oracle/optim_harness.py
says how a case runs).

- adamw: torch.optim.AdamW with the same groups (no decay on 1-D parameters), to fp32 rounding.
- muon: torch.optim.Muon on the hidden matrices and torch.optim.AdamW on the embedding, the
  head and the 1-D parameters, to fp32 rounding (Newton-Schulz runs in bf16 in both, with the
  same operations, so its rounding is shared rather than compared).
- adamw8bit: torchao's torchao.optim.AdamW8bit (run eagerly: its torch.compile of the step
  changes no arithmetic and needs a compiler toolchain at test time) to fp32 rounding; and
  torch.optim.AdamW in fp32 within QUANT_BOUND (below), the cost of 8-bit moments.
- every optimizer: saving its state after step 2 and loading it into a fresh optimizer gives
  the same parameters as an uninterrupted run, bit for bit.

Usage: optim_oracle_test.py TESTS_DIR  (the folder holding optimizer_replay).
"""

import sys

import torch

# torchao compiles its per-parameter step with torch.compile; eager gives the same operations.
torch.compile = lambda fn=None, **kwargs: fn if fn is not None else (lambda f: f)
from torchao.optim import AdamW8bit  # noqa: E402 (after the patch above)

import optim_harness as h

# fp32 rounding over five steps of parameters of order one: a few units in the last place of
# the largest entry.
FP32 = 1e-6


def adamw_reference(lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    def build(named):
        return [torch.optim.AdamW(h.decay_groups(list(named.values()), weight_decay), lr=lr,
                                  betas=betas, eps=eps)]
    return build


def muon_reference(lr, weight_decay, adam_lr_ratio=1.0, adam_betas=(0.9, 0.95), **muon_args):
    def build(named):
        hidden = [p for n, p in named.items() if h.is_hidden_matrix(n, p)]
        rest = [p for n, p in named.items() if not h.is_hidden_matrix(n, p)]
        return [torch.optim.Muon(hidden, lr=lr, weight_decay=weight_decay, **muon_args),
                torch.optim.AdamW(h.decay_groups(rest, weight_decay), lr=lr * adam_lr_ratio,
                                  betas=adam_betas, eps=1e-8)]
    return build


# 8-bit moments against fp32 ones: each step rounds m to the nearest of 256 dynamic-map values
# scaled by its block's largest |m| (half a map step: at most 0.7% of that largest value) and v
# likewise (at most 7% of v at the bottom of a decade). Adam moves an element by at most about
# lr per step, so the error is measured in units of lr * steps, the largest total movement;
# the bound is 5% of it (measured: MEASURED_8BIT below).
QUANT_BOUND = 0.05


def movement_error(lr, steps):
    def error(ours, reference, initial):
        return ((ours - reference).abs().max() / (lr * steps)).item()
    return error


def adamw8bit_reference(lr, weight_decay, betas=(0.9, 0.95), eps=1e-8):
    def build(named):
        return [AdamW8bit(h.decay_groups(list(named.values()), weight_decay), lr=lr, betas=betas,
                          eps=eps, block_size=256)]
    return build


def main(bin_dir):
    h.check_case(bin_dir, "adamw", "adamw", 1e-2, 0.1, {"beta2": 0.999},
                 adamw_reference(1e-2, 0.1), FP32)
    h.check_case(bin_dir, "adamw betas eps", "adamw", 3e-3, 0.5,
                 {"beta1": 0.8, "beta2": 0.95, "eps": 1e-6},
                 adamw_reference(3e-3, 0.5, (0.8, 0.95), 1e-6), FP32)
    h.check_reload(bin_dir, "adamw", "adamw", 1e-2, 0.1, {})

    h.check_case(bin_dir, "muon", "muon", 2e-2, 0.1, {"adam_lr_ratio": 0.25},
                 muon_reference(2e-2, 0.1, adam_lr_ratio=0.25), FP32)
    h.check_case(bin_dir, "muon plain momentum, match_rms_adamw, 3 steps", "muon", 1e-2, 0.0,
                 {"nesterov": False, "momentum": 0.9, "ns_steps": 3, "match_rms_adamw": True,
                  "adam_beta2": 0.99},
                 muon_reference(1e-2, 0.0, adam_betas=(0.9, 0.99), nesterov=False, momentum=0.9,
                                ns_steps=3, adjust_lr_fn="match_rms_adamw"), FP32)
    h.check_reload(bin_dir, "muon", "muon", 2e-2, 0.1, {})

    h.check_case(bin_dir, "adamw8bit vs torchao AdamW8bit", "adamw8bit", 1e-2, 0.1, {},
                 adamw8bit_reference(1e-2, 0.1), FP32)
    h.check_case(bin_dir, "adamw8bit vs float AdamW", "adamw8bit", 1e-2, 0.1,
                 {"beta2": 0.999}, adamw_reference(1e-2, 0.1), QUANT_BOUND,
                 error=movement_error(1e-2, 5))
    h.check_reload(bin_dir, "adamw8bit", "adamw8bit", 1e-2, 0.1, {})
    print("PASS")


if __name__ == "__main__":
    main(sys.argv[1])
