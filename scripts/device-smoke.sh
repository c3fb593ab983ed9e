#!/usr/bin/env bash
# On a GPU machine (scripts/device-configure.sh says where the build's packages come from):
# builds Ablate's binaries against that machine's CUDA LibTorch, then runs a sweep (default
# examples/tiny-grid-gpu.yaml) through a real coordinator and one worker that offers the
# machine's CUDA devices as slots, exactly as a user would: `ablate submit --watch`, then
# `ablate results` and `ablate status`, and the dashboard's JSON API for the sweep. Prints a
# line per job (final eval loss, median tokens/s, peak memory, GPU utilization, wall time);
# with OUT set, leaves the logs, the database and the API's answers there. With KILL_RANK1_AFTER
# set to N seconds, the first rank 1 of a job of several GPUs is killed (SIGKILL) once it has
# run N seconds: its job must come back from its checkpoint and finish.
# Usage: scripts/device-smoke.sh [SWEEP_FILE]   (a sweep whose dataset must be carried along)
set -euo pipefail
cd "$(dirname "$0")/.."
sweep_file=${1:-examples/tiny-grid-gpu.yaml}
export NCCL_NVLS_ENABLE=0
source scripts/device-configure.sh Release
time cmake --build "$build" -j"$(nproc)" --target ablate ablate-coordinator ablate-worker ablate-train

state=runs/device-smoke
rm -rf "$state" && mkdir -p "$state"
bin=$build/bin
new_token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
user_token=$(new_token)
worker_token=$(new_token)
(umask 077; printf 'user %s\nworker %s gpu-worker\n' "$user_token" "$worker_token" >"$state/tokens")
"$bin/ablate-coordinator" --listen 127.0.0.1:0 --http 127.0.0.1:0 --db "$state/ablate.db" \
  --ports-file "$state/ports" --token-file "$state/tokens" 2>"$state/coordinator.log" &
coordinator_pid=$!
for _ in $(seq 100); do [ -s "$state/ports" ] && break; sleep 0.1; done
address=127.0.0.1:$(sed -n 's/^grpc=//p' "$state/ports")
http=127.0.0.1:$(sed -n 's/^http=//p' "$state/ports")
ABLATE_TOKEN=$worker_token \
  "$bin/ablate-worker" --coordinator "$address" --worker-id gpu-worker --work-dir "$state/worker" \
  2>"$state/worker.log" &
worker_pid=$!
if [ -n "${KILL_RANK1_AFTER:-}" ]; then
  (
    declare -A seen
    while sleep 2; do
      for pid in $(pgrep -x ablate-train || true); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx RANK=1 || continue
        seen[$pid]=$((${seen[$pid]:-0} + 2))
        if [ "${seen[$pid]}" -ge "$KILL_RANK1_AFTER" ]; then
          echo "killing rank 1 (pid $pid) after ${seen[$pid]} s: SIGKILL"
          kill -KILL "$pid"
          exit 0
        fi
      done
    done
  ) &
  killer_pid=$!
fi
status=0
ablate() { ABLATE_TOKEN=$user_token "$bin/ablate" --coordinator "$address" "$@"; }
time ablate submit "$sweep_file" --watch | tee "$state/submit.txt" || status=$?
sweep_id=$(sed -n 's/^submitted sweep \([^ :]*\):.*/\1/p' "$state/submit.txt" | head -1)
ablate results "$sweep_id" || status=$?
ablate status "$sweep_id" || status=$?
# The dashboard's JSON API, read as the page reads it (python's urllib: the machine's curl may
# not load beside the unpacked libraries): the sweep, its jobs, then each job with its curves.
api_get() {  # PATH: writes $state/api-PATH.json (slashes as dashes)
  python3 - "http://$http/api/v1/$1" "$user_token" <<'PY' >"$state/api-${1//\//-}.json" || status=$?
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
sys.stdout.write(urllib.request.urlopen(request, timeout=30).read().decode())
PY
}
api_get "sweeps/$sweep_id"
api_get "sweeps/$sweep_id/jobs"
for job in $(python3 -c 'import json, sys
print(" ".join(j["spec"].get("jobId", j["spec"].get("job_id")) for j in json.load(open(sys.argv[1])).get("jobs", [])))' \
  "$state/api-sweeps-$sweep_id-jobs.json"); do
  api_get "jobs/$job"
done
echo "dashboard API: $(wc -c <"$state/api-sweeps-$sweep_id.json") bytes for the sweep," \
  "$(wc -c <"$state/api-sweeps-$sweep_id-jobs.json") for its jobs"
kill -TERM "$worker_pid" "$coordinator_pid" ${killer_pid:-}
wait "$worker_pid" "$coordinator_pid" || true
# Per job, as the trainers and the worker reported it, read through the dashboard's API: the
# last eval loss, the median throughput of the logged points after the first, the allocator's
# peak, the mean GPU utilization, the attempts and their wall time.
python3 - "$state" "$sweep_id" <<'PY'
import json, statistics, sys
state, sweep = sys.argv[1], sys.argv[2]
jobs = json.load(open(f"{state}/api-sweeps-{sweep}-jobs.json")).get("jobs", [])
# The API writes proto JSON's names (jobId); older answers had the field's own (job_id).
job_id_of = lambda j: j["spec"].get("jobId", j["spec"].get("job_id"))
for job in sorted(jobs, key=job_id_of):
    job_id = job_id_of(job)
    detail = json.load(open(f"{state}/api-jobs-{job_id}.json"))
    series = {m["name"]: [float(v) for v in m.get("values", [])] for m in detail.get("metrics", [])}
    loss = series.get("eval/loss", [])
    tps = series.get("train/tokens_per_sec", [])
    peak = series.get("memory/peak_allocated_bytes", [])
    util = series.get("gpu/0/utilization_percent", [])
    attempts = detail.get("attempts", [])
    print(f"{job_id} ({job['spec'].get('config', {}).get('gpus', 0)} GPUs):"
          f" {job.get('state', '?')} eval/loss {loss[-1] if loss else float('nan'):.4f}"
          f"  tokens/s {statistics.median(tps[1:] or tps) if tps else 0:,.0f}"
          f"  peak {max(peak) / 2**30 if peak else 0:.2f} GiB"
          f"  gpu util {statistics.mean(util) if util else 0:.0f}%"
          f"  attempts {len(attempts)}")
PY
if [ -n "${OUT:-}" ]; then
  tar -czf "$OUT/device-smoke-logs.tgz" --exclude="$state/worker/*/attempt-*/checkpoints" "$state"
fi
exit "$status"
