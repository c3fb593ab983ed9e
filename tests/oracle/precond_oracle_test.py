"""Ablate's preconditioned optimizers against their references, on CPU
(tests/oracle/optim_harness.py says how a case runs).

- soap: pytorch-optimizer 4.1.0's SOAP (a port of the paper's code), with the same groups, over
  eight steps (two basis refreshes at frequency 3), to fp32 rounding, with and without
  precondition_1d and normalize_grads, a dimension above max_precond_dim included (see the
  precondition_1d case for the one vector left out).
- soap: Emerging-Optimizers 0.3.0's SOAP where the two references coincide. They differ in
  three places: Emerging-Optimizers adds a step's gradient to the Kronecker factors before
  preconditioning it (the paper's code after, and skips its first step's update), puts eps
  after the bias correction, and decays weights before the update. So the case uses frequency
  1 (it refreshes every step), no bias correction, no weight decay, 2-D parameters only (it
  takes no others), and gradients +-G of one fixed G per parameter: their factors G G^T and
  G^T G are then the same whichever step added them. In the eigenbasis such a gradient is
  exactly diagonal, and its off-diagonal entries are rounding noise, which eps=1e-8 would
  divide by a second moment of the same size; eps=0.3 keeps that noise at rounding level.
- shampoo: pytorch-optimizer 4.1.0's ScalableShampoo with use_svd, an RMSprop graft, no shape
  interpretation or blocking, decoupled weight decay, with and without
  moving_average_for_momentum, in float64: the inverse fourth root of a
  float32 factor with eigenvalues near matrix_eps amplifies rounding (ours takes it by eigh,
  the reference by SVD), so float64 compares the algorithm, to 1e-9 (FP64 says why).
- shampoo: the same with use_svd off, the reference's default (its coupled Newton iteration for
  the inverse roots), in float32, to fp32 rounding: 4.9e-7 measured, on the square matrices,
  whose two factors the reference accumulates stacked (baddbmm) where ours adds each (the
  others agree bit for bit without moving_average_for_momentum).
- every optimizer, soap4bit included: save, load and continue is bit-identical.

Usage: precond_oracle_test.py TESTS_DIR  (the folder holding optimizer_replay).
"""

import os
import sys
import typing

import torch
import typing_extensions

# Emerging-Optimizers imports typing.override (Python 3.12); 3.11 has it in typing_extensions.
typing.override = typing_extensions.override
# Its update-RMS clip is wrapped in torch.compile, which needs a compiler toolchain; with
# max_update_rms 0 it returns at once, so eager changes nothing.
os.environ["TORCHDYNAMO_DISABLE"] = "1"
from emerging_optimizers.soap import SOAP as EmergingSOAP  # noqa: E402
from pytorch_optimizer import SOAP, ScalableShampoo  # noqa: E402

import optim_harness as h  # noqa: E402

FP32 = 1e-6
# float64 rounding, amplified: a 61-row factor after eight steps of 24 columns still has
# eigenvalues at the decayed matrix_eps ridge, and their inverse fourth root multiplies the
# 1e-16 differences between eigh and SVD; measured 1.6e-10 on those parameters, 1e-13 and less
# on the others.
FP64 = 1e-9
STEPS = 8


def soap_reference(lr, weight_decay, **options):
    def build(named):
        return [SOAP(h.decay_groups(list(named.values()), weight_decay), lr=lr, **options)]
    return build


def check_emerging(bin_dir):
    shapes = {n: s for n, s in h.SHAPES.items() if len(s) == 2 and max(s) <= 128}
    g = torch.Generator().manual_seed(3)
    params = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    base = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    signs = (torch.randint(0, 2, (STEPS + 1,), generator=g) * 2 - 1).tolist()
    grads = [{n: sign * b for n, b in base.items()} for sign in signs]
    args = {"beta1": 0.9, "beta2": 0.97, "shampoo_beta": 0.97, "eps": 0.3,
            "precondition_frequency": 1, "correct_bias": False}
    ours = h.run_ours(bin_dir, "soap", 1e-2, 0.0, args, params, grads)

    def build(named):
        return [EmergingSOAP(list(named.values()), lr=1e-2, betas=(0.9, 0.97), shampoo_beta=0.97,
                             eps=0.3, weight_decay=0.0, correct_bias=False,
                             correct_shampoo_beta_bias=False, fp32_matmul_prec="highest",
                             qr_fp32_matmul_prec="highest")]
    # Our first step only gathers the factors, which +-G leaves the same: the reference takes
    # the other steps.
    reference = h.run_reference(build, params, grads[1:])
    errors = h.relative_errors(ours, reference)
    worst = max(errors.values())
    print(f"soap vs Emerging-Optimizers SOAP: largest relative error {worst:.2e}")
    assert worst <= FP32, errors
    assert min((ours[n] - params[n]).abs().max().item() for n in params) > 0


