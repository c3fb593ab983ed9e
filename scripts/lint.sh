#!/usr/bin/env bash
# Style checks of Ablate's torch-free C++ (cli, common, coordinator, sweep, worker, fuzz, tests).
#   bash scripts/lint.sh format [--fix] [--all | FILE...]  clang-format with .clang-format
#   bash scripts/lint.sh tidy [--all | FILE...]            clang-tidy with .clang-tidy, using
#                                                          $BUILD_DIR/compile_commands.json
# Without files both take every torch-free source, less (for tidy) those listed in
# scripts/lint-tidy-pending.txt, the files not yet made clang-tidy clean; --all takes them too.
# CI runs both without files. The tree is formatted (`lint.sh format --fix` keeps it so).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: lint.sh format|tidy [--fix] [--all | FILE...]}
shift
fix=0
if [ "${1:-}" = --fix ]; then fix=1; shift; fi
all=0
if [ "${1:-}" = --all ]; then all=1; shift; fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  # Every C++ file of the torch-free folders, less any that includes LibTorch.
  mapfile -t files < <(git ls-files 'cli/*.cc' 'cli/*.h' 'common/*.cc' 'common/*.h' \
    'coordinator/*.cc' 'coordinator/*.h' 'sweep/*.cc' 'sweep/*.h' 'worker/*.cc' 'worker/*.h' \
    'fuzz/*.cc' 'tests/*.cc' 'tests/*.h' | xargs grep -L '#include <torch/' || true)
  if [ "$mode" = tidy ] && [ $all = 0 ]; then
    mapfile -t files < <(printf '%s\n' "${files[@]}" |
      grep -vxF -f <(grep -v '^#' scripts/lint-tidy-pending.txt | sed '/^$/d') || true)
  fi
fi

case "$mode" in
  format)
    if [ $fix = 1 ]; then
      clang-format-14 -i "${files[@]}"
      exit 0
    fi
    clang-format-14 --dry-run --Werror "${files[@]}"
    echo "lint: ${#files[@]} files formatted"
    ;;
  tidy)
    build_dir=${BUILD_DIR:-build}
    sources=()
    # Only sources the build compiles have flags to check with (fuzz/ has its own build).
    for f in "${files[@]}"; do
      [[ $f == *.cc ]] && grep -q "\"file\": \"$PWD/$f\"" "$build_dir/compile_commands.json" &&
        sources+=("$f")
    done
    # Headers are checked through the sources that include them (HeaderFilterRegex).
    printf '%s\n' "${sources[@]}" |
      xargs -P "$(nproc)" -n 4 clang-tidy-14 -p "$build_dir" --quiet 2>/dev/null
    echo "lint: clang-tidy clean on ${#sources[@]} files"
    ;;
  *)
    echo "lint.sh: unknown mode '$mode' (format, tidy)" >&2
    exit 2
    ;;
esac
