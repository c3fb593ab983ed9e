#!/usr/bin/env bash
# On a GPU machine (packages as scripts/device-configure.sh says): builds ablate-train against that machine's
# CUDA LibTorch, trains qwen3-0.6b and qwen3-4b for a few bf16 steps at 4K and 32K tokens per
# sequence, and prints, for each run, the peak memory PyTorch's caching allocator held beside
# common/model_math's plan (both reported by the trainer at the end of the run), the plan's
# error, and the trainer's last train/mfu. With OUT set, the trainers' logs are left there.
# Arguments, each "MODEL CONTEXT BATCH CHECKPOINTING [ATTENTION [OFFLOADED_LAYERS [STEPS]]]"
# (e.g. "qwen3-1.7b 8192 2 false", or NSA at 1M tokens with 18 layers' checkpoints in host
# memory for 2 steps: "qwen3-0.6b 1048576 1 true nsa 18 2"), replace the default runs; the
# defaults are dense, 0 and 6. The last column is the last logged step's tokens per second.
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

# builtin:tiny-corpus's held-out split is 40,246 bytes; longer sequences read a byte corpus of
# the repository's own sources (at least 6 MiB: the first 4 train, the last 2 are held out).
long_corpus="$logs/long-corpus"
if [ ! -f "$long_corpus/valid.txt" ]; then
  mkdir -p "$long_corpus"
  find common coordinator trainer_lib worker cli docs -type f \( -name '*.cc' -o -name '*.h' \
    -o -name '*.md' -o -name '*.cu' \) -print0 | sort -z | xargs -0 cat >"$long_corpus/all.txt"
  while [ "$(stat -c %s "$long_corpus/all.txt")" -lt $((6 << 20)) ]; do
    cat "$long_corpus/all.txt" "$long_corpus/all.txt" >"$long_corpus/twice.txt"
    mv "$long_corpus/twice.txt" "$long_corpus/all.txt"
  done
  head -c $((4 << 20)) "$long_corpus/all.txt" >"$long_corpus/train.txt"
  tail -c $((2 << 20)) "$long_corpus/all.txt" >"$long_corpus/valid.txt"  # past the first 6 MiB
  rm "$long_corpus/all.txt"
fi
printf '%-11s %7s %5s %5s %5s %4s %9s %9s %7s %6s %8s\n' model context batch ckpt attn host \
  "peak GiB" "plan GiB" error mfu "tok/s"
for run in "${runs[@]}"; do
  read -r model context batch ckpt attention offload steps <<<"$run"
  attention=${attention:-dense} offload=${offload:-0} steps=${steps:-6}
  name="$model-$context-$batch-$attention-$offload"
  dataset=builtin:tiny-corpus
  if [ "$context" -ge 40246 ]; then dataset=$(realpath "$long_corpus"); fi
  cat >"$logs/$name.json" <<JSON
{"job_id": "$name", "config": {"model": "$model", "attention": "$attention", "optimizer": "adamw",
 "context_length": $context, "batch_size": $batch, "micro_batch_size": $batch,
 "activation_checkpointing": $ckpt, "checkpoint_offload_layers": $offload,
 "steps": $steps, "warmup_steps": 1, "learning_rate": 1e-4,
 "log_every": 1, "eval_batches": 1, "dataset": "$dataset", "precision": "bf16",
 "gpus": 1, "seed": 1, "data_seed": 1}}
JSON
  "$build/bin/ablate-train" train --job "$logs/$name.json" >"$logs/$name.log" 2>&1 || true
  line=$(grep -o 'peak allocated [0-9]* bytes, planned [0-9]* bytes' "$logs/$name.log" || true)
  if [ -z "$line" ]; then
    printf '%-11s %7s %5s %5s %5s %4s failed: %s\n' "$model" "$context" "$batch" "$ckpt" \
      "$attention" "$offload" "$(tail -3 "$logs/$name.log" | tr '\n' ' ')"
    continue
  fi
  mfu=$(grep -o 'mfu [0-9.]*%' "$logs/$name.log" | tail -1 | cut -d' ' -f2)
  tps=$(grep -o 'tok/s [0-9]*' "$logs/$name.log" | tail -1 | cut -d' ' -f2)
  read -r peak plan < <(echo "$line" | awk '{print $3, $6}')
  awk -v m="$model" -v c="$context" -v b="$batch" -v k="$ckpt" -v a="$attention" \
    -v o="$offload" -v p="$peak" -v q="$plan" -v u="${mfu:-?}" -v s="${tps:-?}" \
    'BEGIN { printf "%-11s %7s %5s %5s %5s %4s %9.2f %9.2f %+6.1f%% %6s %8s\n",
      m, c, b, k, a, o, p/2^30, q/2^30, 100*(q-p)/p, u, s }'
done
