#!/usr/bin/env python3
"""Tokenizes text into a dataset directory the trainer memory-maps.

Usage:
  .venv/bin/python scripts/prepare_data.py --tokenizer PATH/tokenizer.json --out DIR
      [--valid-fraction 0.005] [--text-field text] [--eos TOKEN] [--txt-documents file]
      INPUT...

An INPUT is a file or a directory (searched recursively, in name order, skipping hidden
files and folders). By its name:
  *.parquet            one document per row of the text column (--text-field, default "text"),
                       read a thousand rows at a time;
  *.jsonl, *.jsonl.gz  one document per line, a JSON object with a text field (--text-field);
  anything else        UTF-8 text: the whole file is one document (--txt-documents file, the
                       default), or each run of lines between blank lines is one
                       (--txt-documents paragraphs). A whole-file document is read whole.
Empty documents are skipped.

DIR receives, in nanoGPT's layout, a flat array of little-endian token ids per split (uint16
when the vocabulary has at most 65,536 ids, else uint32), every document followed by the EOS
token, the way Megatron-LM separates documents:
  train.bin, valid.bin   the splits; a document goes to valid when the first 8 bytes of the
                         SHA-256 of its UTF-8 text, read as a big-endian integer, fall below
                         valid_fraction * 2^64. The split therefore depends on the text alone,
                         not on input order, and repeated copies of a document land together.
  dataset.json           the manifest (fields listed at the end of --help), written last: one
                         without it is an unfinished preparation, which the trainer refuses.
The EOS token is --eos when given, else the first of <|endoftext|>, </s>, <|end_of_text|>,
<eos> that the tokenizer has (Qwen3's base and instruct tokenizers both have <|endoftext|>,
its pretraining document separator), else tokenizer_config.json's eos_token beside it.

Progress (documents/s, tokens so far) goes to stderr every few seconds. Bad input (invalid
UTF-8, a malformed JSON line, a missing field or column) stops with an error naming the file,
and the line where there is one. Memory stays bounded by --batch-bytes of text at a time (plus
the largest whole-file document).
"""

import argparse
import gzip
import hashlib
import json
import os
import pathlib
import sys
import time

import numpy as np
import pyarrow.parquet as pq
from tokenizers import Tokenizer

VERSION = "1"
EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>")
SPLITS = ("train", "valid")
PROGRESS_SECONDS = 5.0
PARQUET_ROWS = 1024

MANIFEST = """
dataset.json:
  format              "ablate-tokens"
  version             the version of prepare_data.py that wrote it
  tokenizer           {path, sha256, vocab_size}: the tokenizer.json used
  vocab_size          ids are below it (the tokenizer's vocabulary with its added tokens)
  token_bytes, dtype  2 and "uint16", or 4 and "uint32"
  eos_id, eos_token   the separator after every document
  valid_fraction      as given
  splits              {train, valid}: {file, tokens, documents, sha256 of the file}
  sha256              of the text `sha256sum train.bin valid.bin` prints in DIR
  inputs, text_field, txt_documents   what was tokenized, as given
"""


class InputError(Exception):
    """Bad input, with the file (and line) it was found in."""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=MANIFEST,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, type=pathlib.Path,
                        help="a Hugging Face tokenizer.json")
    parser.add_argument("--out", required=True, type=pathlib.Path, help="the dataset directory")
    parser.add_argument("--valid-fraction", type=float, default=0.005,
                        help="share of documents held out (default 0.005)")
    parser.add_argument("--text-field", default="text",
                        help="JSONL field and Parquet column holding the text (default text)")
    parser.add_argument("--eos", help="the token written after every document")
    parser.add_argument("--txt-documents", choices=("file", "paragraphs"), default="file",
                        help="a text file is one document, or one per blank-line paragraph")
    parser.add_argument("--batch-bytes", type=int, default=8 << 20,
                        help="text tokenized at once (default 8 MiB)")
    parser.add_argument("inputs", nargs="+", type=pathlib.Path, metavar="INPUT")
    args = parser.parse_args(argv)
    if not 0 < args.valid_fraction < 1:
        parser.error(f"--valid-fraction must be between 0 and 1, got {args.valid_fraction}")
    return args


