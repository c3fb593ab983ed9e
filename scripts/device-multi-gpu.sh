#!/usr/bin/env bash
# Data-parallel scaling on one machine of several GPUs, Ablate beside PyTorch DDP in one call.
# On a GPU machine with .device-deps/ carried along, and the peers' scripts (pt_qwen3_train.py,
# pt_qwen3_ddp.py) in $PEERS (default .peers/, carried along):
#   1. builds ablate-train against the machine's CUDA LibTorch;
#   2. trains $MODEL (default qwen3-0.6b) with AdamW, bf16, 4,096 x 4 tokens per GPU per step,
#      on 1, 2, ... up to every GPU (one process per rank, torchrun's variables, as the worker
#      starts them), and prints per-GPU tokens/s (median over the steps after warm-up) and its
#      share of the 1-GPU figure;
#   3. runs the DDP peer (eager and compiled) with torchrun on the same GPU counts.
# NCCL_NVLS_ENABLE=0 (NVLink multicast stays off). With OUT set, the logs are left there.
# STEPS (default 20) steps per run.
set -euo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0
peers=${PEERS:-.peers}
logs=${OUT:-runs/device-multi-gpu}
model=${MODEL:-qwen3-0.6b}
steps=${STEPS:-20}
mkdir -p "$logs"
source scripts/device-configure.sh Release
device_build "$logs" ablate-train
gpus=$(nvidia-smi -L | wc -l)
counts=(1)
for n in 2 4 8; do if [ "$n" -le "$gpus" ]; then counts+=("$n"); fi; done

median_tps() {  # LOG: median of the tok/s lines after the first two
  grep -o 'tok/s [0-9]*' "$1" | awk 'NR > 2 { print $2 }' | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A ablate_tps
for n in "${counts[@]}"; do
  name=ablate-$model-$n
  cat >"$logs/$name.json" <<JSON
{"job_id": "$name", "config": {"model": "$model", "attention": "dense", "optimizer": "adamw",
 "context_length": 4096, "batch_size": $((4 * n)), "micro_batch_size": 4, "steps": $steps,
 "warmup_steps": 1, "learning_rate": 1e-4, "log_every": 1, "eval_batches": 1,
 "dataset": "builtin:tiny-corpus", "precision": "bf16", "gpus": $n, "seed": 1, "data_seed": 1}}
JSON
  port=$((29500 + RANDOM % 2000))
  pids=()
  for ((r = 0; r < n; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((n - 1))) \
      "$build/bin/ablate-train" train --job "$logs/$name.json" \
      --checkpoint-dir "$logs/$name-checkpoints" >"$logs/$name-rank$r.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if [ "$failed" = 1 ]; then
    echo "$name FAILED:"; tail -5 "$logs/$name-rank"*.log
    continue
  fi
  # Rank 0 reports the job's tokens/s over every rank.
  ablate_tps[$n]=$(median_tps "$logs/$name-rank0.log")
  peak=$(sed -n 's/.*peak allocated \([0-9]*\) bytes.*/\1/p' "$logs/$name-rank0.log")
  echo "ablate $model gpus=$n tokens/s=${ablate_tps[$n]} per-gpu=$((${ablate_tps[$n]%.*} / n))" \
    "peak(rank 0)=$(awk -v b="${peak:-0}" 'BEGIN { printf "%.2f", b / 2^30 }')GiB"
done
if [ -n "${ablate_tps[1]:-}" ]; then
  for n in "${counts[@]}"; do
    [ -n "${ablate_tps[$n]:-}" ] || continue
    awk -v n="$n" -v t="${ablate_tps[$n]}" -v one="${ablate_tps[1]}" \
      'BEGIN { printf "ablate per-GPU share of 1 GPU at %d GPUs: %.1f%%\n", n, 100 * t / n / one }'
  done
fi

if [ -f "$peers/pt_qwen3_ddp.py" ]; then
  for opts in "" compile; do
    for n in "${counts[@]}"; do
      python3 -m torch.distributed.run --standalone --nproc_per_node="$n" "$peers/pt_qwen3_ddp.py" $opts \
        >"$logs/ddp-$n-${opts:-eager}.log" 2>&1 || echo "ddp $n ${opts:-eager} FAILED"
      grep -h '^world=' "$logs/ddp-$n-${opts:-eager}.log" || true
    done
  done
fi
