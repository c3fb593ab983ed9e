#!/usr/bin/env bash
# Prepares a real-text dataset large enough for GPU runs of real model sizes: the
# reStructuredText sources of the Linux kernel's documentation and of Python's (about 42 MB of
# English prose and examples in 3,700 files, from Debian's linux-doc-6.1 and python3.11-doc
# packages, fetched with apt-get download and unpacked here, never installed), tokenized with a
# 32,768-id byte-level BPE trained on them: about 10M tokens, stored as uint16, which any Qwen3
# vocabulary (151,936 ids) covers. Does nothing when DIR already holds a finished dataset.
# Usage: scripts/prepare_kernel_docs.sh [DIR]   (default data/kernel-docs)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/kernel-docs}
if [ -s "$out/dataset.json" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download linux-doc-6.1 python3.11-doc >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/unpacked"; done
mkdir -p "$work/text"
find "$work/unpacked" -name '*.rst.txt' -path '*/_sources/*' -exec cp --parents -t "$work/text" {} +
echo "prepare_kernel_docs: $(find "$work/text" -type f | wc -l) files," \
  "$(du -sm "$work/text" | cut -f1) MB of text"
mkdir -p "$out"
.venv/bin/python scripts/train_tokenizer.py --vocab-size 32768 --out "$out/tokenizer.json" \
  "$work/text"
.venv/bin/python scripts/prepare_data.py --tokenizer "$out/tokenizer.json" --out "$out" \
  --valid-fraction 0.01 "$work/text"
