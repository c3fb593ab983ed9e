#!/usr/bin/env bash
# A kernel change against its base in one GPU call: the change's tests, then its speed and the
# base's, measured on the same card. On a GPU machine (packages as scripts/device-configure.sh says), in a
# working tree that holds the change, PATCH naming the change as a patch file in that tree
# (made beforehand with `git diff BASE -- trainer_lib/kernels > exp/change.patch`):
#   1. builds nsa_cuda_test, attention_test and nsa_benchmark with the change and, unless
#      NO_TESTS=1, runs nsa_cuda_test and attention_test's GPU cases (tests.log); a failing test
#      stops the script before any timing;
#   2. runs `nsa_benchmark 5 T WINDOW SHAPE` RUNS times (default 2; SHAPE fla, T 65536, WINDOW
#      512: fla's 64K shape at NSA's window) and, with KERNELS set (an ncu regex of kernel names,
#      as "DkvKernel|ForwardWgmmaKernel"), the first LAUNCHES launches (default 4) of those
#      kernels timed by Nsight Compute, clocks left alone;
#   3. reverts the change (patch -R), rebuilds nsa_benchmark and measures the base the same way.
# Prints both builds' benchmark rows for the shape (the NsaAttend fwd+bwd column and the SDPA
# ratio) and kernel times; everything lands in OUT (default runs/device-nsa-ab).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PATCH:-}" ] || [ ! -f "$PATCH" ]; then
  echo "PATCH must name the change's patch file in this tree (got '${PATCH:-}')" >&2
  exit 2
fi
export ABLATE_BUILD_TESTS=ON
source scripts/device-configure.sh Release
logs=${OUT:-runs/device-nsa-ab}
mkdir -p "$logs"
shape=${SHAPE:-fla} t=${T:-65536} window=${WINDOW:-512}
start=$(date +%s)
stage() { echo "== $1 at $(($(date +%s) - start)) s"; }

if [ -n "${NO_TESTS:-}" ]; then
  device_build "$logs" nsa_benchmark
else
  device_build "$logs" nsa_benchmark nsa_cuda_test attention_test
  stage "change built"
  "$build/tests/nsa_cuda_test" >"$logs/tests.log" 2>&1
  cuda_rc=$?
  "$build/tests/attention_test" --gtest_filter='NsaGateTest.*:NsaTest.OnCuda*:NsaFoldTest.*' \
    >>"$logs/tests.log" 2>&1
  attention_rc=$?
  echo "nsa_cuda_test exit $cuda_rc, attention_test (GPU cases) exit $attention_rc"
  grep -E '^\[ +(FAILED|PASSED) |Failure' "$logs/tests.log" | head -40
  if [ "$cuda_rc" != 0 ] || [ "$attention_rc" != 0 ]; then exit 1; fi
fi
stage "change tested"

ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
# Measures the build in $build into $logs/$1.txt: the benchmark's rows for the shape, then the
# named kernels' launch times in ms.
measure() {
  local out=$logs/$1.txt
  : >"$out"
  for _ in $(seq "${RUNS:-2}"); do
    "$build/bin/nsa_benchmark" 5 "$t" "$window" "$shape" 2>&1 | grep "^| $shape" >>"$out"
  done
  if [ -n "${KERNELS:-}" ] && [ -n "$ncu" ]; then
    "$ncu" --clock-control none -k "regex:(^|:)(${KERNELS})(<|$)" \
      --launch-count "${LAUNCHES:-4}" --metrics gpu__time_duration.sum --csv --print-units base \
      "$build/bin/nsa_benchmark" 1 "$t" "$window" "$shape" >"$logs/$1-ncu.csv" 2>/dev/null
    python3 - "$logs/$1-ncu.csv" >>"$out" <<'EOF'
import csv, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
name_at, value_at = rows[0].index("Kernel Name"), rows[0].index("Metric Value")
for r in rows[1:]:
    print(f"{r[name_at][:70]}: {float(r[value_at].replace(',', '')) / 1e6:.3f} ms")
EOF
  fi
  echo "--- $1"
  cat "$out"
}
measure change
stage "change measured"
patch -R -p1 <"$PATCH" >"$logs/patch.log" 2>&1 || {
  echo "patch -R failed:"
  cat "$logs/patch.log"
  exit 1
}
device_build "$logs" nsa_benchmark
stage "base built"
measure base
patch -p1 <"$PATCH" >>"$logs/patch.log" 2>&1  # the tree as it came
stage "done"
