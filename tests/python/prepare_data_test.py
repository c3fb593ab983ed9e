"""Tests of scripts/prepare_data.py: run as a user runs it, its output read back with numpy and
decoded with the same Hugging Face tokenizer, which serves as the reference."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prepare_data.py"

WORDS = ("the quick brown fox jumps over a lazy dog while seven owls count twelve red apples "
         "under one old bridge near the river").split()


def make_documents(count, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 40))) + "." for _ in range(count)]


def byte_level_bpe(path, texts, vocab_size=300, eos="<|endoftext|>"):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[eos] if eos else [], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(path))
    return tokenizer


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, check=False)


def read_split(out, split, manifest):
    return np.fromfile(out / f"{split}.bin", dtype=np.dtype(manifest["dtype"]).newbyteorder("<"))


def split_documents(tokens, eos_id, tokenizer):
    """The documents of a split, decoded: the text between EOS tokens, the last one closing."""
    assert len(tokens) == 0 or tokens[-1] == eos_id
    ends = np.flatnonzero(tokens == eos_id)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [tokenizer.decode(tokens[s:e].tolist()) for s, e in zip(starts, ends)]


class PrepareDataTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(self.tmp.name)
        self.docs = make_documents(400, seed=1)
        self.tokenizer = byte_level_bpe(self.dir / "tokenizer.json", self.docs)

    def tearDown(self):
        self.tmp.cleanup()

    def write_inputs(self):
        """The documents spread over a text file, a JSONL file and a Parquet file."""
        inputs = self.dir / "inputs"
        (inputs / "deeper").mkdir(parents=True)
        (inputs / "a.txt").write_text(self.docs[0])
        with open(inputs / "b.jsonl", "w") as f:
            for doc in self.docs[1:200]:
                f.write(json.dumps({"id": 1, "text": doc}) + "\n")
        pq.write_table(pa.table({"text": self.docs[200:], "n": range(200)}),
                       inputs / "deeper" / "c.parquet", row_group_size=64)
        return inputs

    def test_every_document_lands_once_with_an_eos_after_it(self):
        out = self.dir / "out"
        result = run("--tokenizer", self.dir / "tokenizer.json", "--out", out,
                     "--valid-fraction", "0.1", self.write_inputs())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("documents", result.stderr)  # progress
        manifest = json.loads((out / "dataset.json").read_text())
        eos_id = self.tokenizer.token_to_id("<|endoftext|>")
        self.assertEqual(manifest["eos_id"], eos_id)
        self.assertEqual(manifest["dtype"], "uint16")
        self.assertEqual(manifest["token_bytes"], 2)
        self.assertEqual(manifest["vocab_size"], self.tokenizer.get_vocab_size())

        decoded = {}
        for split in ("train", "valid"):
            tokens = read_split(out, split, manifest)
            entry = manifest["splits"][split]
            self.assertEqual(entry["tokens"], len(tokens))
            self.assertEqual(entry["sha256"],
                             hashlib.sha256((out / f"{split}.bin").read_bytes()).hexdigest())
            decoded[split] = split_documents(tokens, eos_id, self.tokenizer)
            self.assertEqual(entry["documents"], len(decoded[split]))
        self.assertCountEqual(decoded["train"] + decoded["valid"], self.docs)
        self.assertGreater(len(decoded["valid"]), 10)
        self.assertLess(len(decoded["valid"]), 80)
        # The held-out split is chosen by the text alone.
        for doc in self.docs:
            digest = hashlib.sha256(doc.encode()).digest()
            held_out = int.from_bytes(digest[:8], "big") < 0.1 * 2**64
            self.assertIn(doc, decoded["valid"] if held_out else decoded["train"])
        listing = "".join(f"{manifest['splits'][s]['sha256']}  {s}.bin\n"
                          for s in ("train", "valid"))
        self.assertEqual(manifest["sha256"], hashlib.sha256(listing.encode()).hexdigest())
        self.assertEqual(manifest["tokenizer"]["sha256"], hashlib.sha256(
            (self.dir / "tokenizer.json").read_bytes()).hexdigest())
        self.assertFalse(list(out.glob("*.tmp")))

    def test_the_split_does_not_depend_on_input_order(self):
        first, second = self.dir / "first.jsonl", self.dir / "second.jsonl"
        first.write_text("".join(json.dumps({"text": d}) + "\n" for d in self.docs))
        second.write_text("".join(json.dumps({"text": d}) + "\n" for d in reversed(self.docs)))
        manifests = []
        for name, path in (("one", first), ("two", second)):
            result = run("--tokenizer", self.dir / "tokenizer.json", "--out", self.dir / name,
                         "--valid-fraction", "0.2", path)
            self.assertEqual(result.returncode, 0, result.stderr)
            manifests.append(json.loads((self.dir / name / "dataset.json").read_text()))
        for split in ("train", "valid"):
            self.assertEqual(manifests[0]["splits"][split]["documents"],
                             manifests[1]["splits"][split]["documents"])
            self.assertEqual(manifests[0]["splits"][split]["tokens"],
                             manifests[1]["splits"][split]["tokens"])

    def test_text_files_split_into_paragraphs_when_asked(self):
        text = self.dir / "book.txt"
        text.write_text("\n\n".join(self.docs[:50]) + "\n")
        out = self.dir / "out"
        result = run("--tokenizer", self.dir / "tokenizer.json", "--out", out,
                     "--valid-fraction", "0.2", "--txt-documents", "paragraphs", text)
        self.assertEqual(result.returncode, 0, result.stderr)
        manifest = json.loads((out / "dataset.json").read_text())
        self.assertEqual(manifest["splits"]["train"]["documents"]
                         + manifest["splits"]["valid"]["documents"], 50)
        # Without the flag the file is one document, which cannot fill both splits: said so.
        result = run("--tokenizer", self.dir / "tokenizer.json", "--out", self.dir / "one",
                     "--valid-fraction", "0.2", text)
        self.assertEqual(result.returncode, 1)
        self.assertIn("split received no documents of 1 (a text file is one document; "
                      "--txt-documents paragraphs makes each blank-line paragraph one)",
                      result.stderr)

    def test_a_large_vocabulary_writes_four_byte_ids(self):
        vocab = {"<|endoftext|>": 0, "[UNK]": 1}
        vocab.update({f"w{i}": i + 2 for i in range(70000)})
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tokenizer.save(str(self.dir / "big.json"))
        text = self.dir / "doc.txt"
        text.write_text("w1 w69999 w65536 w3")
        other = self.dir / "other.txt"
        other.write_text("w7")
        out = self.dir / "out"
        result = run("--tokenizer", self.dir / "big.json", "--out", out,
                     "--valid-fraction", "0.5", text, other)
        self.assertEqual(result.returncode, 0, result.stderr)
        manifest = json.loads((out / "dataset.json").read_text())
        self.assertEqual((manifest["token_bytes"], manifest["dtype"]), (4, "uint32"))
        tokens = np.concatenate([read_split(out, s, manifest) for s in ("train", "valid")])
        self.assertIn([3, 70001, 65538, 5, 0], [tokens[:5].tolist(), tokens[2:].tolist()])

    def test_bad_input_names_the_file_and_leaves_no_dataset(self):
        out = self.dir / "out"
        good = self.dir / "good.jsonl"
        good.write_text("".join(json.dumps({"text": d}) + "\n" for d in self.docs))
        self.assertEqual(run("--tokenizer", self.dir / "tokenizer.json", "--out", out, good)
                         .returncode, 0)
        self.assertTrue((out / "dataset.json").exists())

        no_field = self.dir / "no_field.jsonl"
        no_field.write_text('{"text": "fine"}\n{"body": "where is the text"}\n')
        bad_json = self.dir / "bad.jsonl"
        bad_json.write_text('{"text": "fine"}\n{"text": \n')
        bad_utf8 = self.dir / "bad.txt"
        bad_utf8.write_bytes(b"caf\xe9 au lait")
        no_column = self.dir / "no_column.parquet"
        pq.write_table(pa.table({"content": ["x"]}), no_column)
        cases = [
            ([no_field], f"{no_field}:2: no field 'text'"),
            ([bad_json], f"{bad_json}:2: not a JSON line"),
            ([bad_utf8], f"{bad_utf8}: not UTF-8 text"),
            ([no_column], f"{no_column}: no column 'text' (--text-field); columns: content"),
            ([self.dir / "missing.txt"], "missing.txt: no such file or directory"),
        ]
        for inputs, message in cases:
            result = run("--tokenizer", self.dir / "tokenizer.json", "--out", out, good, *inputs)
            self.assertEqual(result.returncode, 1, message)
            self.assertIn(message, result.stderr)
            self.assertFalse((out / "dataset.json").exists(), message)
            self.assertFalse(list(out.glob("*.tmp")), message)

        result = run("--tokenizer", self.dir / "tokenizer.json", "--out", out,
                     "--text-field", "body", no_field)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{no_field}:1: no field 'body'", result.stderr)

    def test_the_eos_token_is_found_or_must_be_named(self):
        byte_level_bpe(self.dir / "no_eos.json", self.docs, eos=None)
        doc = self.dir / "doc.txt"
        doc.write_text(self.docs[0])
        result = run("--tokenizer", self.dir / "no_eos.json", "--out", self.dir / "out", doc)
        self.assertEqual(result.returncode, 1)
        self.assertIn("no EOS token found", result.stderr)
        result = run("--tokenizer", self.dir / "tokenizer.json", "--out", self.dir / "out",
                     "--eos", "<nope>", doc)
        self.assertEqual(result.returncode, 1)
        self.assertIn("has no token '<nope>' (--eos)", result.stderr)

        byte_level_bpe(self.dir / "sep.json", self.docs, eos="<|doc|>")
        (self.dir / "tokenizer_config.json").write_text('{"eos_token": {"content": "<|doc|>"}}')
        docs = self.dir / "docs.jsonl"
        docs.write_text("".join(json.dumps({"text": d}) + "\n" for d in self.docs))
        result = run("--tokenizer", self.dir / "sep.json", "--out", self.dir / "out", docs)
        self.assertEqual(result.returncode, 0, result.stderr)
        manifest = json.loads((self.dir / "out" / "dataset.json").read_text())
        self.assertEqual(manifest["eos_token"], "<|doc|>")
        self.assertEqual(manifest["eos_id"], 0)

if __name__ == "__main__":
    unittest.main()
