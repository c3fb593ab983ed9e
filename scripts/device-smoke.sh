#!/usr/bin/env bash
# On a GPU machine with the Debian packages of .device-deps/ carried along: builds Ablate's
# binaries against that machine's CUDA LibTorch, then runs examples/tiny-grid-gpu.yaml through
# a real coordinator and one worker that offers the machine's CUDA devices as slots. Prints the
# results table; with OUT set, leaves the logs there.
set -euo pipefail
cd "$(dirname "$0")/.."
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
ABLATE_TOKEN=$worker_token \
  "$bin/ablate-worker" --coordinator "$address" --worker-id gpu-worker --work-dir "$state/worker" \
  2>"$state/worker.log" &
worker_pid=$!
status=0
time ABLATE_TOKEN=$user_token "$bin/ablate" --coordinator "$address" submit examples/tiny-grid-gpu.yaml --watch || status=$?
kill -TERM "$worker_pid" "$coordinator_pid"
wait "$worker_pid" "$coordinator_pid" || true
# Throughput per job, as the trainers reported it (median of the logged points after the first).
python3 - "$state/ablate.db" <<'PY'
import sqlite3, statistics, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("""SELECT j.id, m.value FROM metrics m JOIN jobs j ON j.rowid = m.job
                     WHERE m.name = 'train/tokens_per_sec' ORDER BY j.id, m.step""").fetchall()
by_job = {}
for job, value in rows:
    by_job.setdefault(job, []).append(value)
for job, values in by_job.items():
    print(f"{job}: median train/tokens_per_sec {statistics.median(values[1:] or values):,.0f}")
PY
if [ -n "${OUT:-}" ]; then
  tar -czf "$OUT/device-smoke-logs.tgz" "$state"
fi
exit "$status"
