#!/usr/bin/env bash
# On a GPU machine with the Debian packages of .device-deps/ carried along: builds Ablate's
# binaries against that machine's CUDA LibTorch, then runs a sweep (default
# examples/tiny-grid-gpu.yaml) through a real coordinator and one worker that offers the
# machine's CUDA devices as slots, exactly as a user would: `ablate submit --watch`, then
# `ablate results` and `ablate status`, and the dashboard's JSON API for the sweep. Prints a
# line per job (final eval loss, median tokens/s, peak memory, GPU utilization, wall time);
# with OUT set, leaves the logs, the database and the API's answers there.
# Usage: scripts/device-smoke.sh [SWEEP_FILE]   (a sweep whose dataset must be carried along)
set -euo pipefail
cd "$(dirname "$0")/.."
sweep_file=${1:-examples/tiny-grid-gpu.yaml}
export NCCL_NVLS_ENABLE=0
source scripts/device-configure.sh RelWithDebInfo
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
status=0
ablate() { ABLATE_TOKEN=$user_token "$bin/ablate" --coordinator "$address" "$@"; }
time ablate submit "$sweep_file" --watch | tee "$state/submit.txt" || status=$?
sweep_id=$(sed -n 's/^submitted sweep \([^ :]*\):.*/\1/p' "$state/submit.txt" | head -1)
ablate results "$sweep_id" || status=$?
ablate status "$sweep_id" || status=$?
# The dashboard's JSON API, read as the page reads it (python's urllib: the machine's curl may
# not load beside the unpacked libraries).
for path in "sweeps/$sweep_id" "sweeps/$sweep_id/jobs"; do
  python3 - "http://$http/api/v1/$path" "$user_token" <<'PY' >"$state/api-${path//\//-}.json" || status=$?
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
sys.stdout.write(urllib.request.urlopen(request, timeout=30).read().decode())
PY
done
echo "dashboard API: $(wc -c <"$state/api-sweeps-$sweep_id.json") bytes for the sweep," \
  "$(wc -c <"$state/api-sweeps-$sweep_id-jobs.json") for its jobs"
kill -TERM "$worker_pid" "$coordinator_pid"
wait "$worker_pid" "$coordinator_pid" || true
# Per job, as the trainers and the worker reported it: the last eval loss, the median
# throughput of the logged points after the first, the allocator's peak, the mean GPU
# utilization, and the attempts' wall time.
python3 - "$state/ablate.db" <<'PY'
import sqlite3, statistics, sys
db = sqlite3.connect(sys.argv[1])
def series(job_rowid, name):
    return [v for (v,) in db.execute(
        "SELECT value FROM metrics WHERE job = ? AND name = ? ORDER BY step, wall_time",
        (job_rowid, name))]
for rowid, job in db.execute("SELECT rowid, id FROM jobs ORDER BY id"):
    loss = series(rowid, "eval/loss")
    tps = series(rowid, "train/tokens_per_sec")
    peak = series(rowid, "memory/peak_allocated_bytes")
    util = series(rowid, "gpu/0/utilization_percent")
    wall = db.execute("SELECT SUM(ended_at - started_at) / 1e6 FROM attempts WHERE job_id = ?",
                      (job,)).fetchone()[0]
    print(f"{job}: eval/loss {loss[-1] if loss else float('nan'):.4f}"
          f"  tokens/s {statistics.median(tps[1:] or tps) if tps else 0:,.0f}"
          f"  peak {max(peak) / 2**30 if peak else 0:.2f} GiB"
          f"  gpu util {statistics.mean(util) if util else 0:.0f}%"
          f"  wall {wall or 0:.0f} s")
PY
if [ -n "${OUT:-}" ]; then
  tar -czf "$OUT/device-smoke-logs.tgz" --exclude="$state/worker/*/attempt-*/checkpoints" "$state"
fi
exit "$status"
