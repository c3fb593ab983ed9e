"""Ablate's Qwen3 against transformers' Qwen3ForCausalLM, the reference implementation.

1. Random small Qwen3 models, saved by transformers' save_pretrained (head ratios 1, 2, 4 and
   5, tied and untied, head_dim apart from hidden_size / heads, a non-default RoPE base and
   norm epsilon, weights large enough that every part of the computation moves the loss), give
   the same mean next-token loss in `ablate-train eval` as in transformers, within 1e-5
   relative in fp32, on windows of an odd length (97).
2. A job starting from one of them (`model: hf:DIR`, `init_from: DIR`) trains, is exported
   with `ablate-train export`, loads in transformers with no missing or unexpected weights,
   and gives the same loss there as in `ablate-train eval`; its config keeps the start's
   bos_token_id and eos_token_id (a list of two here).
3. A tiny model trained from scratch by Ablate does the same (no token ids: byte tokens).
4. `init_from` a model of another shape fails the job, naming the fields that differ.

Usage: qwen3_oracle_test.py BIN_DIR  (the folder holding ablate-train).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

VOCAB = 300  # above the 256 byte tokens, so a job can train these models on the byte corpus
CONTEXT = 97
RELATIVE_TOLERANCE = 1e-5

# (query heads, key/value heads, tied): head ratios 1, 2, 4 and 5.
SHAPES = [(4, 4, True), (4, 2, False), (8, 2, True), (10, 2, False), (5, 1, True)]


def random_model(heads, kv_heads, tied, seed):
    config = Qwen3Config(
        vocab_size=VOCAB, hidden_size=48, intermediate_size=88, num_hidden_layers=2,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=8,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0}, rms_norm_eps=1e-5,
        max_position_embeddings=256, tie_word_embeddings=tied, bos_token_id=1,
        eos_token_id=[2, 3])
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).eval()
    # transformers' initialisation (std 0.02, norms at one) leaves the loss near log(vocab)
    # whatever attention computes; unit-scale weights and uneven norm weights make the loss
    # depend on RoPE, the q/k norms and the head grouping.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.normal_(0.0, 1.0)
            else:
                p.normal_(0.0, 1.5 / p.shape[1] ** 0.5)
    return model


def write_tokens(path, ids):
    np.asarray(ids, dtype="<u2").tofile(path)


def reference_loss(model, ids, context):
    """Mean cross-entropy over the windows ablate-train eval uses (see its header)."""
    windows = (len(ids) - 1) // context
    rows = torch.tensor(np.stack([ids[w * context: w * context + context + 1]
                                  for w in range(windows)]), dtype=torch.long)
    with torch.no_grad():
        logits = model(rows[:, :-1]).logits.float()
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1)).item()


def run(binary, *args, expect_ok=True):
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    if expect_ok and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result


def ablate_loss(binary, model_dir, tokens_path):
    out = run(binary, "eval", "--model", model_dir, "--tokens", tokens_path,
              "--context", str(CONTEXT)).stdout.split()
    assert out[0] == "loss", out
    return float(out[1])


def check_close(what, ablate, reference):
    relative = abs(ablate - reference) / abs(reference)
    print(f"{what}: ablate {ablate:.6f} transformers {reference:.6f} relative {relative:.1e}")
    assert relative <= RELATIVE_TOLERANCE, f"{what}: losses differ by {relative:.1e} relative"


def train(binary, work, name, **fields):
    job = {"model": "tiny", "steps": 4, "batch_size": 2, "context_length": 32,
           "warmup_steps": 1, "log_every": 2, "eval_batches": 1, "cpu_threads": 2}
    job.update(fields)
    job_path = os.path.join(work, name + ".json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    checkpoints = os.path.join(work, name + "-checkpoints")
    result = run(binary, "train", "--job", job_path, "--checkpoint-dir", checkpoints,
                 expect_ok=False)
    return result, checkpoints


def export_and_compare(binary, work, name, model, checkpoints, ids, tokens_path, bos, eos):
    """Exports the checkpoint, naming `model`, or when it is None the model it records; the
    export's config must name the tokens `bos` and `eos`."""
    out = os.path.join(work, name + "-export")
    run(binary, "export", "--checkpoint", checkpoints, "--out", out,
        *(["--model", model] if model else []))
    loaded, info = Qwen3ForCausalLM.from_pretrained(out, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if k != "lm_head.weight" or
               not loaded.config.tie_word_embeddings]
    assert not missing and not info["unexpected_keys"], info
    assert (loaded.config.bos_token_id, loaded.config.eos_token_id) == (bos, eos), loaded.config
    check_close(f"{name} exported", ablate_loss(binary, out, tokens_path),
                reference_loss(loaded.eval(), ids, CONTEXT))


