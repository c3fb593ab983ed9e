#!/usr/bin/env bash
# Configures (once) and builds Ablate into the given folder (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
# Objects are shared between clones and build folders of this machine: paths inside the tree
# are hashed relative to it.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
# Trainer targets share a precompiled LibTorch header; ccache caches its users only when told
# the header is built with the same macros (it is: one set of flags for all of them).
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
torch_prefix=$(.venv/bin/python -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$torch_prefix" ${ABLATE_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$build_dir" -j"$(nproc)"
