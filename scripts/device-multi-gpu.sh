#!/usr/bin/env bash
# Data-parallel scaling on one machine of several GPUs, Ablate beside PyTorch DDP in one call.
# On a GPU machine (packages as scripts/device-configure.sh says), and the peers' scripts (pt_qwen3_train.py,
# pt_qwen3_ddp.py) in $PEERS (default .peers/, carried along):
#   1. builds ablate-train against the machine's CUDA LibTorch;
#   2. trains $MODEL (default qwen3-0.6b) with $OPTIMIZER (default adamw), bf16, $ROWS (4) x
#      $CONTEXT (4,096) tokens per GPU per step, on 1, 2, ... up to every GPU ($COUNTS
#      overrides: "2 4"), once per optimizer_sharding in $SHARDINGS (default "none zero1") on
#      several GPUs (one process per rank, torchrun's variables, as the worker starts them),
#      and prints per-GPU tokens/s (median over the steps after warm-up), its share of the
#      1-GPU figure, and rank 0's peak memory beside the memory plan's;
#   3. with PROFILE=1, profiles steps 6..7 of the first run at each GPU count on rank 0 and
#      prints how much of the gradient exchange backward hides, and where the device sat idle
#      (scripts/bench/overlap.py);
#   4. unless DDP=0, runs the DDP peer (eager and compiled) with torchrun on the same GPU counts.
# NCCL_NVLS_ENABLE=0 (NVLink multicast stays off). With OUT set, the logs are left there.
# BUCKET_MB sets grad_bucket_mb (100); STEPS (default 20) steps per run; CHECKPOINTING=1 turns activation checkpointing on;
# KILL_AT_END=1 ends each run after its last step's line, before the final checkpoint, and
# prints that line (its peak and planned memory): for memory runs of large models.
set -euo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0
peers=${PEERS:-.peers}
logs=${OUT:-runs/device-multi-gpu}
model=${MODEL:-qwen3-0.6b}
optimizer=${OPTIMIZER:-adamw}
rows=${ROWS:-4}
context=${CONTEXT:-4096}
steps=${STEPS:-20}
checkpointing=$([ "${CHECKPOINTING:-0}" = 1 ] && echo true || echo false)
mkdir -p "$logs"
source scripts/device-configure.sh Release
device_build "$logs" ablate-train
gpus=$(nvidia-smi -L | wc -l)
if [ -n "${COUNTS:-}" ]; then
  read -ra counts <<<"$COUNTS"
else
  counts=(1)
  for n in 2 4 8; do if [ "$n" -le "$gpus" ]; then counts+=("$n"); fi; done
fi

median_tps() {  # LOG: median of the tok/s lines after the first two
  grep -o 'tok/s [0-9]*' "$1" | awk 'NR > 2 { print $2 }' | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
gib() { awk -v b="${1:-0}" 'BEGIN { printf "%.2f", b / 2^30 }'; }

declare -A ablate_tps
declare -A profiled
runs=()
for n in "${counts[@]}"; do
  if [ "$n" = 1 ]; then runs+=("1 none"); else for s in ${SHARDINGS:-none zero1}; do runs+=("$n $s"); done; fi
done
for run in "${runs[@]}"; do
  read -r n sharding <<<"$run"
  name=ablate-$model-$optimizer-$n-$sharding
  cat >"$logs/$name.json" <<JSON
{"job_id": "$name", "config": {"model": "$model", "attention": "dense", "optimizer": "$optimizer",
 "context_length": $context, "batch_size": $((rows * n)), "micro_batch_size": $rows, "steps": $steps,
 "warmup_steps": 1, "learning_rate": 1e-4, "log_every": 1, "eval_batches": 1,
 "activation_checkpointing": $checkpointing, "optimizer_sharding": "$sharding",
 "grad_bucket_mb": ${BUCKET_MB:-100},
 "dataset": "builtin:tiny-corpus", "precision": "bf16", "gpus": $n, "seed": 1, "data_seed": 1}}
JSON
  port=$((29500 + RANDOM % 2000))
  profile=()
  if [ "${PROFILE:-0}" = 1 ] && [ -z "${profiled[$n]:-}" ]; then
    profile=(--profile-dir "$logs/$name-profile" --profile-first-step 5 --profile-steps 2)
    profiled[$n]=1
  fi
  pids=()
  for ((r = 0; r < n; r++)); do
    extra=()
    if [ "$r" = 0 ]; then extra=("${profile[@]}"); fi
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((n - 1))) \
      "$build/bin/ablate-train" train --job "$logs/$name.json" "${extra[@]}" \
      --checkpoint-dir "$logs/$name-checkpoints" >"$logs/$name-rank$r.log" 2>&1 &
    pids+=($!)
  done
  if [ "${KILL_AT_END:-0}" = 1 ]; then
    # Memory runs: SIGKILL the ranks once rank 0 logged the last step, sparing the final
    # checkpoint (an 8B model's weights and SOAP state are some 100 GB to write).
    while kill -0 "${pids[0]}" 2>/dev/null && ! grep -q "^step $steps/" "$logs/$name-rank0.log"; do
      sleep 1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    grep "^step $steps/" "$logs/$name-rank0.log" || { echo "$name FAILED:"; tail -n 5 "$logs/$name-rank"*.log; }
    rm -rf "$logs/$name-checkpoints"
    continue
  fi
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  rm -rf "$logs/$name-checkpoints"
  if [ "$failed" = 1 ]; then
    echo "$name FAILED:"; tail -n 5 "$logs/$name-rank"*.log
    continue
  fi
  # Rank 0 reports the job's tokens/s over every rank; profiled steps are slower, but the
  # median over 18 steps is not moved by two.
  tps=$(median_tps "$logs/$name-rank0.log")
  [ "$n" = 1 ] || [ -n "${ablate_tps[$n]:-}" ] || ablate_tps[$n]=$tps
  [ "$n" != 1 ] || ablate_tps[1]=$tps
  peak=$(sed -n 's/.*peak allocated \([0-9]*\) bytes.*/\1/p' "$logs/$name-rank0.log")
  planned=$(sed -n 's/.*planned \([0-9]*\) bytes.*/\1/p' "$logs/$name-rank0.log")
  share=""
  if [ -n "${ablate_tps[1]:-}" ]; then
    share=$(awk -v n="$n" -v t="$tps" -v one="${ablate_tps[1]}" \
      'BEGIN { printf " share-of-1-GPU=%.1f%%", 100 * t / n / one }')
  fi
  echo "ablate $model $optimizer gpus=$n sharding=$sharding tokens/s=$tps" \
    "per-gpu=$((${tps%.*} / n))$share peak(rank 0)=$(gib "$peak")GiB planned=$(gib "$planned")GiB"
  grep -h "profile of steps" "$logs/$name-rank0.log" || true
  if [ -f "$logs/$name-profile/trace.json" ]; then
    python3 scripts/bench/overlap.py "$logs/$name-profile/trace.json" 2
  fi
done
if [ "${DDP:-1}" = 1 ] && [ -f "$peers/pt_qwen3_ddp.py" ]; then
  for opts in "" compile; do
    for n in "${counts[@]}"; do
      python3 -m torch.distributed.run --standalone --nproc_per_node="$n" "$peers/pt_qwen3_ddp.py" $opts \
        >"$logs/ddp-$n-${opts:-eager}.log" 2>&1 || echo "ddp $n ${opts:-eager} FAILED"
      grep -h '^world=' "$logs/ddp-$n-${opts:-eager}.log" || true
    done
  done
fi