def main():
    binary = os.path.join(sys.argv[1], "ablate-train")
    torch.set_num_threads(2)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as work:
        ids = rng.integers(0, VOCAB, size=3 * CONTEXT + 1 + 5)  # 3 windows, 5 tokens unused
        tokens_path = os.path.join(work, "tokens.bin")
        write_tokens(tokens_path, ids)

        dirs = []
        for i, (heads, kv_heads, tied) in enumerate(SHAPES):
            model = random_model(heads, kv_heads, tied, seed=i)
            model_dir = os.path.join(work, f"random-{heads}-{kv_heads}-{tied}")
            model.save_pretrained(model_dir)
            dirs.append(model_dir)
            check_close(f"heads {heads}/{kv_heads} tied={tied}",
                        ablate_loss(binary, model_dir, tokens_path),
                        reference_loss(model, ids, CONTEXT))

        # Starting from an untied ratio-5 model, a nearly still step keeps its loss.
        start = dirs[3]
        result, checkpoints = train(binary, work, "init", model="hf:" + start, init_from=start,
                                    learning_rate=1e-12, weight_decay=0.0)
        assert result.returncode == 0, result.stdout + result.stderr
        export_and_compare(binary, work, "init_from", "hf:" + start, checkpoints, ids,
                           tokens_path, bos=1, eos=[2, 3])
        reference = reference_loss(Qwen3ForCausalLM.from_pretrained(start).eval(), ids, CONTEXT)
        check_close("init_from kept the start", ablate_loss(
            binary, os.path.join(work, "init_from-export"), tokens_path), reference)

        # A tiny model trained from scratch, evaluated on held-out text as byte tokens.
        corpus = os.path.join(os.path.dirname(__file__), "..", "..", "data", "tiny-corpus",
                              "valid.txt")
        text_ids = np.frombuffer(open(corpus, "rb").read()[:4 * CONTEXT + 1], dtype=np.uint8)
        text_path = os.path.join(work, "text.bin")
        write_tokens(text_path, text_ids)
        result, checkpoints = train(binary, work, "tiny")
        assert result.returncode == 0, result.stdout + result.stderr
        export_and_compare(binary, work, "tiny", None, checkpoints, text_ids, text_path,
                           bos=None, eos=None)

        # A second export into the same folder replaces the first's weights: sharded now, the
        # model it loads is still the checkpoint's.
        run(binary, "export", "--checkpoint", checkpoints, "--out",
            os.path.join(work, "tiny-export"), "--shard-bytes", "100000")
        assert not os.path.exists(os.path.join(work, "tiny-export", "model.safetensors"))
        check_close("tiny re-exported in shards",
                    ablate_loss(binary, os.path.join(work, "tiny-export"), text_path),
                    reference_loss(Qwen3ForCausalLM.from_pretrained(
                        os.path.join(work, "tiny-export")).eval(), text_ids, CONTEXT))

        # An NSA model's gates have no place in transformers' Qwen3: export refuses it.
        result, checkpoints = train(binary, work, "nsa", attention="nsa",
                                    attention_args={"block_size": 8, "selected_blocks": 3,
                                                    "window": 8})
        assert result.returncode == 0, result.stdout + result.stderr
        result = run(binary, "export", "--checkpoint", checkpoints, "--out",
                     os.path.join(work, "nsa-export"), expect_ok=False)
        assert result.returncode != 0, result.stdout
        assert "attention nsa" in result.stderr and "g_proj" in result.stderr, result.stderr
        assert not os.path.exists(os.path.join(work, "nsa-export"))

        # init_from a model of another shape: the job fails and says how they differ.
        result, _ = train(binary, work, "mismatch", init_from=dirs[0])
        message = result.stdout + result.stderr
        assert result.returncode == 3, message  # permanent: a retry would fail the same way
        for needle in ("init_from", "hidden_size 48 vs 64", "vocab_size 300 vs 256"):
            assert needle in message, f"no '{needle}' in: {message}"
    print("oracle: all checks passed")


if __name__ == "__main__":
    main()
