"""Scoring modes: how a finished trajectory becomes a score.

``official`` (the default) applies the task's own scorer to the final reply. Other modes (for
example a compatibility mode that reproduces a paper's released scoring rule) register through
the ``harness_register_scoring_modes`` hook and are chosen with ``harness eval --scoring MODE``;
``harness rescore`` can apply any of them to a finished run from ``samples.jsonl`` alone.
A mode that does not apply to a task raises ``ValueError`` naming both.
"""

from __future__ import annotations

from collections.abc import Callable

from harness import hookimpl
from harness.records import Sample, SampleScore, Trajectory
from harness.task import Scored, TaskSpec

ScoringMode = Callable[[TaskSpec, Sample, Trajectory], Scored]
DEFAULT_MODE = "official"


def official(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    """The task's own scorer on the final reply (``None`` when the episode ended without one)."""
    return spec.score(trajectory.final_reply, sample)


def score_trajectory(
    spec: TaskSpec,
    sample: Sample,
    trajectory: Trajectory,
    mode: ScoringMode = official,
    mode_name: str = DEFAULT_MODE,
) -> SampleScore:
    """Score a finished trajectory (the same function rewards use)."""
    return sample_score(spec, sample, mode(spec, sample, trajectory), mode_name)


def sample_score(
    spec: TaskSpec, sample: Sample, scored: Scored, mode_name: str = DEFAULT_MODE
) -> SampleScore:
    """The record of ``scored`` (a scorer's result on ``sample``): the one place a
    :class:`SampleScore` is built, for an episode, a rescore and the lm-eval bridge alike."""
    return SampleScore(
        task=sample.task,
        sample_id=sample.id,
        metric=spec.metric,
        score=float(scored.score),
        extracted=scored.extracted,
        gold=sample.golds,
        breakdown=spec.breakdown(sample),
        scoring=mode_name,
    )


@hookimpl
def harness_register_scoring_modes() -> dict[str, ScoringMode]:
    return {DEFAULT_MODE: official}
