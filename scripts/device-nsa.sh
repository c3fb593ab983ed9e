#!/usr/bin/env bash
# NSA's CUDA path on a GPU (the NSA issue's tests and benchmark). On a GPU machine (packages as
# scripts/device-configure.sh says): builds nsa_cuda_test, attention_test and nsa_benchmark against the
# machine's CUDA LibTorch, runs the tests (the selected-branch kernels against the fp32 reference
# within twice PyTorch's bf16 error, poisoned outputs, every head ratio 1-16, head dims 64, 128 and
# 256, odd lengths, blocks selected by thousands of queries, tensors near 2^31 elements; the window
# branch on the same kernels at head ratios 1, 2, 5, 16, windows 512 and 100, blocks 64 and 100; the
# bf16 compressed branch and its gradients within the same rule at head ratios 1, 2, 5, 16, its
# selection against the reference's; the fused selection kernel and the top-blocks kernel against
# the LibTorch chain they replace;
# the window branch on FlashAttention against the reference, its backward in chunks too;
# NsaAttend end to end with and without the window; the gate's kernels against eager products), then
# the benchmark against dense SDPA (the compressed branch with the selection timed on its own too)
# at fla's window and, when that is not 512, a second table at the model's window 512, then
# fla-core's parallel_nsa at the same shapes and fla's window when Python can import fla (FLA_WHEEL,
# if set, is installed first with --no-deps). Everything lands in OUT (default runs/device-nsa):
# build.log, tests.log (each case's kernel and PyTorch bf16 errors), benchmark.md (both tables),
# fla-install.log, fla.md and fla.err, at most six files (LONG=1: long.out, benchmark-long.md;
# ROWS: rows.out, benchmark-rows.md).
# Environment: REPS (default 5) timed runs per cell; MAX_T (default 131072) longest length;
# TESTS_ONLY=1 stops after the tests; LONG=1 runs only the tests and the Qwen3 shapes at 512K and
# 1M tokens with the window of 512 (NSA alone: dense SDPA is not timed there) into
# benchmark-long.md; ROWS="T:window:shape ..." (e.g. "131072:512:qwen3-0.6b 65536:0:fla") runs
# only the tests and those rows into benchmark-rows.md, without fla.
set -uo pipefail
cd "$(dirname "$0")/.."
export ABLATE_BUILD_TESTS=ON
source scripts/device-configure.sh Release
logs=${OUT:-runs/device-nsa}
mkdir -p "$logs"
nvidia-smi -L || true
start=$(date +%s)
stage() { echo "== $1 at $(($(date +%s) - start)) s"; }
device_build "$logs" nsa_cuda_test nsa_benchmark attention_test
stage "build done"

# attention_test's GPU cases: the gate's kernels and NsaAttend on CUDA against the CPU.
"$build/tests/nsa_cuda_test" >"$logs/tests.log" 2>&1 &&
  "$build/tests/attention_test" --gtest_filter='NsaGateTest.*:NsaTest.OnCuda*:NsaFoldTest.*' >>"$logs/tests.log" 2>&1
status=$?
echo "tests (nsa_cuda_test, then attention_test's GPU cases) exit $status"
# A crash (an illegal address, say) ends the binary: the last test it started says where.
if [ "$status" -ne 0 ]; then grep -E '^\[ RUN' "$logs/tests.log" | tail -1; tail -5 "$logs/tests.log"; fi
grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|error|kernel [0-9]|fast [0-9]|blocks differ|CUDA path' \
  "$logs/tests.log" | head -300
stage "tests done"
if [ -n "${TESTS_ONLY:-}" ]; then exit 0; fi
if [ -n "${ROWS:-}" ]; then
  for row in $ROWS; do
    IFS=: read -r t w shape <<<"$row"
    "$build/bin/nsa_benchmark" "${REPS:-5}" "$t" "$w" "$shape" >"$logs/rows.out" 2>&1
    echo "nsa_benchmark $shape $t window $w exit $?"
    grep -E '^(\| [a-z]|<!--)' "$logs/rows.out" | grep -v '^| shape' >>"$logs/benchmark-rows.md"
  done
  cat "$logs/benchmark-rows.md"
  stage "rows done"
  exit 0
fi
if [ -n "${LONG:-}" ]; then
  for shape in qwen3-0.6b qwen3-4b; do
    for t in 524288 1048576; do
      "$build/bin/nsa_benchmark" "${REPS:-5}" "$t" 512 "$shape" >"$logs/long.out" 2>&1
      echo "nsa_benchmark $shape $t exit $?"
      tail -1 "$logs/long.out" >>"$logs/benchmark-long.md"
    done
  done
  cat "$logs/benchmark-long.md"
  stage "long benchmark done"
  exit 0
fi

# fla's sliding-window branch needs flash-attn: without it both sides run without the window
# in the first table; ours also runs with the model's window 512 in a second.
window=${WINDOW:-$(python3 -c 'import flash_attn' >/dev/null 2>&1 && echo 512 || echo 0)}
"$build/bin/nsa_benchmark" "${REPS:-5}" "${MAX_T:-131072}" "$window" >"$logs/benchmark.md" 2>&1
echo "nsa_benchmark (window $window) exit $?"
if [ "$window" != 512 ]; then
  echo >>"$logs/benchmark.md"
  "$build/bin/nsa_benchmark" "${REPS:-5}" "${MAX_T:-131072}" 512 >>"$logs/benchmark.md" 2>&1
  echo "nsa_benchmark (window 512) exit $?"
fi
cat "$logs/benchmark.md"
stage "benchmark done"

if [ -n "${FLA_WHEEL:-}" ]; then
  python3 -m pip install --no-deps "$FLA_WHEEL" >"$logs/fla-install.log" 2>&1 || true
fi
if python3 -c 'import fla.ops.nsa.parallel' >/dev/null 2>&1; then
  python3 scripts/bench/nsa_fla.py "${REPS:-5}" "${MAX_T:-131072}" "$window" >"$logs/fla.md" 2>"$logs/fla.err"
  echo "nsa_fla.py exit $?"
  cat "$logs/fla.md"
  tail -5 "$logs/fla.err"
  stage "fla done"
else
  echo "fla not importable: fla benchmark skipped" | tee "$logs/fla.md"
fi
