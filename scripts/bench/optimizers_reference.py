"""Reference timings for trainer_lib/optim/optimizer_benchmark: one optimizer step of torch's
fused AdamW, torch.optim.Muon (hidden matrices; fused AdamW on the rest) and
pytorch-optimizer's SOAP and ScalableShampoo, over a Qwen3 model's parameter shapes in fp32.

    optimizers_reference.py [--model qwen3-0.6b] [--precondition_frequency 10] [--device cuda]
                            [--optimizers torch_adamw_fused,...] [--tf32]

Prints the benchmark's format, one line per optimizer:
    optimizer=torch_adamw_fused model=qwen3-0.6b device=cuda tf32=0 params=... steps=10 ms_per_step=...
--tf32 lets float32 matmuls run in TF32, as optimizer_benchmark --tf32.
One untimed step builds the state; then precondition_frequency steps are timed, so SOAP's and
Shampoo's one refresh in them is amortized as in the C++ benchmark. The shapes are those of
Hugging Face's published config.json, which common/catalog.cc also holds.
"""

import argparse
import time

import torch

# vocab, hidden, intermediate, layers, heads, kv heads, head_dim, tied embedding
MODELS = {
    "tiny": (256, 64, 192, 2, 4, 2, 16, True),
    "qwen3-0.6b": (151936, 1024, 3072, 28, 16, 8, 128, True),
    "qwen3-4b": (151936, 2560, 9728, 36, 32, 8, 128, True),
}


def named_shapes(model):
    vocab, hidden, inter, layers, heads, kv, head_dim, tied = MODELS[model]
    shapes = {"embed_tokens.weight": (vocab, hidden), "norm.weight": (hidden,)}
    if not tied:
        shapes["lm_head.weight"] = (vocab, hidden)
    for i in range(layers):
        p = f"layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (heads * head_dim, hidden),
            p + "self_attn.k_proj.weight": (kv * head_dim, hidden),
            p + "self_attn.v_proj.weight": (kv * head_dim, hidden),
            p + "self_attn.o_proj.weight": (hidden, heads * head_dim),
            p + "self_attn.q_norm.weight": (head_dim,),
            p + "self_attn.k_norm.weight": (head_dim,),
            p + "mlp.gate_proj.weight": (inter, hidden),
            p + "mlp.up_proj.weight": (inter, hidden),
            p + "mlp.down_proj.weight": (hidden, inter),
        })
    return shapes


def hidden(name, p):
    return p.dim() == 2 and "embed_tokens" not in name and "lm_head" not in name


def build(kind, named, frequency, device):
    params = list(named.values())
    fused = {"fused": True} if device.type == "cuda" else {}
    if kind == "torch_adamw_fused":
        return [torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1, **fused)]
    if kind == "torch_muon":
        matrices = [p for n, p in named.items() if hidden(n, p)]
        rest = [p for n, p in named.items() if not hidden(n, p)]
        return [torch.optim.Muon(matrices, lr=0.02, weight_decay=0.1),
                torch.optim.AdamW(rest, lr=1e-4, weight_decay=0.1, **fused)]
    from pytorch_optimizer import SOAP, ScalableShampoo
    if kind == "po_soap":
        return [SOAP(params, lr=1e-4, weight_decay=0.1, precondition_frequency=frequency)]
    if kind == "po_shampoo":
        return [ScalableShampoo(params, lr=1e-4, start_preconditioning_step=1,
                                preconditioning_compute_steps=frequency, block_size=1 << 30,
                                no_preconditioning_for_layers_with_dim_gt=8192,
                                shape_interpretation=False, graft_type=3, use_svd=True,
                                decoupled_weight_decay=True, weight_decay=0.1)]
    raise ValueError(kind)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen3-0.6b", choices=sorted(MODELS))
    parser.add_argument("--precondition_frequency", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--optimizers", default="torch_adamw_fused,torch_muon,po_soap,po_shampoo")
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args()
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device(args.device)
    shapes = named_shapes(args.model)
    named = {n: torch.nn.Parameter(torch.randn(s, device=device) * 0.02) for n, s in shapes.items()}
    for p in named.values():
        p.grad = torch.randn_like(p) * 1e-3
    total = sum(p.numel() for p in named.values())

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for kind in args.optimizers.split(","):
        try:
            optimizers = build(kind, named, args.precondition_frequency, device)
            for o in optimizers:
                o.step()
            sync()
            start = time.perf_counter()
            for _ in range(args.precondition_frequency):
                for o in optimizers:
                    o.step()
            sync()
            ms = (time.perf_counter() - start) * 1e3 / args.precondition_frequency
            print(f"optimizer={kind} model={args.model} device={device.type} "
                  f"tf32={int(args.tf32)} params={total} "
                  f"steps={args.precondition_frequency} ms_per_step={ms:.3f}", flush=True)
        except (RuntimeError, torch.OutOfMemoryError) as e:
            print(f"optimizer={kind} model={args.model} error=\"{str(e).splitlines()[0]}\"",
                  flush=True)
        optimizers = None
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
