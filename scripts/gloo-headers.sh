#!/usr/bin/env bash
# Puts the headers of Gloo (the collective library inside LibTorch's CPU build) in .deps/gloo.
# LibTorch ships ProcessGroupGloo's header but not the Gloo headers it includes; the trainer's
# multi-rank CPU jobs need them to compile (trainer_lib/dist/CMakeLists.txt). The library
# itself is already linked into libtorch_cpu, so only headers are taken. Idempotent. GLOO_REPO
# names another clone to fetch from (a machine without network), GLOO_DEST another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
GLOO_COMMIT=cc441984208d0b54b4fc614301f41e82e951e5cd  # a commit whose headers match torch 2.13
dest=${GLOO_DEST:-.deps/gloo}
if [ -f "$dest/gloo/rendezvous/store.h" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$tmp" init -q
git -C "$tmp" fetch -q --depth 1 "${GLOO_REPO:-https://github.com/facebookincubator/gloo}" "$GLOO_COMMIT"
mkdir -p "$dest"
git -C "$tmp" archive FETCH_HEAD gloo LICENSE | tar -x -C "$dest"
echo "gloo-headers: $dest at $GLOO_COMMIT"
