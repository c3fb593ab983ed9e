#!/usr/bin/env bash
# Trainer speed on one GPU, Ablate beside its peers in one call (the trainer-speed issue).
# On a GPU machine with .device-deps/ carried along, and the peers' scripts
# (pt_qwen3_train.py, hf_qwen3_train.py) in $PEERS (default .peers/, carried along):
#   1. builds ablate-train against the machine's CUDA LibTorch;
#   2. profiles 2 steps of qwen3-0.6b at 4,096 x 4 (ablate-train --profile-dir) and prints the
#      device time per kind of kernel and the 25 largest kernels;
#   3. trains each of Ablate's runs below for a few bf16 steps and the peers' runs, and prints
#      one table: tokens/s (median over the steps after warm-up), model TFLOP/s, MFU against
#      the card's measured bf16 matrix ceiling, peak allocated memory, and each Ablate run's
#      ratio to the compiled peer at the same shape.
# Model FLOPs per token are 6N + 6 L T H D_head for both (the peer script's count: causal
# attention forward and backward). With OUT set, logs, the trace and kernels.tsv are left there.
# ABLATE_ONLY=1 skips the peers; PROFILE=0 skips the profile; COMPARE_EAGER=1 also runs each of
# Ablate's runs with its fused kernels off (ABLATE_FUSED_KERNELS=0, row "ablate-eager").
# Arguments, each "MODEL SEQ BATCH CHECKPOINTING STEPS", replace Ablate's default runs.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${PEERS:-.peers}
ceiling=${CEILING_TFLOPS:-790}  # an 8192^3 bf16 matmul on an H200 (docs/benchmarks.md)
logs=${OUT:-runs/device-train-bench}
mkdir -p "$logs"
source scripts/device-configure.sh Release
device_build "$logs" ablate-train

# MODEL SEQ BATCH CHECKPOINTING STEPS
ablate_runs=(
  "qwen3-0.6b 4096 4 false 20"
  "qwen3-0.6b 32768 1 true 12"
  "qwen3-4b 8192 1 true 8"
  "qwen3-4b 32768 1 true 6"
)
if [ $# -gt 0 ]; then ablate_runs=("$@"); fi
variants=(ablate)
if [ "${COMPARE_EAGER:-0}" = 1 ]; then variants+=(ablate-eager); fi
# The peer's specs (SEQ:BATCH:CKPT:OPTS), Qwen3-0.6B only.
peer_runs=(4096:4:0:compile 4096:4:0: 32768:1:1:compile)

# Layers, query heads, head dim: attention's share of the FLOPs.
attention_shape() {
  case $1 in
    qwen3-0.6b) echo "28 16 128" ;;
    qwen3-4b) echo "36 32 128" ;;
    *) echo "unknown model $1" >&2; return 1 ;;
  esac
}

write_job() {  # NAME MODEL SEQ BATCH CKPT STEPS
  cat >"$logs/$1.json" <<JSON
{"job_id": "$1", "config": {"model": "$2", "attention": "dense", "optimizer": "adamw",
 "context_length": $3, "batch_size": $4, "micro_batch_size": $4,
 "activation_checkpointing": $5, "steps": $6, "warmup_steps": 1, "learning_rate": 1e-4,
 "log_every": 1, "eval_batches": 1, "dataset": "builtin:tiny-corpus", "precision": "bf16",
 "gpus": 1, "seed": 1, "data_seed": 1}}
JSON
}

if [ "${PROFILE:-1}" = 1 ]; then
  write_job profile qwen3-0.6b 4096 4 false 6
  "$build/bin/ablate-train" train --job "$logs/profile.json" --profile-dir "$logs/profile" \
    >"$logs/profile.log" 2>&1 || { tail -3 "$logs/profile.log"; exit 1; }
  grep -o 'profile of steps.*per step: [^;]*' "$logs/profile.log"
  echo "largest kernels (ms per step, share):"
  tail -n +2 "$logs/profile/kernels.tsv" | head -25 |
    awk -F'\t' '{ printf "  %8.2f %5.1f%%  %-11s %.110s\n", $5, 100*$6, $1, $2 }'
fi

rows=()
for run in "${ablate_runs[@]}"; do
  for variant in "${variants[@]}"; do
    read -r model seq batch ckpt steps <<<"$run"
    name="$variant-$model-$seq-$batch"
    fused=1
    if [ "$variant" = ablate-eager ]; then fused=0; fi
    write_job "$name" "$model" "$seq" "$batch" "$ckpt" "$steps"
    if ! ABLATE_FUSED_KERNELS=$fused "$build/bin/ablate-train" train --job "$logs/$name.json" \
        >"$logs/$name.log" 2>&1; then
      rows+=("$variant $model $seq $batch $ckpt FAILED")
      continue
    fi
    params=$(sed -n 's/^training \([0-9]*\) parameters.*/\1/p' "$logs/$name.log")
    # Median tokens/s over the steps after the first two (allocator and cuBLAS warm-up).
    tps=$(grep -o 'tok/s [0-9]*' "$logs/$name.log" | awk 'NR > 2 { print $2 }' | sort -n |
      awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    peak=$(sed -n 's/.*peak allocated \([0-9]*\) bytes.*/\1/p' "$logs/$name.log")
    read -r layers heads head_dim < <(attention_shape "$model")
    rows+=("$variant $model $seq $batch $ckpt $tps $params $layers $heads $head_dim $peak")
  done
done

if [ "${ABLATE_ONLY:-0}" != 1 ]; then
  python3 "$peers/pt_qwen3_train.py" "${peer_runs[@]}" | tee "$logs/peer.csv"
  # seq,batch,ckpt,opts,params,ms/step,tok/s,TFLOP/s,peak GiB,loss
  while IFS=, read -r seq batch ckpt opts params _ tps _ peak _; do
    case $seq in seq|'') continue ;; esac
    case $params in FAILED*) rows+=("peer-$opts qwen3-0.6b $seq $batch $ckpt FAILED"); continue ;; esac
    rows+=("peer-$opts qwen3-0.6b $seq $batch $ckpt $tps 596049920 28 16 128 \
$(awk -v g="$peak" 'BEGIN { printf "%.0f", g * 2^30 }')")
  done <"$logs/peer.csv"
fi

printf '%s\n' "${rows[@]}" >"$logs/rows.txt"
python3 - "$logs/rows.txt" "$ceiling" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
ceiling = float(sys.argv[2])
compiled = {(r[1], r[2], r[3]): float(r[5]) for r in rows
            if r[0] == "peer-compile" and r[5] != "FAILED"}
print(f"{'run':<14} {'model':<11} {'seq x batch':>12} {'ckpt':>5} {'tokens/s':>9} "
      f"{'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>9} {'vs compiled peer':>17}")
for r in rows:
    who, model, seq, batch, ckpt = r[:5]
    shape = f"{int(seq):,} x {batch}"
    if r[5] == "FAILED":
        print(f"{who:<14} {model:<11} {shape:>12} {ckpt:>5} FAILED")
        continue
    tps, n, layers, heads, hd, peak = float(r[5]), *map(float, r[6:11])
    tflops = tps * (6 * n + 6 * layers * float(seq) * heads * hd) / 1e12
    ref = compiled.get((model, seq, batch))
    ratio = f"{tps / ref:.2f}x" if ref and who.startswith("ablate") else ""
    print(f"{who:<14} {model:<11} {shape:>12} {ckpt:>5} {tps:>9,.0f} {tflops:>8.0f} "
          f"{100 * tflops / ceiling:>5.1f}% {peak / 2**30:>9.2f} {ratio:>17}")
PY
