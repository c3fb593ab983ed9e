#!/usr/bin/env bash
# Builds and tests the torch-free parts (coordinator, worker, CLI, common, sweep and their
# tests) under sanitizers, in a build folder of their own with the trainer left out:
#   bash scripts/sanitize.sh asan [BUILD_DIR]  ASan + UBSan, the default test set less the
#                                              browser, Python, oracle and data tests (CI)
#   bash scripts/sanitize.sh tsan [BUILD_DIR]  TSan, the coordinator's and worker's tests (long)
# A sanitizer report fails the test that caused it (halt_on_error, no recovery from UBSan).
# Warnings are not errors here: GCC's flow analysis sees sanitizer-instrumented libstdc++ (its
# std::regex, say) and reports uninitialized values that the normal build does not have.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: sanitize.sh asan|tsan [BUILD_DIR]}
build_dir=${2:-build-$kind}
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
case "$kind" in
  asan)
    flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    # The tests of the torch-free folders; the dashboard's, Python, deployment-file and
    # reference-data tests add nothing a sanitizer sees in our code and take most of the time.
    tests=(-LE 'long|web|python|oracle|data' -E '^deploy_test$')
    ;;
  tsan)
    # Debian builds protobuf and Abseil without TSan, and headers that see __SANITIZE_THREAD__
    # change layouts (protobuf's MapFieldBase gains two counters), so our objects and those
    # libraries disagree on where a map field's members are: a crash on the first map insert.
    # Headers must see the libraries as they were built.
    flags="-fsanitize=thread -fno-omit-frame-pointer -U__SANITIZE_THREAD__"
    targets=(coordinator_store_test coordinator_feed_test scheduler_test service_test
             sweep_api_test http_test coordinator_server_test worker_test)
    ;;
  *)
    echo "sanitize.sh: unknown kind '$kind' (asan, tsan)" >&2
    exit 2
    ;;
esac
# -O1 and line tables only (-g1): the sanitizers' advice for speed, with file:line in reports,
# and the build costs less than at -O2 -g on CI's two cores.
opt="-O1 -g1 -DNDEBUG"
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt" \
    -DABLATE_BUILD_TRAINER=OFF -DABLATE_WERROR=OFF \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
fi
if [ "$kind" = asan ]; then
  # Every test program and the binaries they start; not the dashboard or the benchmarks.
  mapfile -t targets < <(ninja -C "$build_dir" -t targets all |
    sed -n 's/^\(tests\/[A-Za-z0-9_-]*\): CXX_EXECUTABLE_LINKER.*/\1/p')
  targets+=(bin/ablate bin/ablate-coordinator bin/ablate-worker)
fi
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"
if [ "$kind" = tsan ]; then
  # Abseil's locks made visible to TSan (see the file); without it every member an absl::Mutex
  # guards reads as a race.
  c++ -std=c++20 -O1 -fPIC -shared $flags -o "$build_dir/libtsan_absl_sync.so" \
    scripts/tsan/absl_sync.cc -ldl
fi
echo "sanitize: $kind build took ${SECONDS}s"
built_at=$SECONDS
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan/suppressions.txt"
if [ "$kind" = asan ]; then
  ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "${tests[@]}"
else
  for target in "${targets[@]}"; do
    echo "sanitize: $target under TSan"
    LD_PRELOAD="$(cd "$build_dir" && pwd)/libtsan_absl_sync.so" \
      ABLATE_BIN_DIR="$(cd "$build_dir" && pwd)/bin" "$build_dir/tests/$target"
  done
fi
echo "sanitize: $kind tests took $((SECONDS - built_at))s"