def shampoo_reference(lr, weight_decay, betas, start, frequency, max_dim, moving_average=False,
                      use_svd=True):
    def build(named):
        return [ScalableShampoo(
            h.decay_groups(list(named.values()), weight_decay), lr=lr, betas=betas,
            moving_average_for_momentum=moving_average, decoupled_weight_decay=True,
            decoupled_learning_rate=True, start_preconditioning_step=start,
            preconditioning_compute_steps=frequency, statistics_compute_steps=1,
            block_size=1 << 30, no_preconditioning_for_layers_with_dim_gt=max_dim,
            shape_interpretation=False, graft_type=3, nesterov=True, diagonal_eps=1e-10,
            matrix_eps=1e-6, use_svd=use_svd)]
    return build


def check_shampoo(bin_dir, moving_average, use_svd=True):
    params, grads = h.random_case(h.SHAPES, STEPS, seed=4)
    dtype = torch.float64 if use_svd else torch.float32
    params = {n: p.to(dtype) for n, p in params.items()}
    grads = [{n: g.to(dtype) for n, g in step.items()} for step in grads]
    args = {"beta1": 0.9, "beta2": 0.97, "start_preconditioning_step": 3,
            "precondition_frequency": 2, "max_precond_dim": 1024,
            "moving_average_for_momentum": moving_average, "use_svd": use_svd}
    ours = h.run_ours(bin_dir, "shampoo", 1e-2, 0.1, args, params, grads)
    reference = h.run_reference(
        shampoo_reference(1e-2, 0.1, (0.9, 0.97), 3, 2, 1024, moving_average, use_svd),
        params, grads)
    errors = h.relative_errors(ours, reference)
    worst = max(errors.values())
    tolerance = FP64 if use_svd else FP32
    print(f"shampoo vs ScalableShampoo ({dtype}, use_svd {use_svd}, moving_average_for_momentum "
          f"{moving_average}): largest relative error {worst:.2e}")
    assert worst <= tolerance, errors
    assert min((ours[n] - params[n]).abs().max().item() for n in params) > 0


def main(bin_dir):
    base = {"beta1": 0.9, "beta2": 0.97, "precondition_frequency": 3, "max_precond_dim": 1024}
    h.check_case(bin_dir, "soap", "soap", 1e-2, 0.1, base,
                 soap_reference(1e-2, 0.1, betas=(0.9, 0.97), precondition_frequency=3,
                                max_precondition_dim=1024), FP32, steps=STEPS)
    h.check_case(bin_dir, "soap normalize_grads shampoo_beta", "soap", 3e-3, 0.0,
                 dict(base, normalize_grads=True, shampoo_beta=0.9),
                 soap_reference(3e-3, 0.0, betas=(0.9, 0.97), shampoo_beta=0.9,
                                precondition_frequency=3, max_precondition_dim=1024,
                                normalize_gradient=True),
                 FP32, steps=STEPS)
    # precondition_1d: a vector's factor g g^T has rank one per step, so until it has seen as
    # many steps as its length its eigenbasis is partly arbitrary, and which arbitrary basis
    # eigh returns is rounding: the 8-long k_norm differs from the reference by 3e-3 after
    # eight steps (measured), the 24-long vectors agree to rounding. The case leaves it out.
    shapes_1d = {n: s for n, s in h.SHAPES.items() if n != "layers.0.self_attn.k_norm.weight"}
    h.check_case(bin_dir, "soap precondition_1d", "soap", 1e-2, 0.1,
                 dict(base, precondition_1d=True),
                 soap_reference(1e-2, 0.1, betas=(0.9, 0.97), precondition_frequency=3,
                                max_precondition_dim=1024, precondition_1d=True),
                 FP32, shapes=shapes_1d, steps=STEPS)
    h.check_case(bin_dir, "soap defaults, no bias correction", "soap", 3e-3, 0.01,
                 {"correct_bias": False, "max_precond_dim": 1024},
                 soap_reference(3e-3, 0.01, max_precondition_dim=1024, correct_bias=False),
                 FP32, steps=12)
    check_emerging(bin_dir)
    check_shampoo(bin_dir, moving_average=False)
    check_shampoo(bin_dir, moving_average=True)
    check_shampoo(bin_dir, moving_average=False, use_svd=False)
    check_shampoo(bin_dir, moving_average=True, use_svd=False)
    for name in ["soap", "soap4bit", "shampoo"]:
        args = {"precondition_frequency": 2, "max_precond_dim": 1024}
        if name == "shampoo":
            args["start_preconditioning_step"] = 2
        h.check_reload(bin_dir, name, name, 1e-2, 0.1, args)
    print("PASS")


if __name__ == "__main__":
    main(sys.argv[1])
