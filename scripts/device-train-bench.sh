#!/usr/bin/env bash
# Trainer speed on one GPU, Ablate beside its peers in one call (the trainer-speed issue).
# On a GPU machine (packages as scripts/device-configure.sh says), and the peers' scripts
# (pt_qwen3_train.py, hf_qwen3_train.py) in $PEERS (default .peers/, carried along):
#   1. builds ablate-train against the machine's CUDA LibTorch;
#   2. profiles 2 steps (4 and 5) of qwen3-0.6b at 4,096 x 4, or of PROFILE_RUN, with
#      ablate-train --profile-dir and prints the device time per kind of kernel, the largest
#      kernels, the device's idle gaps (scripts/bench/overlap.py) and the other kernels' time by
#      the host operator that launched them (scripts/bench/kernels_by_op.py);
#   3. trains each of Ablate's runs below for a few bf16 steps, then the peers' runs, and prints
#      one table (scripts/bench/train_bench_table.py): tokens/s, model TFLOP/s, MFU against the
#      card's measured bf16 matrix ceiling, peak allocated memory, and each Ablate run's tokens/s
#      over the fastest peer's and the compiled peer's (pt-compile) at the same model and shape,
#      and its peak over the leanest peer's.
# Ablate's tokens/s is the median over its logged windows after the first two steps (allocator
# and cuBLAS warm-up): log_every steps per window, so the loss is read (a wait on the device)
# once per window, and each window's time ends with that wait. A peer's is the mean over its
# timed steps after its warm-up, between two synchronizes. Model FLOPs per token are
# 6N + 6 L T H D_head for every row (the peers' count, from the model's shape).
#
# The peers run unmodified through scripts/bench/peer_shape.py, which builds them at the model's
# size (Qwen3-4B as well as 0.6B), one process per line of peer_runs: pt_qwen3_train.py compiled
# (pt-compile), eager (pt-eager) and compiled with Liger's fused linear cross-entropy
# (pt-compile+liger: the leanest peer at 4K, the fastest at 32K), one shape per process;
# transformers' Qwen3 eager (hf-eager) and with Liger-Kernel patched in (hf-liger, the leanest
# at 32K), each in a process of its own since Liger patches transformers for the whole process.
# A peer whose imports fail (transformers) or an option whose package is missing (liger_kernel)
# leaves a SKIPPED row. Only the peer lines of models among Ablate's runs run. Each peer process
# may take PEER_TIMEOUT seconds (default 240); a killed one leaves the rows it printed.
#
# Step counts, chosen for the whole call to take about 9 minutes on an H200 once ablate-train
# is built (estimates: profile 0.3 min, Ablate 1.5, pt at 0.6B 3, pt at 4B 2.5, hf 1.2): Ablate's
# runs below (steps in all; 0.6B at 4K: 30 of ~0.21 s; 32K: 12 of ~1.4 s; 4B at 8K: 10 of
# ~0.75 s; at 32K: 6 of ~4.5 s; ~10 s to start each), each peer's spec ends with :STEPS:WARM
# (timed steps after warm-up ones). A compiled peer compiles each shape once (about a minute);
# its Liger variant reuses the blocks' compiled code in the same process. Each phase prints the
# seconds since the start.
#
# With OUT set, logs, the trace and kernels.tsv are left there. ABLATE_ONLY=1 skips the peers;
# PEERS_ONLY=1 skips the profile and Ablate's runs; PROFILE=0 skips the profile;
# PROFILE_RUN="MODEL SEQ BATCH CHECKPOINTING STEPS [LOG_EVERY]" profiles that run instead
# (default "qwen3-0.6b 4096 4 false 6 1"; STEPS at least 5, since steps 4 and 5 are recorded), PROFILE_KERNELS and PROFILE_GAPS how many kernels
# and idle gaps to print (25, 5), PROFILE_OPS how many of the other kernels' (autograd node,
# operator) pairs (20);
# COMPARE_EAGER=1 also runs each of Ablate's runs with its fused kernels off
# (ABLATE_FUSED_KERNELS=0, row "ablate-eager").
# Arguments, each "MODEL SEQ BATCH CHECKPOINTING STEPS [LOG_EVERY [LOSS_CHUNK]]" (log_every 1
# by default; LOSS_CHUNK sets loss_chunk_tokens instead of the trainer's default, and names the
# row ablate-lcLOSS_CHUNK), replace Ablate's default runs.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${PEERS:-.peers}
ceiling=${CEILING_TFLOPS:-790}  # an 8192^3 bf16 matmul on an H200 (docs/benchmarks.md)
peer_timeout=${PEER_TIMEOUT:-240}
logs=${OUT:-runs/device-train-bench}
mkdir -p "$logs"
: >"$logs/rows.txt"
if [ "${PEERS_ONLY:-0}" != 1 ]; then
  source scripts/device-configure.sh Release
  device_build "$logs" ablate-train
  echo "built in ${SECONDS}s"
