# Sourced by the scripts/device-*.sh scripts, on a GPU machine with .device-deps/ carried along:
# unpacks the Debian packages a build needs and configures "$build" (default build-gpu) against
# that machine's CUDA LibTorch, and defines device_build LOG_DIR TARGET... (builds the targets,
# the output in LOG_DIR/build.log; on failure prints its errors and exits), with build type ${1:-Release}, tests only with
# ABLATE_BUILD_TESTS=ON in the environment. Warnings are not errors there:
# its newer GCC reports false positives inside libstdc++ and LibTorch (cmake/AblateTargets.cmake).
source .device-deps/unpack.sh
build=${build:-build-gpu}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${1:-Release}" -DABLATE_BUILD_TESTS="${ABLATE_BUILD_TESTS:-OFF}" \
  -DABLATE_WERROR=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX;$DEPS_PREFIX" \
  -DProtobuf_PROTOC_EXECUTABLE="$DEPS_PREFIX/bin/protoc" \
  -DProtobuf_INCLUDE_DIR="$DEPS_PREFIX/include" \
  -DProtobuf_LIBRARY="$DEPS_PREFIX/lib/x86_64-linux-gnu/libprotobuf.so" >/dev/null

device_build() {
  local logs=$1
  shift
  if ! cmake --build "$build" -j"$(nproc)" --target "$@" >"$logs/build.log" 2>&1; then
    grep -A5 "error" "$logs/build.log" | head -60
    exit 1
  fi
}
