"""Ablate's NSA (trainer_lib/attention/nsa.h) against fla-core's naive NSA, forward and backward.

For each case the test draws q, k, v, gates and an output gradient, runs `nsa_replay`
(trainer_lib/attention/nsa_replay.cc) on them, runs fla-core's reference on the same tensors
in fp32 with autograd, and compares outputs, the gradients of q, k, v and the three gates, and
the selected blocks (as sets per query and key/value head).

How fla's reference is reached, and why:
- fla-core's package imports Triton kernels at import time, and this CPU-only test machine has
  no Triton, so `import fla.ops.nsa` fails. The reference file itself, fla/ops/nsa/naive.py, is
  plain PyTorch: it is loaded by path with importlib, with the two helpers it imports from
  Triton modules supplied here. `prepare_chunk_offsets` serves variable-length batches only and
  is never called. `mean_pooling` is fla's Triton kernel; the stand-in computes what that kernel
  computes (the sum of each block of block_size tokens divided by the number of tokens in it),
  and only full blocks ever reach a query.
- naive_nsa refuses head ratios that are not a power of two of at least 16 (a limit of fla's
  Triton kernels, asserted in the naive reference too), and its window branch calls
  flash-attn, which needs CUDA. So for every ratio the reference is naive_nsa's own body:
  naive_nsa_compression, naive_nsa_topk and naive_nsa_selection combined as naive_nsa combines
  them, plus the window branch as flash-attn's window_size=(w - 1, 0) defines it, added as
  naive_nsa adds it. One case checks that this composition equals naive_nsa itself where
  naive_nsa accepts the inputs (ratio 16, no window).

Usage: nsa_oracle_test.py BUILD_TESTS_DIR   (the folder holding nsa_replay)
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import types

import torch
from safetensors.torch import load_file, save_file

# Largest |ours - reference| allowed, for values and gradients of order one (fp32 on both
# sides; measured errors are printed for each case).
FORWARD_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-4


def load_fla_naive():
    spec = importlib.util.find_spec("fla")
    assert spec is not None and spec.submodule_search_locations, "fla-core is not installed"
    path = os.path.join(spec.submodule_search_locations[0], "ops", "nsa", "naive.py")

    def mean_pooling(x, chunk_size, cu_seqlens=None):
        assert cu_seqlens is None
        b, t, h, d = x.shape
        blocks = -(-t // chunk_size)
        padded = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, blocks * chunk_size - t))
        sums = padded.view(b, blocks, chunk_size, h, d).sum(2)
        counts = torch.clamp(t - torch.arange(blocks) * chunk_size, max=chunk_size)
        return sums / counts.view(1, blocks, 1, 1).to(x.dtype)

    def prepare_chunk_offsets(*args, **kwargs):
        raise AssertionError("variable-length batches are not used here")

    utils = types.ModuleType("fla.ops.utils")
    utils.prepare_chunk_offsets = prepare_chunk_offsets
    pooling = types.ModuleType("fla.ops.utils.pooling")
    pooling.mean_pooling = mean_pooling
    for name, module in [("fla", types.ModuleType("fla")), ("fla.ops", types.ModuleType("fla.ops")),
                         ("fla.ops.utils", utils), ("fla.ops.utils.pooling", pooling)]:
        sys.modules.setdefault(name, module)
    module_spec = importlib.util.spec_from_file_location("fla_nsa_naive", path)
    naive = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(naive)
    return naive


NAIVE = load_fla_naive()


def window_attention(q, k, v, window):
    """flash_attn_func(q, k, v, causal=True, window_size=(window - 1, 0)) in fp32, [B, T, H, D]."""
    t = q.shape[1]
    group = q.shape[2] // k.shape[2]
    k, v = (x.repeat_interleave(group, dim=2) for x in (k, v))
    i = torch.arange(t)
    allowed = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * q.shape[-1] ** -0.5
    p = s.masked_fill(~allowed, float("-inf")).softmax(-1)
    return torch.einsum("bhqk,bkhd->bqhd", p, v)


def fla_reference(q, k, v, g_cmp, g_slc, g_swa, block_size, selected, window):
    """naive_nsa's body for any head ratio, fla layout [B, T, H, D]; returns (o, block_indices)."""
    scale = k.shape[-1] ** -0.5
    k_cmp = NAIVE.mean_pooling(k, block_size, None)
    v_cmp = NAIVE.mean_pooling(v, block_size, None)
    o_cmp, _ = NAIVE.naive_nsa_compression(q=q, k_cmp=k_cmp, v_cmp=v_cmp, block_size=block_size,
                                           scale=scale)
    block_indices = NAIVE.naive_nsa_topk(q=q, k_cmp=k_cmp, block_counts=selected,
                                         block_size=block_size, scale=scale)
    o_slc = NAIVE.naive_nsa_selection(q, k, v, block_indices, block_size, scale)
    o = o_slc * g_slc.unsqueeze(-1)
    o = torch.addcmul(o, o_cmp, g_cmp.unsqueeze(-1))
    if window > 0:
        o = torch.addcmul(o, window_attention(q, k, v, window), g_swa.unsqueeze(-1))
    return o, block_indices


def run_ours(tests_dir, tensors, block_size, selected, window, query_chunk):
    with tempfile.TemporaryDirectory() as tmp:
        case = os.path.join(tmp, "case.safetensors")
        save_file({n: t.contiguous() for n, t in tensors.items()}, case)
        out = os.path.join(tmp, "out")
        command = [os.path.join(tests_dir, "nsa_replay"), "--in", case, "--out", out,
                   "--arg", f"block_size={block_size}", "--arg", f"selected_blocks={selected}",
                   "--arg", f"window={window}", "--query_chunk", str(query_chunk)]
        subprocess.run(command, check=True)
        return load_file(os.path.join(out, "model.safetensors"))


