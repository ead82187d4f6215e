"""Evaluation during training: every ``eval_every`` steps the current weights are scored with
``harness eval``'s own code (:func:`harness.run.evaluate.evaluate` with the trainer's live policy,
so no checkpoint is written or reloaded: with vLLM generation, the engine that already holds the
step's weights) on held-out samples (``eval_data``, eval's default ``synthetic``, disjoint from
the training prompts' ``synthetic:2``).

Each evaluation is a normal run folder, ``OUTPUT_DIR/evals/step-N`` (``results.json``,
``samples.jsonl``, ``run_config.json``), so ``harness leaderboard OUTPUT_DIR/evals/step-*`` reads
them; its headline numbers also go into that step's ``train_log.jsonl`` entry as
``eval/<task>/<metric>`` (an accuracy panel series of ``harness leaderboard --train_log``) and
``eval/<task>/rapr`` (the RaPR panel), plotted against the training curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.loop.policy import Policy
    from harness.plugins import Harness


@dataclass(frozen=True)
class TrainEval:
    """What to evaluate, and how often."""

    every: int  # steps; 0 = never
    tasks: str
    limit: int | None
    data: str
    limits: str  # episode limits of the evaluation (as eval's --limits)
    seed: int
    label: str  # the model name recorded in the run folders

    def due(self, completed_steps: int, max_steps: int) -> bool:
        """After ``completed_steps`` steps: every ``every`` steps and after the last."""
        if self.every <= 0:
            return False
        return completed_steps % self.every == 0 or completed_steps == max_steps

    def check(self, harness: Harness) -> None:
        """One-line errors (unknown task, bad limits) before any model is loaded."""
        from harness.loop.limits import Limits

        if self.every > 0:
            harness.resolve_tasks(self.tasks)
            Limits.parse(self.limits)


def run_eval(plan: TrainEval, step: int, policy: Policy, harness: Harness, out: Path) -> dict[str, float]:
    """Evaluate ``policy`` (the live training weights) after ``step`` steps into
    ``out/evals/step-N``; the numbers for the train log."""
    import shutil

    from harness.loop.limits import Limits
    from harness.run.evaluate import EvalConfig, evaluate

    folder = out / "evals" / f"step-{step}"
    shutil.rmtree(folder, ignore_errors=True)  # a resumed run re-evaluates this step from scratch
    config = EvalConfig(
        tasks=plan.tasks,
        model=f"{plan.label}@step-{step}",
        data=plan.data,
        limit=plan.limit,
        seed=plan.seed,
        limits=Limits.parse(plan.limits),
        output_path=str(folder),
    )
    result = evaluate(config, harness, show_progress=False, policy=policy)
    numbers: dict[str, float] = {}
    for task, res in result.results.items():
        numbers[f"eval/{task}/{res.metric}"] = float(res.value)
        if "pixel_reasoning_rate" in res.tool_stats:
            numbers[f"eval/{task}/rapr"] = float(res.tool_stats["pixel_reasoning_rate"])
    return numbers


def summary(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in numbers.items())


def trainer_callback(plan: TrainEval, policy: Policy, harness: Harness, out: Path) -> Any:
    """A transformers ``TrainerCallback`` (SFT) that runs :func:`run_eval` every ``plan.every``
    optimiser steps on the world-process-zero and records the numbers in ``log_history``."""
    from transformers import TrainerCallback

    class _Eval(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> Any:
            if not plan.due(state.global_step, state.max_steps):
                return control
            if state.is_world_process_zero:
                was_training = model.training if model is not None else False
                if model is not None:
                    model.eval()
                numbers = run_eval(plan, state.global_step, policy, harness, out)
                if model is not None and was_training:
                    model.train()
                state.log_history.append({"step": state.global_step, **numbers})
                print(f"eval at step {state.global_step}: {summary(numbers)}")
            return control

    return _Eval()
