#!/usr/bin/env bash
# Ablate's main job on one machine: a coordinator and two CPU workers on loopback run the tiny
# example grid and one job on real text (examples/real-text.yaml, on a dataset prepared here
# first), show progress, print the results table and serve the dashboard until interrupted
# (or exit at once when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
bin="$build_dir/bin"
sweep_file=${ABLATE_DEMO_SWEEP:-examples/tiny-grid.yaml}
real_text_sweep=examples/real-text.yaml
state=runs/demo
http_address=${ABLATE_DEMO_HTTP:-127.0.0.1:8080}

port_in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
if port_in_use "$http_address"; then
  echo "demo: $http_address is taken; serving the dashboard on a free port instead"
  http_address=127.0.0.1:0
fi

if [ ! -s data/cmake-docs/dataset.json ]; then
  echo "demo: preparing data/cmake-docs (CMake's documentation, tokenized) for $real_text_sweep"
  bash scripts/prepare_cmake_docs.sh data/cmake-docs
fi

rm -rf "$state"
mkdir -p "$state/logs"
# Fresh tokens for this run: the coordinator reads the table, each client its own token (the
# CLI and the workers from ABLATE_TOKEN, never from a command-line argument).
new_token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
user_token=$(new_token)
viewer_token=$(new_token)
worker_tokens=("" "$(new_token)" "$(new_token)")
(
  umask 077
  {
    echo "user $user_token"
    echo "viewer $viewer_token"
    for i in 1 2; do echo "worker ${worker_tokens[$i]} demo-worker-$i"; done
  } >"$state/tokens"
)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

"$bin/ablate-coordinator" --listen 127.0.0.1:0 --http "$http_address" --db "$state/ablate.db" \
  --ports-file "$state/ports" --token-file "$state/tokens" 2>"$state/logs/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$state/ports" ] && break; sleep 0.1; done
if [ ! -s "$state/ports" ]; then
  echo "demo: the coordinator did not start; see $state/logs/coordinator.log" >&2
  tail -5 "$state/logs/coordinator.log" >&2
  exit 1
fi
grpc_port=$(sed -n 's/^grpc=//p' "$state/ports")
http_port=$(sed -n 's/^http=//p' "$state/ports")
coordinator=127.0.0.1:$grpc_port
dashboard=http://127.0.0.1:$http_port/
# The viewer token rides in the address's fragment, which the browser never sends; the page
# stores it and removes it from the address.
dashboard_link="${dashboard}#token=$viewer_token"
export ABLATE_TOKEN=$user_token

for i in 1 2; do
  ABLATE_TOKEN=${worker_tokens[$i]} \
    "$bin/ablate-worker" --coordinator "$coordinator" --worker-id "demo-worker-$i" --slots 1 \
    --work-dir "$state/worker-$i" 2>"$state/logs/worker-$i.log" &
  pids+=($!)
done

echo "demo: coordinator on $coordinator, dashboard at $dashboard_link, logs in $state/logs"
# On a desktop, the dashboard opens in the browser while the sweeps run.
if [ "${CI:-}" != "true" ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] &&
  command -v xdg-open >/dev/null; then
  xdg-open "$dashboard_link" >/dev/null 2>&1 || true
fi
echo "demo: tokens in $state/tokens (the CLI here uses the user token through ABLATE_TOKEN)"
start=$(date +%s)
status=0
# The real-text job is queued first, so a worker takes it while the grid runs on the other.
submitted=$("$bin/ablate" --coordinator "$coordinator" submit "$real_text_sweep") || status=$?
echo "$submitted"
real_text_id=$(sed -n -E 's/^(submitted )?sweep ([^: ]+).*/\2/p' <<<"$submitted" | head -n 1)
"$bin/ablate" --coordinator "$coordinator" submit "$sweep_file" --watch || status=$?
if [ -n "$real_text_id" ]; then
  "$bin/ablate" --coordinator "$coordinator" watch "$real_text_id" || status=$?
fi
echo "demo: sweeps finished in $(( $(date +%s) - start )) s"
echo "demo: dashboard: $dashboard_link"

if [ "${CI:-}" = "true" ]; then
  exit "$status"
fi
echo "demo: serving the dashboard until Ctrl-C"
while true; do sleep 3600 & wait $!; done
