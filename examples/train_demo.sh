#!/usr/bin/env bash
# Does training move a number? End to end on the CPU, through `harness train` and `harness eval`
# only (README, "Does training move the numbers?"):
#
#   1. harness make-tiny-model --size demo: a random-weight Qwen2.5-VL of ~3.5M parameters;
#   2. trl_sft on 128 synthetic V* tool-use traces (plugins/configs/demo_sft.yaml);
#   3. curiosity_grpo from that SFT checkpoint three times, same seeds, 20 collections of 4 x 8
#      (plugins/configs/demo_grpo.yaml): without the curiosity bonus (H=0), with the released
#      bonus, and with the bonus x8 (c_image=1.0);
#   4. harness eval of each checkpoint on 64 held-out samples, greedy and sampled (T=1.0);
#   5. on stdout, a table of the evaluations and of the GRPO runs' tool-use rate per step, and
#      harness leaderboard OUT/eval-* (with the GRPO training curves) into OUT/report.
#
#   bash examples/train_demo.sh [OUT]               # OUT: a new folder, default runs/demo
#   DEMO_QUICK=1 bash examples/train_demo.sh OUT    # every count shrunk: checks the commands only
#
# Seeds: model build 0; SFT traces synthetic:1, GRPO prompts synthetic:2, evaluation synthetic:0
# (disjoint samples); trainer and eval seeds 0. Wall and CPU seconds of every command go to
# OUT/timings.tsv (CPU with /usr/bin/time, when present). HARNESS: the command (default harness).
set -euo pipefail

OUT=${1:-runs/demo}
HARNESS=${HARNESS:-harness}
CONFIGS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/plugins/configs"
L="min_pixels=12544,max_pixels=50176,crop_min_pixels=3136,crop_max_pixels=50176,max_new_tokens=64"
N_EVAL=64
SFT_QUICK=() GRPO_QUICK=()
if [[ "${DEMO_QUICK:-0}" == 1 ]]; then
  N_EVAL=2
  SFT_QUICK=(--set n_samples=4 --set max_steps=2 --set batch_size=2)
  GRPO_QUICK=(--set n_samples=2 --set max_steps=1 --set prompts_per_step=1 --set num_generations=2)
fi
if [[ -e "$OUT" ]]; then
  echo "train_demo.sh: $OUT exists; give a new folder" >&2
  exit 2
fi
mkdir -p "$OUT"
TIMES="$OUT/timings.tsv"
printf 'step\twall_s\tuser_s\tsys_s\n' >"$TIMES"

run() { # run NAME ARGS...: harness ARGS (its output on stderr), wall and CPU seconds to timings.tsv
  local name=$1
  shift
  echo "== $name: harness $*" >&2
  # shellcheck disable=SC2086  # HARNESS is a word list on purpose (e.g. "python -m harness")
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f "$name	%e	%U	%S" -a -o "$TIMES" $HARNESS "$@" >&2
  else
    local t0=$SECONDS
    $HARNESS "$@" >&2
    printf '%s\t%s\t\t\n' "$name" $((SECONDS - t0)) >>"$TIMES"
  fi
}

evaluate() { # evaluate NAME: OUT/NAME greedy (eval's default) and sampled at temperature 1.0
  run "eval-$1" eval --tasks vstar --model "hf:$OUT/$1" --limit "$N_EVAL" --batch_size 64 \
    --episode_limits "$L" --no_progress --output_path "$OUT/eval-$1"
  run "eval-$1-t1" eval --tasks vstar --model "hf:$OUT/$1" --limit "$N_EVAL" --temperature 1.0 \
    --seed 0 --episode_limits "$L" --no_progress --output_path "$OUT/eval-$1-t1"
}

grpo() { # grpo NAME [--set KEY=VALUE ...]: curiosity_grpo from OUT/sft into OUT/NAME, evaluated
  local name=$1
  shift
  run "$name" train --plugin curiosity_grpo --config "$CONFIGS/demo_grpo.yaml" \
    --set model="$OUT/sft" --set output_dir="$OUT/$name" "$@" "${GRPO_QUICK[@]}"
  evaluate "$name"
}

run make-model make-tiny-model "$OUT/model" --size demo --seed 0
run sft train --plugin trl_sft --config "$CONFIGS/demo_sft.yaml" \
  --set model="$OUT/model" --set output_dir="$OUT/sft" "${SFT_QUICK[@]}"
evaluate sft
grpo grpo-nobonus --set H=0
grpo grpo-bonus
grpo grpo-bonus8x --set c_image=1.0
run leaderboard leaderboard "$OUT"/eval-* --out "$OUT/report" \
  --train_log "$OUT/grpo-nobonus/train_log.jsonl" --train_log "$OUT/grpo-bonus/train_log.jsonl" \
  --train_log "$OUT/grpo-bonus8x/train_log.jsonl"

python3 - "$OUT" <<'EOF'
import json
import math
import sys
from pathlib import Path

out = Path(sys.argv[1])
times = {}
for line in (out / "timings.tsv").read_text().splitlines()[1:]:
    name, wall, user = (line.split("\t") + ["", ""])[:3]
    times[name] = (float(wall), float(user) if user else None)


def secs(name):
    wall, user = times[name]
    return f"{wall:.0f} s" + (f" ({user:.0f} s CPU)" if user is not None else "")


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


models = ("sft", "grpo-nobonus", "grpo-bonus", "grpo-bonus8x")
print("| model | decoding | accuracy ± SE (k/n) | answered | samples with a tool call | valid calls / calls | train | eval |")
print("|---|---|---|---|---|---|---|---|")
for model in models:
    for suffix, decoding in (("", "greedy"), ("-t1", "T=1.0")):
        rows = lines(out / f"eval-{model}{suffix}" / "samples.jsonl")
        n = len(rows)
        k = sum(r["score"]["score"] for r in rows)
        answered = sum(1 for r in rows if r["score"].get("extracted"))
        obs = [[t["observation"] for t in r["trajectory"]["turns"] if t.get("observation")] for r in rows]
        calls = [o for os_ in obs for o in os_]
        valid = sum(1 for o in calls if not o.get("error"))
        p = k / n
        train = "" if suffix else secs(model)
        print(
            f"| {model} | {decoding} | {p:.3f} ± {math.sqrt(p * (1 - p) / n):.3f} ({k:g}/{n}) | {answered}/{n} | "
            f"{sum(1 for os_ in obs if os_)}/{n} | {valid}/{len(calls)} | {train} | {secs(f'eval-{model}{suffix}')} |"
        )
print("\nGRPO per step: RaPR, the share of the step's rollouts (4 prompts x 8) with a tool call (mean of the last 5 steps)")
for model in models[1:]:
    rapr = [r["pixel_reasoning_rate"] for r in lines(out / model / "train_log.jsonl")]
    tail = rapr[-5:]
    print(f"  {model:13s} {' '.join(f'{x:.2f}' for x in rapr)}  ({sum(tail) / len(tail):.2f})")
wall = sum(w for w, _ in times.values())
cpu = sum(u for _, u in times.values() if u is not None)
print(f"\ntotal: {wall:.0f} s wall, {cpu:.0f} s user CPU ({out / 'timings.tsv'}); report: {out / 'report'}")
EOF
