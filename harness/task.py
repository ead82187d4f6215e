"""TaskSpec: everything the core needs to know about one benchmark.

A task module (a built-in in ``tasks/``, or any plugin) builds one frozen ``TaskSpec`` from small
functions and returns it from the ``harness_register_tasks`` hook. Changing a prompt, an extractor or a metric
must bump ``version``: results of different versions are never silently merged.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.records import MediaKind, Sample, SampleScore

if TYPE_CHECKING:
    from harness.data.hub import HubOptions

PromptMode = Literal["vcot", "notool", "official"]
PROMPT_MODES: tuple[PromptMode, ...] = ("vcot", "notool", "official")
#: The headline metric's name: any name a task declares (``"accuracy"``, ``"anls"``, ...).
MetricName = str
#: An extra ``--data KIND:ARG`` source of a task: ``ARG`` -> the task's samples.
SourceReader = Callable[[str], list[Sample]]


@dataclass(frozen=True, slots=True)
class Scored:
    """Result of a task's scorer on one final reply."""

    score: float
    extracted: str | None


@dataclass(frozen=True, slots=True)
class CorpusMetric:
    """A statistic over all of a task's scores that is not a mean of per-sample values (e.g.
    an RMSE of counts). ``compute`` gets the task's scores; a standard error is taken
    from lm-eval's bootstrap (:func:`harness.scoring.aggregate.bootstrap_stderr`)."""

    name: str
    compute: Callable[[Sequence[SampleScore]], float]
    higher_is_better: bool


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A benchmark.

    - ``metric`` names the headline metric, the mean of the per-sample scores;
      ``higher_is_better`` says which way it improves (stored with every result, so reports,
      merges and rescores read it from the files).
    - ``synthesize(n, seed, out_dir)`` writes ``n`` offline samples in the real data's schema
      (images under ``out_dir``) and returns them; deterministic in ``seed``. ``None`` when the
      task has no offline generator (``--data synthetic`` is then refused).
    - ``question(sample)`` is the question text shown in the ``vcot``/``notool`` modes (options
      included); ``official_prompt(sample)`` the task's own official prompt and answer format,
      shown in the ``official`` mode.
    - ``score(reply, sample)`` extracts the answer from the final reply (``None`` when the episode
      ended without one) and compares it with the gold; pure.
    - ``breakdown(sample)`` names the categories a sample is reported under, e.g.
      ``{"category": "direct_attributes"}``.
    - ``chance_answers(sample)`` is the answer space the seeded chance baseline draws from.
    - ``load_hub(options)`` loads the real benchmark from the Hugging Face Hub (``--data hub``);
      ``None`` when the task has no such source. ``hub_keys`` are the task's own
      ``--data hub:KEY=VALUE`` options, which it reads with ``options.option(KEY)``.
    - ``sources`` are the task's other data sources: ``{"parquet": read}`` makes
      ``--data parquet:PATH`` call ``read("PATH")`` (the built-in tasks read Pixel-Reasoner eval
      parquets this way, :mod:`harness_tasks.pixel_reasoner`).
    - ``corpus_metrics`` are statistics over all scores that are not means (e.g. an RMSE);
      their standard errors come from lm-eval's bootstrap.
    """

    name: str
    version: int
    description: str
    media_kind: MediaKind
    metric: MetricName
    subsets: tuple[str, ...]
    question: Callable[[Sample], str]
    official_prompt: Callable[[Sample], str]
    score: Callable[[str | None, Sample], Scored]
    breakdown: Callable[[Sample], dict[str, str]]
    chance_answers: Callable[[Sample], Sequence[str]]
    synthesize: Callable[[int, int, Path], list[Sample]] | None = None
    higher_is_better: bool = True
    prompt_modes: tuple[PromptMode, ...] = PROMPT_MODES
    scorer_params: dict[str, object] = field(default_factory=dict)
    load_hub: Callable[[HubOptions], list[Sample]] | None = None
    hub_keys: tuple[str, ...] = ()
    sources: Mapping[str, SourceReader] = field(default_factory=dict)
    corpus_metrics: tuple[CorpusMetric, ...] = ()

    def random_answer(self, sample: Sample, rng: random.Random) -> str:
        answers = list(self.chance_answers(sample))
        return rng.choice(answers) if answers else ""
