"""fla-core's parallel_nsa (Triton) forward and backward time on a GPU, beside PyTorch's dense
causal SDPA, at the shapes of trainer_lib/attention/nsa_benchmark.cc, in the same table form.

parallel_nsa runs the whole layer (mean-pooled compression, top-k selection, selected and
sliding-window branches, gates) with block 64, 16 selected blocks and window 512, as our
NsaAttend defaults. fla refuses head ratios that are not a power of two of at least 16, so the
Qwen3-0.6B rows (ratio 2) say so. Timing: torch.cuda.Event around each run, median of REPS runs
after one warm-up, the inputs' gradients cleared before each run (as Triton's
do_bench(grad_to_none=...) and nsa_benchmark.cc do).

Usage: python scripts/bench/nsa_fla.py [reps (default 5)] [max T (default 131072)]
       [window (default 512; 0 turns the sliding-window branch off)]
"""

import statistics
import sys

import torch
import torch.nn.functional as F


def median_ms(run, reps, leaves=()):
    def clear_grads():
        for leaf in leaves:
            leaf.grad = None

    clear_grads()
    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        clear_grads()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def row(name, heads, kv_heads, dim, t, reps, window, parallel_nsa):
    dev, dt = "cuda", torch.bfloat16
    # fla's layout: [B, T, H, D]; gates [B, T, H].
    q = torch.randn(1, t, heads, dim, device=dev, dtype=dt, requires_grad=True)
    k = torch.randn(1, t, kv_heads, dim, device=dev, dtype=dt, requires_grad=True)
    v = torch.randn(1, t, kv_heads, dim, device=dev, dtype=dt, requires_grad=True)
    gates = [torch.sigmoid(torch.randn(1, t, heads, device=dev, dtype=dt)).requires_grad_(True)
             for _ in range(3)]
    d_o = torch.randn(1, t, heads, dim, device=dev, dtype=dt)

    def fla(backward):
        o = parallel_nsa(q, k, v, *gates, block_counts=16, block_size=64, window_size=window)
        if backward:
            o.backward(d_o)

    g = heads // kv_heads
    qs, ks, vs = (x.detach().transpose(1, 2).contiguous().requires_grad_(True) for x in (q, k, v))
    d_os = d_o.transpose(1, 2).contiguous()

    def sdpa(backward):
        o = F.scaled_dot_product_attention(qs, ks.repeat_interleave(g, 1),
                                           vs.repeat_interleave(g, 1), is_causal=True)
        if backward:
            o.backward(d_os)

    try:
        fla_f = median_ms(lambda: fla(False), reps)
        fla_fb = median_ms(lambda: fla(True), reps, (q, k, v, *gates))
    except Exception as e:  # fla refuses some head ratios; the row says why
        fla_f = fla_fb = float("nan")
        print(f"<!-- {name} {t}: parallel_nsa failed: {str(e)[:200]} -->")
    sdpa_f = median_ms(lambda: sdpa(False), reps)
    sdpa_fb = median_ms(lambda: sdpa(True), reps, (qs, ks, vs))
    print(f"| {name} | {heads}/{kv_heads}/{dim} | {t // 1024}K | {fla_f:.2f} | {fla_fb:.2f} | "
          f"{sdpa_f:.2f} | {sdpa_fb:.2f} | {sdpa_fb / fla_fb:.2f} |", flush=True)


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    max_t = int(sys.argv[2]) if len(sys.argv) > 2 else 131072
    # fla's sliding-window branch calls flash-attn's kernels; without flash-attn pass 0 and
    # compare the compressed and selected branches alone.
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    import fla
    from fla.ops.nsa.parallel import parallel_nsa
    print(f"fla-core {getattr(fla, '__version__', '?')}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name()}, window {window}\n")
    print("| shape | H/H_kv/D | T | fla parallel_nsa fwd ms | fla parallel_nsa fwd+bwd ms | "
          "SDPA fwd ms | SDPA fwd+bwd ms | SDPA / fla (fwd+bwd) |")
    print("|---|---|---|---|---|---|---|---|")
    shapes = [("fla", 64, 4, 128, t) for t in (8192, 16384, 32768, 65536, 131072)]
    shapes += [("qwen3-0.6b", 16, 8, 128, t) for t in (32768, 131072)]
    for name, heads, kv_heads, dim, t in shapes:
        if t <= max_t:
            row(name, heads, kv_heads, dim, t, reps, window, parallel_nsa)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
