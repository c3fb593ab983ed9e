#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang, ASan and UBSan into their own folder (default
# build-fuzz), then runs each for SECONDS (default 60) from the seed corpora: fuzz/corpus/NAME,
# plus the example sweep files for the sweep parser. New inputs are kept in the build folder,
# never in the tree. A crash leaves its input as build-fuzz/crashes/NAME/crash-* and fails.
#   bash scripts/fuzz.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build_dir=${2:-build-fuzz}
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$build_dir/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DABLATE_FUZZ=ON -DABLATE_BUILD_TRAINER=OFF -DABLATE_BUILD_TESTS=OFF \
    -DCMAKE_C_FLAGS="$sanitize" -DCMAKE_CXX_FLAGS="$sanitize" >/dev/null
fi
targets=(sweep_file_fuzz http_json_fuzz event_pipe_fuzz)
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"

status=0
for target in "${targets[@]}"; do
  name=${target%_fuzz}
  corpus="$build_dir/corpus/$name"
  crashes="$build_dir/crashes/$name"
  mkdir -p "$corpus" "$crashes"
  seeds=(fuzz/corpus/"$name")
  if [ "$name" = sweep_file ]; then seeds+=(examples examples/shapes); fi
  echo "fuzz: $target for ${seconds}s"
  # -rss_limit_mb: a parser that lets a small input grow past this is a bug, not a big input.
  if ! "$build_dir/bin/$target" "$corpus" "${seeds[@]}" -max_total_time="$seconds" \
      -max_len=65536 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$crashes/" 2>"$build_dir/$target.log"; then
    echo "fuzz: $target FAILED; input and report:" >&2
    ls "$crashes" >&2
    tail -40 "$build_dir/$target.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build_dir/$target.log" |
      sed "s/^/fuzz: $target /"
  fi
done
exit $status