def input_files(inputs):
    for path in inputs:
        if path.is_dir():
            # Hidden entries are tools' bookkeeping (a download's .cache/, .gitattributes).
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def read_text(path):
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None


def text_documents(path, mode):
    if mode == "file":
        yield read_text(path)
        return
    paragraph = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{number}: not UTF-8 text ({e.reason})") from None
            if line.strip():
                paragraph.append(line)
            elif paragraph:
                yield "".join(paragraph)
                paragraph = []
    if paragraph:
        yield "".join(paragraph)


def jsonl_documents(path, field):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        try:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{number}: not a JSON line ({e.msg})") from None
                if not isinstance(record, dict) or field not in record:
                    raise InputError(f"{path}:{number}: no field '{field}' (--text-field)")
                if not isinstance(record[field], str):
                    raise InputError(f"{path}:{number}: field '{field}' is not a string")
                yield record[field]
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None


def parquet_documents(path, field):
    try:
        table = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file it cannot read
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None
    if field not in table.schema_arrow.names:
        raise InputError(f"{path}: no column '{field}' (--text-field); columns: "
                         f"{', '.join(table.schema_arrow.names)}")
    for batch in table.iter_batches(batch_size=PARQUET_ROWS, columns=[field]):
        for value in batch.column(0).to_pylist():
            if value is not None and not isinstance(value, str):
                raise InputError(f"{path}: column '{field}' holds {type(value).__name__}, "
                                 "not text")
            if value:
                yield value


def documents(args):
    for path in input_files(args.inputs):
        name = path.name
        if name.endswith(".parquet"):
            yield from parquet_documents(path, args.text_field)
        elif name.endswith((".jsonl", ".jsonl.gz")):
            yield from jsonl_documents(path, args.text_field)
        else:
            yield from text_documents(path, args.txt_documents)


def find_eos(tokenizer, tokenizer_path, requested):
    if requested is not None:
        eos_id = tokenizer.token_to_id(requested)
        if eos_id is None:
            raise InputError(f"{tokenizer_path}: has no token '{requested}' (--eos)")
        return requested, eos_id
    for token in EOS_CANDIDATES:
        if tokenizer.token_to_id(token) is not None:
            return token, tokenizer.token_to_id(token)
    config = tokenizer_path.parent / "tokenizer_config.json"
    if config.is_file():
        eos = json.loads(config.read_text()).get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if eos and tokenizer.token_to_id(eos) is not None:
            return eos, tokenizer.token_to_id(eos)
    raise InputError(f"{tokenizer_path}: no EOS token found among {', '.join(EOS_CANDIDATES)} "
                     "or in tokenizer_config.json; name one with --eos")


def in_valid(text, threshold):
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < threshold


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class SplitWriter:
    """Appends token arrays to DIR/<split>.bin.tmp, hashing what it writes."""

    def __init__(self, out, split, dtype):
        self.path = out / f"{split}.bin"
        self.tmp = out / f"{split}.bin.tmp"
        self.file = open(self.tmp, "wb")
        self.dtype = dtype
        self.digest = hashlib.sha256()
        self.tokens = 0
        self.documents = 0

    def write(self, encodings, eos_id):
        if not encodings:
            return
        ids = [np.asarray(e.ids, dtype=self.dtype) for e in encodings]
        eos = np.array([eos_id], dtype=self.dtype)
        data = np.concatenate([part for doc in ids for part in (doc, eos)]).astype(
            self.dtype.newbyteorder("<"), copy=False).tobytes()
        self.file.write(data)
        self.digest.update(data)
        self.tokens += len(data) // self.dtype.itemsize
        self.documents += len(encodings)

    def abandon(self):
        self.file.close()
        self.tmp.unlink(missing_ok=True)

    def finish(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)
        return {"file": self.path.name, "tokens": self.tokens, "documents": self.documents,
                "sha256": self.digest.hexdigest()}


