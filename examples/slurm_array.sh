#!/usr/bin/env bash
# Sharded evaluation on a SLURM cluster: one shard per array task, then one `harness merge` job.
#
#   bash examples/slurm_array.sh            # on the login node: submits the array and the merge job
#   SHARDS=16 MODEL=hf:TIGER-Lab/PixelReasoner-RL-v1 TASKS=all OUT=/shared/runs/pr-rl bash examples/slurm_array.sh
#
# Run without SLURM_ARRAY_TASK_ID (on the login node) it submits itself as an array of SHARDS
# tasks (`sbatch --array=0-(SHARDS-1)`) and a merge job that starts when every task succeeded
# (`--dependency=afterok`). Inside an array task it evaluates shard
# SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT into OUT/shard-I-of-N with --resume, so a requeued or
# resubmitted task finishes only the samples that are missing (`sbatch --requeue` is safe; rerun one
# shard with `SHARDS=8 sbatch --array=3 examples/slurm_array.sh`, then the merge line). OUT
# must be on a filesystem every node sees. Shard membership is a hash of (task, sample id), so a
# failed shard can be rerun later, on any node, and still merge: `harness merge` checks that every
# shard has the same configuration fingerprint and that no sample is missing or doubled.
#
# Settings (environment, exported to the jobs): SHARDS, OUT, MODEL, MODEL_ARGS, TASKS, LIMIT
# (0 = every sample), DATA, EXTRA (more `harness eval` flags), HARNESS (default `harness`),
# SBATCH_ARGS (more sbatch flags for the array, e.g. "--partition=gpu --account=me").
#SBATCH --job-name=pixel-eval
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=08:00:00
#SBATCH --output=slurm-%x-%A_%a.out
set -euo pipefail

SHARDS=${SHARDS:-8}
OUT=${OUT:-runs/sharded}
MODEL=${MODEL:-hf:TIGER-Lab/PixelReasoner-RL-v1}
MODEL_ARGS=${MODEL_ARGS:-}
TASKS=${TASKS:-all}
LIMIT=${LIMIT:-0}
DATA=${DATA:-hub}
EXTRA=${EXTRA:-}
HARNESS=${HARNESS:-harness}
SBATCH_ARGS=${SBATCH_ARGS:-}
export SHARDS OUT MODEL MODEL_ARGS TASKS LIMIT DATA EXTRA HARNESS

if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
    mkdir -p "$OUT"
    # shellcheck disable=SC2086  # SBATCH_ARGS is a word list on purpose
    array=$(sbatch --parsable --export=ALL --array=0-$((SHARDS - 1)) $SBATCH_ARGS "$0")
    array=${array%%;*}  # "jobid;cluster" on multi-cluster sites
    shards=$(seq -f "$OUT/shard-%g-of-$SHARDS" 0 $((SHARDS - 1)) | tr '\n' ' ')
    merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" --job-name=pixel-merge \
        --time=01:00:00 --output="$OUT/merge-%j.out" \
        --wrap="$HARNESS merge $shards --output_path $OUT/merged")
    echo "submitted array job $array ($SHARDS shards into $OUT) and merge job ${merge%%;*} ($OUT/merged)"
    exit 0
fi

I=$SLURM_ARRAY_TASK_ID
N=$SHARDS  # not SLURM_ARRAY_TASK_COUNT: a resubmitted single task (--array=3) is still shard 3/SHARDS
args=(eval --tasks "$TASKS" --model "$MODEL" --data "$DATA" --shard "$I/$N"
    --output_path "$OUT/shard-$I-of-$N" --resume --no_progress)
[ -n "$MODEL_ARGS" ] && args+=(--model_args "$MODEL_ARGS")
[ "$LIMIT" != 0 ] && args+=(--limit "$LIMIT")
# shellcheck disable=SC2086
exec $HARNESS "${args[@]}" $EXTRA
