"""Runs a peer trainer script, unmodified, at any Qwen3 size, and prints one row per spec in the
form scripts/bench/train_bench_table.py reads.

The peers (pt_qwen3_train.py: a plain PyTorch Qwen3 with optional per-block torch.compile;
hf_qwen3_train.py: transformers' Qwen3ForCausalLM) build Qwen3-0.6B only. This imports the
script as a module and changes what its run() reads when it builds the model: pt's module
globals V, D, L, H, KV, HD, FF, or the Qwen3Config that hf passes to transformers. Nothing else
of the peer changes: its step, timing (a synchronize before and after its timed steps) and
peak memory (torch.cuda.max_memory_allocated since the peer's own reset) are its own.

    peer_shape.py SCRIPT MODEL SPEC...

MODEL is a name of SHAPES. SPEC is the peer's SEQ:BATCH:CKPT:OPTS (OPTS '+'-joined: compile,
liger, cudnn for pt; compile, liger for hf), then optionally :STEPS:WARM (the peer's defaults:
8 timed steps after 3 warm-up steps). Each row on stdout is

    WHO MODEL SEQ BATCH CKPT TOKENS_PER_S PEAK_BYTES PARAMS    a measurement
    WHO MODEL SEQ BATCH CKPT FAILED|SKIPPED REASON...          none

with WHO the peer's prefix (pt, hf) and its options ("pt-compile+liger", "hf-eager"). A spec
whose options need liger_kernel, or any spec of a peer whose imports fail (transformers), is
SKIPPED with the reason. The peer's own output goes to stderr. A model whose parameter count,
as the peer prints it in millions, is not the count of SHAPES fails: the override missed.

TINY=1 in the environment (the peers' own CPU smoke test) shrinks every shape of SHAPES with
tiny(), keeping each model's head ratio and depth order, so the override is checked on a CPU.

Only the parameter count is taken from SHAPES here; train_bench_table.py counts FLOPs from the
same shapes for every row, Ablate's and the peers', because hf's printed TFLOP/s counts
attention with Qwen3-0.6B's layers and heads whatever the model (pt's uses its globals).
"""

import contextlib
import importlib.util
import io
import os
import pathlib
import sys
import traceback

# Qwen3 sizes as Hugging Face's config.json of each gives them (common/catalog.cc): vocabulary,
# hidden width, layers, query heads, KV heads, head dim, MLP width. Both sizes tie the
# embedding to the output head (tie_word_embeddings: true).
SHAPES = {
    "qwen3-0.6b": dict(V=151936, D=1024, L=28, H=16, KV=8, HD=128, FF=3072),
    "qwen3-4b": dict(V=151936, D=2560, L=36, H=32, KV=8, HD=128, FF=9728),
}


def tiny(shape):
    """A CPU-sized shape with the same head ratio (H / KV), one layer per 14 of the model's."""
    return dict(V=1000, D=shape["D"] // 16, L=shape["L"] // 14, H=shape["H"] // 4,
                KV=shape["KV"] // 4, HD=16, FF=shape["FF"] // 16)


def shape_of(model):
    shape = SHAPES[model]
    return tiny(shape) if os.environ.get("TINY") else shape


def parameters(s):
    """Qwen3 with a tied embedding: embedding, per layer q/k/v/o, gate/up/down and four norms
    (two of width D, q_norm and k_norm of width HD), the final norm."""
    layer = (2 * s["D"] * s["H"] * s["HD"] + 2 * s["D"] * s["KV"] * s["HD"]
             + 3 * s["D"] * s["FF"] + 2 * s["D"] + 2 * s["HD"])
    return s["V"] * s["D"] + s["L"] * layer + s["D"]


def flops_per_token(s, seq):
    """6N for the weights' forward and backward, plus causal attention's 6 L T H HD (half of
    12: the peers' count; recomputation under checkpointing is not counted)."""
    return 6 * parameters(s) + 6 * s["L"] * seq * s["H"] * s["HD"]


class Spec:
    def __init__(self, text):
        fields = text.split(":")
        self.seq, self.batch, self.ckpt = int(fields[0]), int(fields[1]), fields[2] == "1"
        self.opts = set(fields[3].split("+")) - {""} if len(fields) > 3 else set()
        self.steps = int(fields[4]) if len(fields) > 4 else 8
        self.warm = int(fields[5]) if len(fields) > 5 else 3

    def label(self):
        return "+".join(sorted(self.opts)) or "eager"


class PtPeer:
    """pt_qwen3_train.py: run(seq, batch, ckpt, opts, steps, warm) builds from module globals;
    its line is seq,batch,ckpt,opts,NM,ms,tok/s,TFLOP/s,GiB,loss=..."""

    def __init__(self, module, shape):
        self.module = module
        for name, value in shape.items():
            setattr(module, name, value)

    def built_parameters(self):
        import torch
        with torch.device("meta"):
            return sum(p.numel() for p in self.module.Model().parameters())

    def run(self, spec):
        self.module.run(spec.seq, spec.batch, spec.ckpt, set(spec.opts), spec.steps, spec.warm)

    @staticmethod
    def fields(line):  # NM, ms, tok/s, TFLOP/s, GiB
        return line.split(",")[-6:-1]


class HfPeer:
    """hf_qwen3_train.py: run(seq, batch, ckpt, steps, warm, compile_, liger) builds from the
    Qwen3Config it calls by its module-global name; its line is
    seq,batch,ckpt[,compiled][,liger],NM,ms,tok/s,TFLOP/s,GiB."""

    def __init__(self, module, shape):
        self.module = module
        made = module.Qwen3Config
        sizes = dict(vocab_size=shape["V"], hidden_size=shape["D"],
                     num_hidden_layers=shape["L"], num_attention_heads=shape["H"],
                     num_key_value_heads=shape["KV"], head_dim=shape["HD"],
                     intermediate_size=shape["FF"])
        module.Qwen3Config = lambda **kwargs: made(**{**kwargs, **sizes})

    def built_parameters(self):
        import torch
        with torch.device("meta"):
            config = self.module.Qwen3Config(tie_word_embeddings=True)
            return sum(p.numel() for p in self.module.Qwen3ForCausalLM(config).parameters())

    def run(self, spec):
        unknown = spec.opts - {"compile", "liger"}
        if unknown:
            raise ValueError(f"hf has no option {'+'.join(sorted(unknown))}")
        self.module.run(spec.seq, spec.batch, spec.ckpt, spec.steps, spec.warm,
                        compile_="compile" in spec.opts, liger="liger" in spec.opts)

    @staticmethod
    def fields(line):
        return line.split(",")[-5:]


def load(script):
    """The peer's module (its imports run; its __main__ block does not)."""
    path = pathlib.Path(script).resolve()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(module)
    return module


PEERS = {"pt": PtPeer, "hf": HfPeer}  # by the first word of the script's name


def head(prefix, model, spec):
    """A row's first fields: WHO MODEL SEQ BATCH CKPT."""
    return f"{prefix}-{spec.label()} {model} {spec.seq} {spec.batch} {int(spec.ckpt)}"


def first_line(error):
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}"


