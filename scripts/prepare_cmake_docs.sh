#!/usr/bin/env bash
# Prepares a small real-text dataset for CPU runs: CMake's reference documentation (about
# 2.5 MB of English in 1,900 files, installed with cmake by Debian's cmake-data package under
# the BSD 3-clause license), tokenized with a 256-id byte-level BPE trained on it, which fits
# the vocabulary of the `tiny` and `mini` models. Does nothing when DIR already holds a
# finished dataset. Usage: scripts/prepare_cmake_docs.sh [DIR]   (default data/cmake-docs)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/cmake-docs}
if [ -s "$out/dataset.json" ]; then
  exit 0
fi
help=$(find /usr/share -maxdepth 2 -path '/usr/share/cmake-*/Help' -type d | sort | tail -1)
if [ -z "$help" ]; then
  echo "prepare_cmake_docs: no /usr/share/cmake-*/Help; install Debian's cmake-data" >&2
  exit 1
fi
.venv/bin/python scripts/train_tokenizer.py --vocab-size 256 --out "$out/tokenizer.json" "$help"
.venv/bin/python scripts/prepare_data.py --tokenizer "$out/tokenizer.json" --out "$out" \
  --valid-fraction 0.02 "$help"
