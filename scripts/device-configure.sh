# Sourced by the scripts/device-*.sh scripts on a GPU machine: configures "$build" (default
# build-gpu) against that machine's CUDA LibTorch, and defines device_build LOG_DIR TARGET...
# (builds the targets, the output in LOG_DIR/build.log; on failure prints its errors and exits),
# with build type ${1:-Release}, tests only with ABLATE_BUILD_TESTS=ON in the environment.
# Where the build's packages come from:
#  - a machine that can install packages: scripts/install-deps.sh's Debian packages, and
#    python3 (or PYTHON) importing a CUDA build of torch (`pip install torch` on Linux is one);
#  - a machine without package access: the Debian packages in .device-deps/ beside an unpack.sh
#    that unpacks them and exports DEPS_PREFIX and TORCH_CMAKE_PREFIX (docs/toolchain-notes.md).
# Warnings are not errors there: a newer GCC reports false positives inside libstdc++ and
# LibTorch (cmake/AblateTargets.cmake).
if [ -f .device-deps/unpack.sh ]; then
  source .device-deps/unpack.sh
fi
if [ -z "${TORCH_CMAKE_PREFIX:-}" ]; then
  python=${PYTHON:-python3}
  if ! "$python" -c 'import sys, torch; sys.exit(torch.version.cuda is None)' 2>/dev/null; then
    echo "device-configure: $python does not import a CUDA build of torch; install one" \
      "(pip install torch) or set PYTHON to a python that has it" >&2
    exit 1
  fi
  TORCH_CMAKE_PREFIX=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
fi
protobuf_args=()
if [ -n "${DEPS_PREFIX:-}" ]; then  # Protobuf from the unpacked packages, not torch's copy
  protobuf_args=(-DProtobuf_PROTOC_EXECUTABLE="$DEPS_PREFIX/bin/protoc"
    -DProtobuf_INCLUDE_DIR="$DEPS_PREFIX/include"
    -DProtobuf_LIBRARY="$DEPS_PREFIX/lib/x86_64-linux-gnu/libprotobuf.so")
fi
build=${build:-build-gpu}
mkdir -p "$build"
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${1:-Release}" \
  -DABLATE_BUILD_TESTS="${ABLATE_BUILD_TESTS:-OFF}" -DABLATE_WERROR=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX${DEPS_PREFIX:+;$DEPS_PREFIX}" "${protobuf_args[@]}" \
  >"$build/configure.log" 2>&1; then
  tail -30 "$build/configure.log" >&2
  echo "device-configure: cmake failed; the whole output is in $build/configure.log" >&2
  exit 1
fi

device_build() {
  local logs=$1
  shift
  if ! cmake --build "$build" -j"$(nproc)" --target "$@" >"$logs/build.log" 2>&1; then
    grep -A5 "error" "$logs/build.log" | head -60
    exit 1
  fi
}
