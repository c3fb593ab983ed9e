#!/usr/bin/env bash
# The fused kernels on a GPU (the trainer-speed issue's correctness check). On a GPU machine
# (packages as scripts/device-configure.sh says): builds model_test, train_step_test, optim_test,
# optimizer_benchmark and ablate-train against the machine's CUDA LibTorch, runs the kernels'
# tests (FusedNormTest, FusedSwiGluTest and ChunkedCrossEntropyTest: outputs and gradients
# within twice the eager bf16 error against fp64, poisoned outputs, deterministic weight
# gradients, the residual stream of the add fused with the post-attention norm bit-identical to
# eager's add; FusedAdamW8bitTest: the 8-bit AdamW step against the eager path), times one step
# of adamw and adamw8bit on Qwen3-0.6B's and 4B's shapes, then trains qwen3-0.6b with
# $OPTIMIZER (default adamw) for STEPS steps (default 200) at 4,096 x 1 twice from the same
# seeds, with the fused kernels on and off, and prints how far the two loss curves drift apart.
# With OUT set, the logs are left there. CURVE_ONLY=1 builds ablate-train alone and runs only
# the two trainings.
set -euo pipefail
cd "$(dirname "$0")/.."
export ABLATE_BUILD_TESTS=ON
source scripts/device-configure.sh Release
logs=${OUT:-runs/device-fused-check}
mkdir -p "$logs"
if [ "${CURVE_ONLY:-0}" = 1 ]; then
  device_build "$logs" ablate-train
else
device_build "$logs" model_test train_step_test optim_test optimizer_benchmark ablate-train
"$build/tests/model_test" --gtest_filter='FusedNorm*:FusedSwiGlu*' 2>&1 | grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|eager' || true
"$build/tests/train_step_test" --gtest_filter='ChunkedCrossEntropy*' 2>&1 |
  grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|eager' || true
"$build/tests/optim_test" --gtest_filter='*Fused*' 2>&1 |
  grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|Expected|Which is|actual|  ' || true
for model in qwen3-0.6b qwen3-4b; do
  "$build/bin/optimizer_benchmark" --device cuda --model "$model" --optimizers adamw,adamw8bit || true
done
fi

steps=${STEPS:-200}
for fused in 1 0; do
  cat >"$logs/curve-$fused.json" <<JSON
{"job_id": "curve-$fused", "config": {"model": "qwen3-0.6b", "attention": "dense",
 "optimizer": "${OPTIMIZER:-adamw}", "context_length": 4096, "batch_size": 1, "steps": $steps,
 "warmup_steps": 20, "learning_rate": 3e-4, "log_every": 1, "eval_batches": 4,
 "dataset": "builtin:tiny-corpus", "precision": "bf16", "gpus": 1, "seed": 1, "data_seed": 1}}
JSON
  ABLATE_FUSED_KERNELS=$fused "$build/bin/ablate-train" train --job "$logs/curve-$fused.json" \
    >"$logs/curve-$fused.log" 2>&1 || { tail -3 "$logs/curve-$fused.log"; exit 1; }
done
python3 - "$logs/curve-1.log" "$logs/curve-0.log" <<'PY'
import re, sys
def curve(path):
    text = open(path).read()
    losses = [float(m) for m in re.findall(r"^step \d+/\d+ loss ([0-9.]+)", text, re.M)]
    tps = [int(m) for m in re.findall(r"tok/s (\d+)", text)]
    final = re.findall(r"final eval loss ([0-9.]+)", text)
    return losses, tps, float(final[-1]) if final else float("nan")
fused, fused_tps, fused_eval = curve(sys.argv[1])
eager, eager_tps, eager_eval = curve(sys.argv[2])
diffs = [abs(a - b) for a, b in zip(fused, eager)]
tail = diffs[-50:]
print(f"steps {len(diffs)}: loss |fused - eager| max {max(diffs):.4f}, "
      f"mean over the last 50 {sum(tail) / len(tail):.4f}; "
      f"train loss at the end {fused[-1]:.4f} fused, {eager[-1]:.4f} eager; "
      f"final eval loss {fused_eval:.4f} fused, {eager_eval:.4f} eager")
mid = lambda v: sorted(v[2:])[len(v[2:]) // 2]
print(f"tokens/s (median) fused {mid(fused_tps):,}, eager {mid(eager_tps):,}")
PY
