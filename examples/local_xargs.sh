#!/usr/bin/env bash
# Sharded evaluation on one machine: N shards run in parallel with `xargs -P`, then `harness merge`.
#
#   bash examples/local_xargs.sh                       # 2 shards of the scripted demo below
#   SHARDS=4 GPUS_PER_SHARD=2 MODEL=vllm:Qwen/Qwen2.5-VL-7B-Instruct \
#     MODEL_ARGS=tensor_parallel_size=2 TASKS=all LIMIT=0 OUT=runs/qwen7b bash examples/local_xargs.sh
#
# Each shard writes OUT/shard-I-of-N (its own results.json + samples.jsonl, log in OUT/shard-I-of-N.log)
# and is started with --resume, so rerunning this script after a crash or a kill finishes only what
# is missing. The merged run is OUT/merged (the same files as a single run: leaderboards and
# `harness rescore` read it). With GPUS_PER_SHARD=G, shard I sees GPUs I*G .. I*G+G-1 through
# CUDA_VISIBLE_DEVICES, so each shard's engine (hf, or vLLM with tensor_parallel_size=G) has its own GPUs:
# this is how to run data parallel with vLLM's offline engine (one engine per shard).
#
# Settings (environment): SHARDS, OUT, MODEL, MODEL_ARGS, TASKS, LIMIT (0 = every sample), DATA,
# GPUS_PER_SHARD (0 = leave CUDA_VISIBLE_DEVICES alone), EXTRA (more `harness eval` flags),
# HARNESS (the command, default `harness`).
set -euo pipefail

SHARDS=${SHARDS:-2}
OUT=${OUT:-runs/sharded}
MODEL=${MODEL:-scripted:oracle}
MODEL_ARGS=${MODEL_ARGS:-}
TASKS=${TASKS:-all}
LIMIT=${LIMIT:-20}
DATA=${DATA:-synthetic}
GPUS_PER_SHARD=${GPUS_PER_SHARD:-0}
EXTRA=${EXTRA:-}
HARNESS=${HARNESS:-harness}
export SHARDS OUT MODEL MODEL_ARGS TASKS LIMIT DATA GPUS_PER_SHARD EXTRA HARNESS

run_shard() {
    local i=$1
    local folder="$OUT/shard-$i-of-$SHARDS"
    local args=(eval --tasks "$TASKS" --model "$MODEL" --data "$DATA" --shard "$i/$SHARDS"
        --output_path "$folder" --resume --no_progress)
    [ -n "$MODEL_ARGS" ] && args+=(--model_args "$MODEL_ARGS")
    [ "$LIMIT" != 0 ] && args+=(--limit "$LIMIT")
    if [ "$GPUS_PER_SHARD" != 0 ]; then
        CUDA_VISIBLE_DEVICES=$(seq -s, $((i * GPUS_PER_SHARD)) $((i * GPUS_PER_SHARD + GPUS_PER_SHARD - 1)))
        export CUDA_VISIBLE_DEVICES
    fi
    # shellcheck disable=SC2086  # EXTRA and HARNESS are word lists on purpose
    if ! $HARNESS "${args[@]}" $EXTRA >"$folder.log" 2>&1; then
        echo "shard $i/$SHARDS failed; see $folder.log" >&2
        return 1
    fi
    echo "shard $i/$SHARDS done"
}
export -f run_shard

mkdir -p "$OUT"
seq 0 $((SHARDS - 1)) | xargs -P "$SHARDS" -I{} bash -c 'run_shard {}'
rm -rf "${OUT:?}/merged"  # derived from the shards: rebuilt on every run of this script
# shellcheck disable=SC2086
$HARNESS merge $(seq -f "$OUT/shard-%g-of-$SHARDS" 0 $((SHARDS - 1))) --output_path "$OUT/merged"
