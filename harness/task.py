"""TaskSpec: everything the core needs to know about one benchmark.

A task module (``tasks/vstar.py`` ...) builds one frozen ``TaskSpec`` from small functions and
returns it from the ``harness_register_tasks`` hook. Changing a prompt, an extractor or a metric
must bump ``version``: results of different versions are never silently merged.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .records import MediaKind, Sample

PromptMode = Literal["vcot", "notool", "direct"]
PROMPT_MODES: tuple[PromptMode, ...] = ("vcot", "notool", "direct")
MetricName = Literal["accuracy", "anls"]


@dataclass(frozen=True, slots=True)
class Scored:
    """Result of a task's scorer on one final reply."""

    score: float
    extracted: str | None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A benchmark.

    - ``synthesize(n, seed, out_dir)`` writes ``n`` offline samples in the real data's schema
      (images under ``out_dir``) and returns them; deterministic in ``seed``.
    - ``question(sample)`` is the question text shown in the ``vcot``/``notool`` modes (options
      included); ``direct_prompt(sample)`` the task's own official prompt for ``direct``.
    - ``score(reply, sample)`` extracts the answer from the final reply (``None`` when the episode
      ended without one) and compares it with the gold; pure.
    - ``breakdown(sample)`` names the categories a sample is reported under, e.g.
      ``{"category": "direct_attributes"}``.
    - ``chance_answers(sample)`` is the answer space the seeded chance baseline draws from.
    """

    name: str
    version: int
    description: str
    media_kind: MediaKind
    metric: MetricName
    subsets: tuple[str, ...]
    synthesize: Callable[[int, int, Path], list[Sample]]
    question: Callable[[Sample], str]
    direct_prompt: Callable[[Sample], str]
    score: Callable[[str | None, Sample], Scored]
    breakdown: Callable[[Sample], dict[str, str]]
    chance_answers: Callable[[Sample], Sequence[str]]
    prompt_modes: tuple[PromptMode, ...] = PROMPT_MODES
    scorer_params: dict[str, object] = field(default_factory=dict)

    def random_answer(self, sample: Sample, rng: random.Random) -> str:
        answers = list(self.chance_answers(sample))
        return rng.choice(answers) if answers else ""
