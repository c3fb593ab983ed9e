#!/usr/bin/env bash
# On a GPU machine with .device-deps/ carried along: builds ablate-train against that machine's
# CUDA LibTorch, trains qwen3-0.6b and qwen3-4b for a few bf16 steps at 4K and 32K tokens per
# sequence, and prints, for each run, the peak memory PyTorch's caching allocator held beside
# common/model_math's plan (both reported by the trainer at the end of the run), the plan's
# error, and the trainer's last train/mfu. With OUT set, the trainers' logs are left there.
# Arguments, each "MODEL CONTEXT BATCH CHECKPOINTING" (e.g. "qwen3-1.7b 8192 2 false"), replace
# the default runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/device-configure.sh Release
logs=${OUT:-runs/device-memory-plan}
mkdir -p "$logs"
device_build "$logs" ablate-train

# model, context, batch (one micro-batch), activation checkpointing. The first four are the
# issue's; the 1.7B runs were not looked at while the plan's terms were chosen.
runs=(
  "qwen3-0.6b 4096 4 false"
  "qwen3-0.6b 32768 1 true"
  "qwen3-4b 4096 4 true"
  "qwen3-4b 32768 1 true"
  "qwen3-1.7b 8192 2 false"
  "qwen3-1.7b 16384 2 true"
)
if [ $# -gt 0 ]; then runs=("$@"); fi
printf '%-11s %7s %5s %5s %9s %9s %7s %6s\n' model context batch ckpt "peak GiB" "plan GiB" error mfu
for run in "${runs[@]}"; do
  read -r model context batch ckpt <<<"$run"
  name="$model-$context-$batch"
  cat >"$logs/$name.json" <<JSON
{"job_id": "$name", "config": {"model": "$model", "attention": "dense", "optimizer": "adamw",
 "context_length": $context, "batch_size": $batch, "micro_batch_size": $batch,
 "activation_checkpointing": $ckpt, "steps": 6, "warmup_steps": 1, "learning_rate": 1e-4,
 "log_every": 1, "eval_batches": 1, "dataset": "builtin:tiny-corpus", "precision": "bf16",
 "gpus": 1, "seed": 1, "data_seed": 1}}
JSON
  "$build/bin/ablate-train" train --job "$logs/$name.json" >"$logs/$name.log" 2>&1 || true
  line=$(grep -o 'peak allocated [0-9]* bytes, planned [0-9]* bytes' "$logs/$name.log" || true)
  if [ -z "$line" ]; then
    printf '%-11s %7s %5s %5s failed: %s\n' "$model" "$context" "$batch" "$ckpt" \
      "$(tail -1 "$logs/$name.log")"
    continue
  fi
  mfu=$(grep -o 'mfu [0-9.]*%' "$logs/$name.log" | tail -1 | cut -d' ' -f2)
  read -r peak plan < <(echo "$line" | awk '{print $3, $6}')
  awk -v m="$model" -v c="$context" -v b="$batch" -v k="$ckpt" -v p="$peak" -v q="$plan" \
    -v u="${mfu:-?}" 'BEGIN { printf "%-11s %7s %5s %5s %9.2f %9.2f %+6.1f%% %6s\n",
      m, c, b, k, p/2^30, q/2^30, 100*(q-p)/p, u }'
done
