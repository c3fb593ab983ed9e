#!/usr/bin/env python3
"""Trains a small byte-level BPE tokenizer.json on text files, for models with small vocabularies.

Usage:
  .venv/bin/python scripts/train_tokenizer.py --vocab-size 256 --out DIR/tokenizer.json INPUT...

An INPUT is a text file or a directory of them (searched recursively). The tokenizer splits
text as GPT-2 and Qwen3 do (Hugging Face's ByteLevel pre-tokenizer), learns BPE merges until
the vocabulary holds --vocab-size ids, and reserves id 0 for <|endoftext|>, the document
separator scripts/prepare_data.py writes. Its alphabet is the bytes the inputs use, not all 256
(which would leave no room for merges in a vocabulary of 256), so text with other bytes loses
them; it is meant for the corpus it was trained on: tests and CPU demos of the `tiny` and
`mini` models, whose vocabulary is 256. Real runs use the model's own tokenizer (Qwen3's).
"""

import argparse
import pathlib
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True, help="the tokenizer.json")
    parser.add_argument("inputs", nargs="+", type=pathlib.Path, metavar="INPUT")
    args = parser.parse_args(argv)

    files = []
    for path in args.inputs:
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(str(path))
        else:
            print(f"train_tokenizer: error: {path}: no such file or directory", file=sys.stderr)
            return 1

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, special_tokens=[EOS],
                                  show_progress=False)
    tokenizer.train(files, trainer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(args.out))
    print(f"train_tokenizer: wrote {args.out}: {tokenizer.get_vocab_size()} ids from "
          f"{len(files)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
