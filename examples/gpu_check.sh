#!/usr/bin/env bash
# GPU check of the vLLM paths, on a machine with one GPU and vLLM in its own environment (e.g. CI's
# .venv-vllm: python3 -m venv .venv-vllm && .venv-vllm/bin/pip install -e '.[test,hf,vllm]').
#
#   1. builds the tiny random-weight Qwen2.5-VL (harness make-tiny-model);
#   2. runs harness eval on the same samples and seed, greedy, through hf: (the reference),
#      vllm: (AsyncLLM in this process) and `vllm serve` + openai:;
#   3. checks that vllm: and openai: give the hf trajectories (every reply of every turn);
#   4. prints samples/s of each and the harness's share of its wall time (the wall time of
#      replaying the same replies through scripted:replay, i.e. the same episodes at zero model
#      cost, divided by the run's wall time).
#
# Usage: bash examples/gpu_check.sh            (PY=.venv-vllm/bin/python by default)
# Knobs: PY, TASKS (vstar,tallyqa), LIMIT (24), TOKENS (64), PORT (8765), OUT (a temp dir),
#        DTYPE (float32: the same arithmetic in both engines as far as kernels allow).
# Fits in 10 minutes on one H200 (most of it is vLLM start-up: two engines, one CUDA graph capture
# skipped with enforce_eager). Exit status 1 when a trajectory differs.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv-vllm/bin/python}
VLLM_BIN=${VLLM_BIN:-$(dirname "$PY")/vllm}
TASKS=${TASKS:-vstar,tallyqa}
LIMIT=${LIMIT:-24}
TOKENS=${TOKENS:-64}
PORT=${PORT:-8765}
DTYPE=${DTYPE:-float32}
OUT=${OUT:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
# The processor bounds that keep the episode's image sizes (see harness/backends/openai_api.py).
MM='{"min_pixels": 3136, "max_pixels": 12845056}'
COMMON=(--tasks "$TASKS" --limit "$LIMIT" --seed 0 --limits "max_new_tokens=$TOKENS" --batch_size 16 --no_progress)

"$PY" -c 'import torch, vllm; assert torch.cuda.is_available(), "no GPU"; print("vllm", vllm.__version__, "on", torch.cuda.get_device_name(0))'
echo "== tiny model"
"$PY" -m harness make-tiny-model "$OUT/tiny"

echo "== hf (reference)"
"$PY" -m harness eval --model "hf:$OUT/tiny" --model_args "device=cuda,dtype=$DTYPE" "${COMMON[@]}" --output_path "$OUT/hf"

echo "== vllm (AsyncLLM)"
"$PY" -m harness eval --model "vllm:$OUT/tiny" \
    --model_args "dtype=$DTYPE,gpu_memory_utilization=0.3,max_model_len=8192,enforce_eager=true" \
    "${COMMON[@]}" --output_path "$OUT/vllm"

echo "== vllm serve + openai"
"$VLLM_BIN" serve "$OUT/tiny" --port "$PORT" --dtype "$DTYPE" --gpu-memory-utilization 0.3 \
    --max-model-len 8192 --enforce-eager --seed 0 --mm-processor-kwargs "$MM" \
    --limit-mm-per-prompt '{"image": 16, "video": 1}' >"$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 $SERVER 2>/dev/null; then tail -20 "$OUT/serve.log"; exit 1; fi
    sleep 1
done
"$PY" -m harness eval --model "openai:$OUT/tiny" \
    --model_args "base_url=http://127.0.0.1:$PORT/v1,concurrency=16" "${COMMON[@]}" --output_path "$OUT/openai"
kill $SERVER; wait $SERVER 2>/dev/null || true

echo "== harness alone (the same episodes replayed at zero model cost)"
for run in hf vllm openai; do
    "$PY" -m harness eval --model "scripted:replay:$OUT/$run/samples.jsonl" "${COMMON[@]}" \
        --output_path "$OUT/replay-$run" >/dev/null
done

echo "== comparison"
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])

def replies(run):
    rows = [json.loads(x) for x in (out / run / "samples.jsonl").read_text().splitlines()]
    return {f"{r['trajectory']['task']}/{r['trajectory']['sample_id']}": [t["reply"] for t in r["trajectory"]["turns"]] for r in rows}

def wall(run):
    return json.loads((out / run / "results.json").read_text())["wall_seconds"]

ref = replies("hf")
bad = 0
for run in ("hf", "vllm", "openai"):
    got = replies(run)
    same = sum(got.get(k) == v for k, v in ref.items())
    n = len(got)
    print(f"{run:7s} {n / wall(run):7.2f} samples/s  harness share {wall('replay-' + run) / wall(run):6.1%}  "
          f"same trajectories as hf: {same}/{len(ref)}")
    if run != "hf" and same != len(ref):
        bad += 1
        for k, v in ref.items():
            if got.get(k) != v:
                print(f"  first difference: {k}\n    hf:  {v!r}\n    {run}: {got.get(k)!r}")
                break
print(f"results in {out}")
sys.exit(1 if bad else 0)
EOF
