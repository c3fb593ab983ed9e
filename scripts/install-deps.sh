#!/usr/bin/env bash
# Installs everything Ablate needs to build, test and run on a fresh Debian 12 machine.
# Idempotent: a second run only checks, so `make demo` and `make test` call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libsqlite3-dev prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  chromium
  clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14
)
# The long set's Slurm test runs a one-node cluster of Debian's own packages.
if [ "${ABLATE_TEST_ALL:-0}" = 1 ]; then APT_PACKAGES+=(slurm-wlm munge); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js and npm build the dashboard (web/) and run its tests; any Node 18 or newer will do, so
# a machine that has them from elsewhere keeps its own. The npm packages themselves are pinned
# by web/package-lock.json and installed by the build (`npm ci`).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# LibTorch comes from torch's wheel, kept in a virtual environment inside the repo: the build
# pip's index offers. PyPI's for Linux is the CUDA build, which runs on CPU too; pip's own
# PIP_EXTRA_INDEX_URL set to PyTorch's CPU wheel index gives the smaller +cpu build.
TORCH_VERSION=2.13.0
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "install-deps: installing torch $TORCH_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" numpy
fi
# Data preparation and the reference implementations the tests compare against, pinned to that
# torch. The stamp records which requirements were installed, so an unchanged list costs nothing.
stamp=.venv/.ablate-requirements
if ! cmp -s scripts/python/requirements.txt "$stamp" 2>/dev/null; then
  echo "install-deps: installing scripts/python/requirements.txt into .venv"
  .venv/bin/pip install -q --disable-pip-version-check \
    -c scripts/python/constraints.txt -r scripts/python/requirements.txt
  # Emerging-Optimizers (the SOAP reference) declares Python >= 3.12 for typing.override alone;
  # the tests supply that name on 3.11, so its version check is the one thing skipped.
  .venv/bin/pip install -q --disable-pip-version-check --ignore-requires-python \
    -c scripts/python/constraints.txt "emerging-optimizers==0.3.0"
  cp scripts/python/requirements.txt "$stamp"
fi
echo "install-deps: ok"
