#!/usr/bin/env bash
# On a GPU machine (packages as scripts/device-configure.sh says; for the references, the wheel of
# pytorch-optimizer in .whl/): builds optimizer_benchmark against that machine's CUDA LibTorch
# and times one step of each of Ablate's optimizers on Qwen3-0.6B's and 4B's parameter shapes,
# amortized over the preconditioning frequency, then the same for the references
# (scripts/bench/optimizers_reference.py: torch's fused AdamW, torch.optim.Muon,
# pytorch-optimizer's SOAP), in the same run; then SOAP, Shampoo and SOAP-4bit on 0.6B again
# with float32 matmuls in TF32, beside pytorch-optimizer's SOAP in the same mode. Left out to
# keep the run within a few minutes, unless REFERENCE_SHAMPOO=1: pytorch-optimizer's
# ScalableShampoo (about 9 s a step at 0.6B, minutes at 4B: docs/benchmarks.md). At 4B, SOAP,
# SOAP-4bit and pytorch-optimizer's SOAP run out of memory (docs/benchmarks.md) and are not run.
# Prints the table of docs/benchmarks.md (scripts/bench/optimizers_table.py; STEP_MS is a full
# 0.6B training step on this GPU, default 416 as measured on an H200). With OUT set, the lines
# and the table are also left in $OUT/optimizers.txt and $OUT/optimizers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/device-configure.sh Release
out=${OUT:-runs/device-optimizers}
mkdir -p "$out"
device_build "$out" optimizer_benchmark
frequency=${PRECONDITION_FREQUENCY:-10}
bench() { "$build/bin/optimizer_benchmark" --device cuda --precondition_frequency "$frequency" "$@"; }
reference() {
  python3 scripts/bench/optimizers_reference.py --device cuda \
    --precondition_frequency "$frequency" "$@"
}
references=torch_adamw_fused,torch_muon,po_soap
[[ ${REFERENCE_SHAMPOO:-0} == 1 ]] && references+=,po_shampoo
{
  bench --model qwen3-0.6b || true
  reference --model qwen3-0.6b --optimizers "$references" || true
  bench --model qwen3-0.6b --tf32 --optimizers soap,shampoo,soap4bit || true
  reference --model qwen3-0.6b --tf32 --optimizers po_soap || true
  bench --model qwen3-4b --optimizers adamw,adamw8bit,muon,shampoo || true
  reference --model qwen3-4b --optimizers torch_adamw_fused,torch_muon || true
} 2>&1 | tee "$out/optimizers.txt"
python3 scripts/bench/optimizers_table.py "$out/optimizers.txt" --step_ms "${STEP_MS:-416}" \
  | tee "$out/optimizers.md"