class Progress:
    def __init__(self):
        self.start = self.last = time.monotonic()

    def report(self, writers, final=False):
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        docs = sum(w.documents for w in writers.values())
        tokens = sum(w.tokens for w in writers.values())
        rate = docs / max(now - self.start, 1e-9)
        print(f"prepare_data: {docs} documents ({rate:.0f}/s), {tokens} tokens"
              f"{' in %.1f s' % (now - self.start) if final else ''}", file=sys.stderr,
              flush=True)


def prepare(args):
    tokenizer_path = args.tokenizer.resolve()
    if not tokenizer_path.is_file():
        raise InputError(f"{args.tokenizer}: no such tokenizer file")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as e:  # tokenizers raises a bare Exception for a malformed file
        raise InputError(f"{args.tokenizer}: not a tokenizer.json ({e})") from None
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    token_bytes = 2 if vocab_size <= 1 << 16 else 4
    dtype = np.dtype(np.uint16 if token_bytes == 2 else np.uint32)
    eos_token, eos_id = find_eos(tokenizer, tokenizer_path, args.eos)

    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "dataset.json"
    # Until the new manifest is written, the directory is an unfinished preparation.
    manifest_path.unlink(missing_ok=True)
    writers = {split: SplitWriter(args.out, split, dtype) for split in SPLITS}
    threshold = int(args.valid_fraction * 2**64)
    progress = Progress()
    batch, batch_bytes = [], 0

    def flush():
        encodings = tokenizer.encode_batch(batch, add_special_tokens=False)
        held_out = [in_valid(text, threshold) for text in batch]
        writers["train"].write([e for e, h in zip(encodings, held_out) if not h], eos_id)
        writers["valid"].write([e for e, h in zip(encodings, held_out) if h], eos_id)
        batch.clear()
        progress.report(writers)

    try:
        for text in documents(args):
            if not text:
                continue
            batch.append(text)
            batch_bytes += len(text)
            if batch_bytes >= args.batch_bytes:
                flush()
                batch_bytes = 0
        if batch:
            flush()
        progress.report(writers, final=True)
        for split, writer in writers.items():
            if writer.documents == 0:
                received = sum(w.documents for w in writers.values())
                # A lone text file is one document unless split at its blank lines.
                hint = (" (a text file is one document; --txt-documents paragraphs makes each "
                        "blank-line paragraph one)"
                        if received < 2 and args.txt_documents != "paragraphs" else "")
                raise InputError(f"{args.out}: the {split} split received no documents of "
                                 f"{received}{hint}; give more input or change "
                                 "--valid-fraction")
    except BaseException:
        for writer in writers.values():
            writer.abandon()
        raise
    splits = {split: writer.finish() for split, writer in writers.items()}
    listing = "".join(f"{splits[s]['sha256']}  {splits[s]['file']}\n" for s in SPLITS)
    manifest = {
        "format": "ablate-tokens",
        "version": VERSION,
        "tokenizer": {"path": str(tokenizer_path), "sha256": file_sha256(tokenizer_path),
                      "vocab_size": vocab_size},
        "vocab_size": vocab_size,
        "token_bytes": token_bytes,
        "dtype": dtype.name,
        "eos_id": eos_id,
        "eos_token": eos_token,
        "valid_fraction": args.valid_fraction,
        "splits": splits,
        "sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "inputs": [str(p) for p in args.inputs],
        "text_field": args.text_field,
        "txt_documents": args.txt_documents,
    }
    tmp = args.out / "dataset.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    return manifest


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = prepare(args)
    except InputError as e:
        print(f"prepare_data: error: {e}", file=sys.stderr)
        return 1
    print(f"prepare_data: wrote {args.out}: "
          + ", ".join(f"{s} {manifest['splits'][s]['tokens']} tokens in "
                      f"{manifest['splits'][s]['documents']} documents" for s in SPLITS)
          + f", {manifest['dtype']}, eos {manifest['eos_token']}={manifest['eos_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