def measure(peer, fields, spec, expected_params):
    """One row, after its first fields: runs the peer with its stdout captured, then reads
    what it printed."""
    if "liger" in spec.opts and importlib.util.find_spec("liger_kernel") is None:
        return f"{fields} SKIPPED liger_kernel is not importable"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            peer.run(spec)
    except Exception as e:  # OOM or a backend that refuses: record and go on, as the peers do
        sys.stderr.write(printed.getvalue() + traceback.format_exc())
        return f"{fields} FAILED {first_line(e)}"
    finally:
        empty_cache()
    sys.stderr.write(printed.getvalue())
    lines = [line for line in printed.getvalue().splitlines()
             if line.startswith(f"{spec.seq},{spec.batch},")]
    if not lines:
        return f"{fields} FAILED the peer printed no result"
    millions, _, tokens_per_s, _, gib = peer.fields(lines[-1])
    if millions != f"{expected_params / 1e6:.0f}M":
        return f"{fields} FAILED built {millions} parameters, not {expected_params:,}"
    return f"{fields} {float(tokens_per_s):.0f} {peak_bytes(gib)} {expected_params}"


def peak_bytes(printed_gib):
    """The peer's peak in bytes: exact from the allocator (nothing resets it after the peer's
    own reset), else from the GiB it printed with one decimal."""
    import torch
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    return round(float(printed_gib) * 2**30)


def empty_cache():
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        sys.modules["torch"].cuda.empty_cache()


def main(argv):
    prefix = pathlib.Path(argv[0]).name.split("_")[0] if argv else ""
    if len(argv) < 3 or argv[1] not in SHAPES or prefix not in PEERS:
        sys.exit(f"usage: peer_shape.py {{{'|'.join(PEERS)}}}_*.py {{{'|'.join(SHAPES)}}} "
                 "SEQ:BATCH:CKPT[:OPTS[:STEPS[:WARM]]]...")
    script, model, specs = argv[0], argv[1], [Spec(s) for s in argv[2:]]
    shape = shape_of(model)
    try:
        module = load(script)
    except ImportError as e:
        for s in specs:
            print(f"{head(prefix, model, s)} SKIPPED {e}", flush=True)
        return
    import torch._dynamo
    # Each spec compiles for its own static shape, as in a fresh process: a second shape would
    # otherwise be recompiled with symbolic sizes (automatic dynamic shapes).
    torch._dynamo.config.automatic_dynamic_shapes = False
    peer = PEERS[prefix](module, shape)
    if peer.built_parameters() != parameters(shape):
        sys.exit(f"{script} builds {peer.built_parameters():,} parameters at {model}'s shape, "
                 f"not {parameters(shape):,}: the override missed")
    for s in specs:
        print(measure(peer, head(prefix, model, s), s, parameters(shape)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
