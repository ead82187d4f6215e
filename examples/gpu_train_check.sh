#!/usr/bin/env bash
# GPU check of the trainers, on a machine with one GPU and vLLM in its own environment (e.g. CI's
# .venv-vllm: python3 -m venv .venv-vllm && .venv-vllm/bin/pip install -e '.[test,hf,train,vllm]').
#
#   1. builds the tiny random-weight Qwen2.5-VL (harness make-tiny-model);
#   2. trl_sft: a few steps in bf16 with gradient checkpointing (dtype=auto is bf16 on CUDA);
#   3. curiosity_grpo from that checkpoint: a few steps in bf16, gradient checkpointing, rollouts
#      by a colocated vLLM engine (weights pushed every step), a checkpoint every step, one
#      evaluation during training; then --resume from the last checkpoint with one more step;
#   4. harness eval of the final GRPO checkpoint through hf: (the file a user would load).
#   Checks: each command exits 0; the bf16 weights are saved; the GRPO log has every step; the
#   in-training eval folder and the final eval have results.json.
#
# Usage: bash examples/gpu_train_check.sh        (PY=.venv-vllm/bin/python by default)
# Knobs: PY, OUT (a temp dir), STEPS (3), TOKENS (64).
# Meant to fit in 10 minutes on one GPU (most of it is vLLM's start-up). NOT RUN by the project so
# far (no GPU was lent); the test suite never depends on it.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv-vllm/bin/python}
OUT=${OUT:-$(mktemp -d /tmp/gpu_train_check.XXXXXX)}
STEPS=${STEPS:-3}
TOKENS=${TOKENS:-64}
L="min_pixels=12544,max_pixels=200704,crop_min_pixels=3136,crop_max_pixels=200704,max_new_tokens=$TOKENS"

"$PY" -c 'import torch, vllm; assert torch.cuda.is_available(), "no GPU"; print("vllm", vllm.__version__, "on", torch.cuda.get_device_name(0))'
echo "== tiny model"
"$PY" -m harness make-tiny-model "$OUT/tiny"

echo "== trl_sft: bf16, gradient checkpointing"
"$PY" -m harness train --plugin trl_sft --config plugins/configs/trl_sft.yaml \
    --set model="$OUT/tiny" --set output_dir="$OUT/sft" --set n_samples=8 --set max_steps="$STEPS" \
    --set grad_accum=1 --set learning_rate=1e-3 --set gradient_checkpointing=true --set limits="$L"
"$PY" - "$OUT/sft" <<'PY'
import json, sys
from pathlib import Path
cfg = json.loads((Path(sys.argv[1]) / "config.json").read_text())
dtype = cfg.get("dtype") or cfg.get("torch_dtype") or cfg.get("text_config", {}).get("dtype")
print("sft saved dtype:", dtype); assert "bfloat16" in str(dtype), dtype
PY

echo "== curiosity_grpo: bf16, gradient checkpointing, vLLM colocate, checkpoints, eval during training"
GRPO=(--plugin curiosity_grpo --config plugins/configs/curiosity_grpo.yaml
    --set model="$OUT/sft" --set output_dir="$OUT/grpo" --set n_samples=8 --set prompts_per_step=2
    --set num_generations=4 --set learning_rate=1e-4 --set limits="$L" --set gradient_checkpointing=true
    --set use_vllm=true --set vllm_mode=colocate --set vllm_gpu_memory_utilization=0.3
    --set vllm_model_args=enforce_eager=true --set save_every=1 --set eval_every="$STEPS"
    --set eval_limit=8 --set eval_limits="$L")
"$PY" -m harness train "${GRPO[@]}" --set max_steps="$STEPS"
test -f "$OUT/grpo/evals/step-$STEPS/results.json"
echo "== curiosity_grpo --resume: one more step from the last checkpoint"
"$PY" -m harness train "${GRPO[@]}" --set max_steps=$((STEPS + 1)) --set eval_every=0 --resume 2>&1 | tee "$OUT/resume.log"
grep -q "resuming from" "$OUT/resume.log"
test "$(wc -l <"$OUT/grpo/train_log.jsonl")" -eq $((STEPS + 1))
ls "$OUT/grpo/tensorboard"/*/events.out.tfevents.* >/dev/null

echo "== harness eval of the GRPO checkpoint"
"$PY" -m harness eval --tasks vstar --model "hf:$OUT/grpo" --limit 8 --limits "$L" --no_progress --output_path "$OUT/eval"
test -f "$OUT/eval/results.json"
echo "gpu_train_check: OK ($OUT)"