def check_case(tests_dir, b, hkv, group, t, d, block_size, selected, window, seed,
               query_chunk=0):
    name = (f"B={b} H_kv={hkv} G={group} T={t} D={d} block={block_size} n={selected} "
            f"w={window}")
    g = torch.Generator().manual_seed(seed)
    h = hkv * group
    q = torch.randn(b, t, h, d, generator=g)
    k = torch.randn(b, t, hkv, d, generator=g)
    v = torch.randn(b, t, hkv, d, generator=g)
    gates = torch.rand(b, t, h, 3, generator=g)
    grad_out = torch.randn(b, t, h, d, generator=g)

    leaves = [x.clone().requires_grad_() for x in (q, k, v, gates)]
    o, block_indices = fla_reference(leaves[0], leaves[1], leaves[2], *leaves[3].unbind(-1),
                                     block_size, selected, window)
    o.backward(grad_out)
    reference = {"out": o.detach(), "grad_q": leaves[0].grad, "grad_k": leaves[1].grad,
                 "grad_v": leaves[2].grad, "grad_gates": leaves[3].grad}

    # Ours is [B, H, T, D]; gates [B, H, T, 3].
    ours = run_ours(tests_dir, {"q": q.transpose(1, 2), "k": k.transpose(1, 2),
                                "v": v.transpose(1, 2), "gates": gates.transpose(1, 2),
                                "grad_out": grad_out.transpose(1, 2)},
                    block_size, selected, window, query_chunk)
    errors = {}
    for key, expected in reference.items():
        got = ours[key].transpose(1, 2)
        assert got.shape == expected.shape, (name, key, got.shape, expected.shape)
        errors[key] = (got - expected).abs().max().item()
        assert expected.abs().max().item() > 0, (name, key, "reference is all zero")
    if window == 0:  # the window's gate is unused, in both
        assert ours["grad_gates"][..., 2].abs().max().item() == 0, name
    print(f"{name}: max error out {errors['out']:.2e}, grads "
          + ", ".join(f"{k[5:]} {e:.2e}" for k, e in errors.items() if k != "out"))
    assert errors["out"] <= FORWARD_TOLERANCE, (name, errors)
    bad = {k: e for k, e in errors.items() if k != "out" and not e <= GRADIENT_TOLERANCE}
    assert not bad, (name, bad)

    # The same blocks for every query and key/value head: fla [B, T, H_kv, n], ours
    # [B, H_kv, T, n]; order within a selection does not change the output.
    expected_sets = block_indices.sort(-1).values
    got_sets = ours["block_indices"].transpose(1, 2).sort(-1).values
    assert torch.equal(got_sets, expected_sets), (name, "selected blocks differ")
    return errors


def check_composition_is_naive_nsa():
    """Where naive_nsa accepts the inputs (ratio 16, no window), the composition above is it."""
    g = torch.Generator().manual_seed(7)
    q = torch.randn(1, 70, 16, 64, generator=g)
    k = torch.randn(1, 70, 1, 64, generator=g)
    v = torch.randn(1, 70, 1, 64, generator=g)
    g_cmp, g_slc, g_swa = torch.rand(3, 1, 70, 16, generator=g)
    direct, direct_idx = NAIVE.naive_nsa(q, k, v, g_cmp, g_slc, g_swa, block_counts=4,
                                         block_size=16, window_size=0, return_block_indices=True)
    composed, composed_idx = fla_reference(q, k, v, g_cmp, g_slc, g_swa, 16, 4, 0)
    assert torch.equal(direct, composed), "composition differs from naive_nsa"
    assert torch.equal(direct_idx, composed_idx)
    print("composition equals naive_nsa at ratio 16")


def main():
    tests_dir = sys.argv[1]
    check_composition_is_naive_nsa()
    worst = {}
    seed = 0
    # Every Qwen3 head ratio and fla's 16, head dims 64 and 128, lengths that are not
    # multiples of the block, more visible blocks than are selected (75 tokens: 9 full blocks
    # of 8, 4 selected), chunk boundaries inside blocks, no window, no full block at all.
    cases = []
    for group in (1, 2, 4, 5, 8, 16):
        for d in (64, 128):
            cases.append(dict(b=1, hkv=2 if group <= 5 else 1, group=group, t=75, d=d,
                              block_size=8, selected=4, window=12, query_chunk=29))
    cases += [
        dict(b=2, hkv=2, group=2, t=77, d=64, block_size=16, selected=3, window=0, query_chunk=0),
        dict(b=1, hkv=1, group=4, t=131, d=64, block_size=16, selected=5, window=40,
             query_chunk=64),
        dict(b=1, hkv=2, group=2, t=10, d=64, block_size=16, selected=4, window=4, query_chunk=0),
        # The defaults (block 64, 16 blocks, window 512) on two and a bit blocks.
        dict(b=1, hkv=1, group=2, t=150, d=64, block_size=64, selected=16, window=512,
             query_chunk=0),
    ]
    for case in cases:
        seed += 1
        errors = check_case(tests_dir, seed=seed, **case)
        for key, e in errors.items():
            worst[key] = max(worst.get(key, 0.0), e)
    print("worst over all cases: " + ", ".join(f"{k} {e:.2e}" for k, e in worst.items()))


if __name__ == "__main__":
    main()