fi

# MODEL SEQ BATCH CHECKPOINTING STEPS LOG_EVERY
ablate_runs=(
  "qwen3-0.6b 4096 4 false 30 5"
  "qwen3-0.6b 32768 1 true 12 3"
  "qwen3-4b 8192 1 true 10 2"
  "qwen3-4b 32768 1 true 6 1"
)
if [ $# -gt 0 ]; then ablate_runs=("$@"); fi
variants=(ablate)
if [ "${COMPARE_EAGER:-0}" = 1 ]; then variants+=(ablate-eager); fi
# SCRIPT MODEL SPEC... (SEQ:BATCH:CKPT:OPTS:STEPS:WARM), one process each.
peer_runs=(
  "pt_qwen3_train.py qwen3-0.6b 4096:4:0:compile:10:3 4096:4:0:compile+liger:10:3 4096:4:0::10:3"
  "pt_qwen3_train.py qwen3-0.6b 32768:1:1:compile:6:3 32768:1:1:compile+liger:6:3 32768:1:1::4:2"
  "pt_qwen3_train.py qwen3-4b 8192:1:1:compile:6:3"
  "pt_qwen3_train.py qwen3-4b 32768:1:1:compile:4:2"
  "hf_qwen3_train.py qwen3-0.6b 4096:4:0::8:3 32768:1:1::4:2"
  "hf_qwen3_train.py qwen3-0.6b 4096:4:0:liger:8:3 32768:1:1:liger:4:2"
)

write_job() {  # NAME MODEL SEQ BATCH CKPT STEPS LOG_EVERY [LOSS_CHUNK]
  cat >"$logs/$1.json" <<JSON
{"job_id": "$1", "config": {"model": "$2", "attention": "dense", "optimizer": "adamw",${8:+
 "loss_chunk_tokens": $8,}
 "context_length": $3, "batch_size": $4, "micro_batch_size": $4,
 "activation_checkpointing": $5, "steps": $6, "warmup_steps": 1, "learning_rate": 1e-4,
 "log_every": $7, "eval_batches": 1, "dataset": "builtin:tiny-corpus", "precision": "bf16",
 "gpus": 1, "seed": 1, "data_seed": 1}}
JSON
}

if [ "${PROFILE:-1}" = 1 ] && [ "${PEERS_ONLY:-0}" != 1 ]; then
  read -r model seq batch ckpt steps log_every <<<"${PROFILE_RUN:-qwen3-0.6b 4096 4 false 6 1}"
  write_job profile "$model" "$seq" "$batch" "$ckpt" "$steps" "${log_every:-1}"
  "$build/bin/ablate-train" train --job "$logs/profile.json" --profile-dir "$logs/profile" \
    >"$logs/profile.log" 2>&1 || { tail -3 "$logs/profile.log"; exit 1; }
  echo "profile of $model at $seq x $batch (checkpointing $ckpt, log_every ${log_every:-1}):"
  grep -o 'profile of steps.*per step: [^;]*' "$logs/profile.log"
  echo "largest kernels (ms per step, share):"
  tail -n +2 "$logs/profile/kernels.tsv" | head -"${PROFILE_KERNELS:-25}" |
    awk -F'\t' '{ printf "  %8.2f %5.1f%%  %-11s %.110s\n", $5, 100*$6, $1, $2 }'
  # Where the device waited for the host: per step, busy against idle, and the longest gaps.
  # A reader that fails leaves the timed runs and the peers to run.
  python3 scripts/bench/overlap.py "$logs/profile/trace.json" 2 "${PROFILE_GAPS:-5}" || true
  # Which operators the kernels outside the matrix products and attention come from.
  python3 scripts/bench/kernels_by_op.py "$logs/profile/trace.json" 2 "${PROFILE_OPS:-20}" \
    '^(?!(void )?(nvjet|cudnn|cutlass|sm90_|cublas|pytorch_flash))' || true
  echo "profiled by ${SECONDS}s"
fi

for run in "${ablate_runs[@]}"; do
  [ "${PEERS_ONLY:-0}" = 1 ] && break
  for variant in "${variants[@]}"; do
    read -r model seq batch ckpt steps log_every loss_chunk <<<"$run"
    log_every=${log_every:-1}
    who=$variant${loss_chunk:+-lc$loss_chunk}
    name="$who-$model-$seq-$batch"
    ckpt01=$([ "$ckpt" = true ] && echo 1 || echo 0)
    fused=1
    if [ "$variant" = ablate-eager ]; then fused=0; fi
    write_job "$name" "$model" "$seq" "$batch" "$ckpt" "$steps" "$log_every" "$loss_chunk"
    if ! ABLATE_FUSED_KERNELS=$fused "$build/bin/ablate-train" train --job "$logs/$name.json" \
        >"$logs/$name.log" 2>&1; then
      echo "$who $model $seq $batch $ckpt01 FAILED $(grep -m1 '^failed' "$logs/$name.log" |
        cut -c1-120)" >>"$logs/rows.txt"
      continue
    fi
    params=$(sed -n 's/^training \([0-9]*\) parameters.*/\1/p' "$logs/$name.log")
    # The median of the windows that start after step 2: "step S/N ... tok/s X" ends a window
    # of log_every steps.
    tps=$(sed -n 's|^step \([0-9]*\)/[0-9]* .* tok/s \([0-9]*\).*|\1 \2|p' "$logs/$name.log" |
      awk -v every="$log_every" '$1 - every + 1 > 2 { print $2 }' | sort -n |
      awk '{ v[NR] = $1 }
        END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    peak=$(sed -n 's/.*peak allocated \([0-9]*\) bytes.*/\1/p' "$logs/$name.log")
    echo "$who $model $seq $batch $ckpt01 ${tps:-FAILED no window after step 2} $peak $params" \
      >>"$logs/rows.txt"
  done
  echo "$model $seq x $batch trained by ${SECONDS}s"
done

if [ "${ABLATE_ONLY:-0}" != 1 ]; then
  ablate_models=" $(printf '%s\n' "${ablate_runs[@]}" | awk '{ print $1 }' | tr '\n' ' ')"
  for run in "${peer_runs[@]}"; do
    read -r -a words <<<"$run"
    script=${words[0]} model=${words[1]}
    case $ablate_models in *" $model "*) ;; *) continue ;; esac
    IFS=: read -r seq _ _ opts _ <<<"${words[2]}"
    log="$logs/peer-${script%%_*}-$model-$seq-${opts:-eager}.log"
    # stdout carries the rows; anything else a peer prints goes to its log.
    if ! timeout "$peer_timeout" python3 scripts/bench/peer_shape.py "$peers/$script" \
        "$model" "${words[@]:2}" 2>"$log" | grep -E '^(pt|hf)-' >>"$logs/rows.txt"; then
      echo "$script $model ${words[*]:2}: exited early or printed no row; see $log"
      tail -3 "$log"
    fi
    echo "$script $model done by ${SECONDS}s"
  done
fi

python3 scripts/bench/train_bench_table.py "$logs/rows.txt" "$ceiling"
echo "total ${SECONDS}s"
