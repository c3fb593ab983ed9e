#!/usr/bin/env bash
# Where NSA's time goes on a GPU, kernel by kernel. On a GPU machine (packages as scripts/device-configure.sh
# says): builds nsa_benchmark (and, unless NO_TESTS=1, runs nsa_cuda_test, attention_test's GPU
# cases and model_test's fused-kernel cases first), then runs the benchmark once per shape under
# Nsight Compute (ncu, clocks left alone):
#   1. every kernel's duration; kernels.md sums them by name (launches, median, total), largest
#      first, for each shape;
#   2. the first eight launches of the kernels KERNELS names (an ncu regex; default the selected
#      branch's: forward by query blocks or by key block, dq, dk/dv) with ncu's speed-of-light,
#      occupancy, warp-state and memory sections (sections-SHAPE.txt); KERNELS=- skips this;
#   3. the first two launches of each kernel STALLS names (space-separated function names, as
#      "DkvKernel DkvWgmmaKernel"): stall reasons per issued instruction, L2's sectors and
#      throughput (stalls-SHAPE.txt).
# TIMES=- skips step 1.
# SHAPES (default "fla:65536 qwen3-0.6b:131072") lists shape:T pairs (nsa_benchmark's names);
# WINDOW (default 0, as in the table compared with fla) is the sliding window. Everything lands in
# OUT (default runs/device-nsa-profile).
set -uo pipefail
cd "$(dirname "$0")/.."
export ABLATE_BUILD_TESTS=ON
source scripts/device-configure.sh Release
logs=${OUT:-runs/device-nsa-profile}
mkdir -p "$logs"
start=$(date +%s)
stage() { echo "== $1 at $(($(date +%s) - start)) s"; }
if [ -n "${NO_TESTS:-}" ]; then
  device_build "$logs" nsa_benchmark
else
  device_build "$logs" nsa_benchmark nsa_cuda_test attention_test model_test
fi
stage "build done"

if [ -z "${NO_TESTS:-}" ]; then
  "$build/tests/nsa_cuda_test" >"$logs/tests.log" 2>&1
  echo "nsa_cuda_test exit $?"
  "$build/tests/attention_test" --gtest_filter='NsaGateTest.*:NsaTest.OnCuda*' \
    >>"$logs/tests.log" 2>&1
  echo "attention_test (GPU cases) exit $?"
  "$build/tests/model_test" --gtest_filter='Fused*' >>"$logs/tests.log" 2>&1
  echo "model_test (fused kernels) exit $?"
  grep -E '^\[ +(FAILED|PASSED) |Failure' "$logs/tests.log" | head -40
  stage "tests done"
fi

ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -z "$ncu" ]; then
  echo "ncu not found: no profile"
  exit 0
fi
for shape in ${SHAPES:-fla:65536 qwen3-0.6b:131072}; do
  name=${shape%%:*} t=${shape##*:}
  if [ "${TIMES:-}" != - ]; then
    "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
      "$build/bin/nsa_benchmark" 1 "$t" "${WINDOW:-0}" "$name" >"$logs/times-$name.csv" 2>"$logs/ncu-$name.err"
    echo "ncu times ($name $t) exit $?"
    python3 - "$logs/times-$name.csv" "$name $t" >>"$logs/kernels.md" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head, body = rows[0], rows[1:]
name_at, value_at = head.index("Kernel Name"), head.index("Metric Value")
by = {}
for r in body:
    by.setdefault(r[name_at][:90], []).append(float(r[value_at].replace(",", "")) / 1e6)
print(f"\n### {sys.argv[2]}: {len(body)} launches, {sum(map(sum, by.values())):.1f} ms in all\n")
print("| kernel | launches | median ms | total ms |\n|---|---|---|---|")
for k, v in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:30]:
    print(f"| {k} | {len(v)} | {statistics.median(v):.3f} | {sum(v):.1f} |")
EOF
  fi
  kernels=${KERNELS:-ForwardKernel|ForwardByBlockKernel|DqKernel|DkvKernel}
  # Each kernel STALLS names alone: the benchmark launches its forwards many times before
  # its first backward, so a regex over several kernels would fill --launch-count with those.
  for kernel in ${STALLS:-}; do
    stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
    stalls+=',smsp__average_warp_latency_per_inst_issued.ratio,gpu__time_duration.sum'
    stalls+=',lts__t_sectors.sum,lts__throughput.avg.pct_of_peak_sustained_elapsed'
    "$ncu" --clock-control none -k "regex:(^|:)$kernel(<|$)" --launch-count 2 \
      --metrics "$stalls" "$build/bin/nsa_benchmark" 1 "$t" "${WINDOW:-0}" "$name" \
      >>"$logs/stalls-$name.txt" 2>&1
    echo "ncu stalls ($kernel, $name $t) exit $?"
  done
  if [ "${KERNELS:-}" = - ]; then continue; fi
  "$ncu" --clock-control none -k "regex:$kernels" \
    --launch-count 8 --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
    --section SourceCounters \
    "$build/bin/nsa_benchmark" 1 "$t" "${WINDOW:-0}" "$name" >"$logs/sections-$name.txt" 2>&1
  echo "ncu sections ($name $t) exit $?"
  stage "$name profiled"
done
cat "$logs/kernels.md" 2>/dev/null
summary='^  [A-Za-z].*Kernel|Duration|Compute \(SM\) Throughput|Memory Throughput'
summary+='|L2 Cache Throughput|DRAM Throughput|Achieved Occupancy|Registers Per'
summary+='|Theoretical Occupancy'
summary+='|Warp Cycles Per Issued|Executed Ipc A'
grep -E "$summary" "$logs"/sections-*.txt 2>/dev/null | head -120
