#!/usr/bin/env bash
# On a GPU machine with .device-deps/ carried along (and, for the references, the wheel of
# pytorch-optimizer in .whl/): builds optimizer_benchmark against that machine's CUDA LibTorch
# and times one step of each of Ablate's optimizers on Qwen3-0.6B's and 4B's parameter shapes,
# amortized over the preconditioning frequency, then the same for the references
# (scripts/bench/optimizers_reference.py: torch's fused AdamW, torch.optim.Muon,
# pytorch-optimizer's SOAP and ScalableShampoo), in the same run. With OUT set, the lines are
# also left in $OUT/optimizers.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/device-configure.sh Release
out=${OUT:-runs/device-optimizers}
mkdir -p "$out"
device_build "$out" optimizer_benchmark ablate-train
frequency=${PRECONDITION_FREQUENCY:-10}
for model in qwen3-0.6b qwen3-4b; do
  "$build/bin/optimizer_benchmark" --model "$model" --device cuda \
    --precondition_frequency "$frequency" 2>&1 | tee -a "$out/optimizers.txt" || true
  python3 scripts/bench/optimizers_reference.py --model "$model" --device cuda \
    --precondition_frequency "$frequency" 2>&1 | tee -a "$out/optimizers.txt" || true
done
