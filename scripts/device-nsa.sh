#!/usr/bin/env bash
# NSA's selected-branch CUDA kernels on a GPU (the NSA issue's kernel tests and benchmark). On a
# GPU machine with .device-deps/ carried along: builds nsa_cuda_test and nsa_benchmark against
# the machine's CUDA LibTorch, runs the kernel tests (the kernels against the fp32 reference
# within twice PyTorch's bf16 error, poisoned outputs, every head ratio 1-16, head dims 64, 128
# and 256, odd lengths, blocks selected by thousands of queries, tensors near 2^31 elements,
# NsaAttend end to end), then the benchmark against dense SDPA, then fla-core's parallel_nsa at
# the same shapes when Python can import fla (FLA_WHEEL, if set, is installed first with
# --no-deps). Everything lands in OUT (default runs/device-nsa): build.log, tests.log,
# benchmark.md, fla.md.
# Environment: REPS (default 5) timed runs per cell; MAX_T (default 131072) longest length.
set -uo pipefail
cd "$(dirname "$0")/.."
export ABLATE_BUILD_TESTS=ON
source scripts/device-configure.sh Release
logs=${OUT:-runs/device-nsa}
mkdir -p "$logs"
nvidia-smi >"$logs/nvidia-smi.txt" 2>&1 || true
start=$(date +%s)
device_build "$logs" nsa_cuda_test nsa_benchmark
echo "build: $(($(date +%s) - start)) s"

"$build/tests/nsa_cuda_test" >"$logs/tests.log" 2>&1
echo "nsa_cuda_test exit $?"
grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|error' "$logs/tests.log" | head -60

"$build/bin/nsa_benchmark" "${REPS:-5}" "${MAX_T:-131072}" \
  >"$logs/benchmark.md" 2>"$logs/benchmark.err"
echo "nsa_benchmark exit $?"
cat "$logs/benchmark.md"
tail -5 "$logs/benchmark.err"

if [ -n "${FLA_WHEEL:-}" ]; then
  python3 -m pip install --no-deps "$FLA_WHEEL" >"$logs/fla-install.log" 2>&1 || true
fi
if python3 -c 'import fla.ops.nsa.parallel' >/dev/null 2>&1; then
  python3 scripts/bench/nsa_fla.py "${REPS:-5}" "${MAX_T:-131072}" >"$logs/fla.md" 2>"$logs/fla.err"
  echo "nsa_fla.py exit $?"
  cat "$logs/fla.md"
  tail -5 "$logs/fla.err"
else
  echo "fla not importable: fla benchmark skipped" | tee "$logs/fla.md"
fi
