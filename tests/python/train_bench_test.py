"""Tests of scripts/bench/peer_shape.py and train_bench_table.py (scripts/device-train-bench.sh's
peer rows and table) without the peers' scripts: a stand-in peer with pt_qwen3_train.py's
interface (shape globals read when run() builds, one CSV line per run) checks that the
override reaches what the peer builds and prints; fixed rows check the table's arithmetic."""

import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))
import peer_shape  # noqa: E402
import train_bench_table  # noqa: E402

# pt_qwen3_train.py's interface: globals read at build time, run() prints
# seq,batch,ckpt,opts,NM,ms,tok/s,TFLOP/s,GiB,loss=... .
STAND_IN = '''
V, D, L, H, KV, HD, FF = 151936, 1024, 28, 16, 8, 128, 3072
import torch

class Model(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = torch.nn.Embedding(V, D)
        s.w = torch.nn.ParameterList(torch.nn.Parameter(torch.empty(n)) for n in [
            L * (2 * D * H * HD + 2 * D * KV * HD + 3 * D * FF + 2 * D + 2 * HD), D])

def run(seq, batch, ckpt, opts, steps=8, warm=3):
    if "fail" in opts:
        raise RuntimeError("CUDA out of memory")
    with torch.device("meta"):
        n = sum(p.numel() for p in Model().parameters())
    print(f"{seq},{batch},{int(ckpt)},{'+'.join(sorted(opts)) or 'eager'},{n/1e6:.0f}M,"
          f"{steps},{1000 * L + warm},0,1.5,loss=1.0", flush=True)
'''


class PeerShapeTest(unittest.TestCase):
    def test_parameters_are_the_published_counts(self):
        self.assertEqual(peer_shape.parameters(peer_shape.SHAPES["qwen3-0.6b"]), 596_049_920)
        self.assertEqual(peer_shape.parameters(peer_shape.SHAPES["qwen3-4b"]), 4_022_468_096)

    def test_flops_per_token_counts_causal_attention(self):
        s = peer_shape.SHAPES["qwen3-0.6b"]
        self.assertEqual(peer_shape.flops_per_token(s, 4096),
                         6 * 596_049_920 + 6 * 28 * 4096 * 16 * 128)

    def test_tiny_keeps_the_head_ratio(self):
        for shape in peer_shape.SHAPES.values():
            t = peer_shape.tiny(shape)
            self.assertEqual(t["H"] // t["KV"], shape["H"] // shape["KV"])
            self.assertGreaterEqual(t["L"], 1)

    def test_spec_defaults_and_steps(self):
        s = peer_shape.Spec("4096:4:0")
        self.assertEqual((s.seq, s.batch, s.ckpt, s.opts, s.steps, s.warm),
                         (4096, 4, False, set(), 8, 3))
        s = peer_shape.Spec("32768:1:1:compile+liger:4:2")
        self.assertEqual((s.ckpt, s.label(), s.steps, s.warm), (True, "compile+liger", 4, 2))

    def run_stand_in(self, *args):
        with tempfile.TemporaryDirectory() as d:
            script = pathlib.Path(d) / "pt_qwen3_train.py"
            script.write_text(STAND_IN)
            env = {k: v for k, v in os.environ.items() if k != "TINY"}
            done = subprocess.run([sys.executable, str(ROOT / "scripts/bench/peer_shape.py"),
                                   str(script), *args], capture_output=True, text=True, env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.splitlines()

    def test_the_peer_runs_at_the_model_s_shape(self):
        rows = self.run_stand_in("qwen3-4b", "8192:1:1:compile:5:2", "64:2:0:fail",
                                 "64:2:0:liger")
        # 36 layers and warm 2 reach run(); the tokens/s column is the stand-in's 1000 L + warm.
        self.assertEqual(rows[0], "pt-compile qwen3-4b 8192 1 1 36002 1610612736 4022468096")
        self.assertEqual(rows[1], "pt-fail qwen3-4b 64 2 0 FAILED RuntimeError: CUDA out of memory")
        if peer_shape.importlib.util.find_spec("liger_kernel") is None:
            self.assertEqual(rows[2],
                             "pt-liger qwen3-4b 64 2 0 SKIPPED liger_kernel is not importable")

    def test_a_peer_that_cannot_import_is_skipped(self):
        with tempfile.TemporaryDirectory() as d:
            script = pathlib.Path(d) / "hf_qwen3_train.py"
            script.write_text("import a_module_that_is_not_there\n")
            done = subprocess.run([sys.executable, str(ROOT / "scripts/bench/peer_shape.py"),
                                   str(script), "qwen3-0.6b", "4096:4:0"],
                                  capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "hf-eager qwen3-0.6b 4096 4 0 SKIPPED "
                                      "No module named 'a_module_that_is_not_there'\n")


class TableTest(unittest.TestCase):
    ROWS = [
        "ablate qwen3-0.6b 4096 4 0 77015 32652000000 596049920",
        "ablate qwen3-4b 32768 1 1 FAILED out of memory",
        "ablate qwen3-4b 8192 1 1 11000 70000000000 4022468096",
        "pt-compile qwen3-0.6b 4096 4 0 70000 38439639040 596049920",
        "pt-compile+liger qwen3-0.6b 4096 4 0 50000 31247300000 596049920",
        "hf-liger qwen3-0.6b 4096 4 0 80000 34000000000 596049920",
        "pt-eager qwen3-0.6b 32768 1 1 20000 20000000000 596049920",
    ]

    def lines(self):
        rows = [train_bench_table.Row(r) for r in self.ROWS]
        return train_bench_table.table(rows, 790.0).splitlines()

    def test_ratios_against_the_fastest_compiled_and_leanest_peer(self):
        ours = self.lines()[1]
        # 77,015 tokens/s of 6N + attention = 384 TFLOP/s, 48.6% of 790.
        self.assertIn("77,015     384  48.6%", ours)
        self.assertIn("0.96x hf-liger           1.10x", ours)  # fastest, compiled: 77015 / 70000
        self.assertIn("1.04x pt-compile+liger", ours)  # the leanest peer's 29.10 GiB

    def test_no_peer_at_a_shape_leaves_the_ratios_empty(self):
        self.assertTrue(self.lines()[3].endswith("65.19"))

    def test_failures_keep_their_reason(self):
        self.assertTrue(self.lines()[2].endswith("yes FAILED out of memory"))

    def test_a_different_model_is_marked(self):
        row = train_bench_table.Row("ablate qwen3-0.6b 4096 4 0 1000 1 596049921")
        line = train_bench_table.table([row], 790.0).splitlines()[1]
        self.assertIn("596,049,921 parameters, not the shape's 596,049,920", line)


if __name__ == "__main__":
    unittest.main()
