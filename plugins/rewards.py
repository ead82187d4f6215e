"""Curiosity-driven rewards and group-relative advantages (docs/reference.md section 3), as pure functions.

The correctness term is the harness's own eval scorer (:func:`harness.scoring.modes.score_trajectory`)
on the finished trajectory, forced to 0 when the episode ended right after a failed visual
operation. On top of it, per group of rollouts of one prompt (identified by an explicit group id,
never by position):

- ``paper``:    ``r = correct + alpha * 1[n_ops>0] * max(0, H - RaPR) + beta * min(N - n_ops, 0)``
- ``released``: for rollouts with ``n_ops > 0``:
  ``r = correct + c * max(H - RaPR, 0) / RaPR - beta * (n_ops - N)`` with ``c = c_image`` (0.25/2)
  or ``c_video`` (0.25/1.5); rollouts without ops get ``r = correct``.

``RaPR`` (rate of pixel-space reasoning) is the fraction of the group's rollouts with ``n_ops > 0``.

The defaults are the released code's (``experience_maker.py`` and ``replay_buffer.py`` of
TIGER-AI-Lab/Pixel-Reasoner): the ``released`` bonus form; a correctness term in {-1, 0, 1}
(``released_correctness``: -1 when the prediction does not parse, :mod:`harness.scoring.compat`); a
group dropped when the mean absolute deviation of its rewards is below 0.01
(``GroupFilter("mad", 0.01)``), and the kept rollouts repeated in a seeded shuffle to refill
the collection (:func:`refill_order`, the released ``active_sampling``). The paper's forms are
one key away: ``form="paper"``, binary eval-scorer correctness, ``GroupFilter("equal")``.
Nothing here imports torch.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.records import MediaKind, Sample, Trajectory
from harness.scoring.modes import DEFAULT_MODE, ScoringMode, official, score_trajectory
from harness.task import TaskSpec

RewardForm = Literal["paper", "released"]
REWARD_FORMS: tuple[RewardForm, ...] = ("paper", "released")
Correctness = Literal["released", "binary"]
FilterRule = Literal["mad", "equal"]


@dataclass(frozen=True, slots=True)
class CuriosityConfig:
    """Constants of the curiosity reward; the defaults are the released code's."""

    form: RewardForm = "released"
    H: float = 0.3
    alpha: float = 0.5
    beta: float = 0.05
    N: int = 1
    c_image: float = 0.25 / 2.0
    c_video: float = 0.25 / 1.5

    def __post_init__(self) -> None:
        if self.form not in REWARD_FORMS:
            raise ValueError(f"unknown reward form {self.form!r}; expected one of {REWARD_FORMS}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the reward needs from one finished rollout."""

    group: Hashable
    correct: float
    n_ops: int
    last_op_failed: bool = False
    media_kind: MediaKind = "image"


@dataclass(frozen=True, slots=True)
class RewardParts:
    """One rollout's reward, split into its terms (``total`` is their sum)."""

    correctness: float
    curiosity: float
    efficiency: float
    rapr: float

    @property
    def total(self) -> float:
        return self.correctness + self.curiosity + self.efficiency


def correctness_term(correct: float, last_op_failed: bool) -> float:
    """The correctness, with a *correct* answer forced to 0 when the episode ended right after a
    failed operation (released: ``if this_r > 0.5 and final_is_error_vo: this_r = 0``; a -1 stays)."""
    return 0.0 if last_op_failed and correct > 0.5 else float(correct)


def curiosity_bonus(n_ops: int, rapr: float, media_kind: MediaKind, config: CuriosityConfig) -> float:
    """The bonus for a rollout that used tools while its group rarely did (0 without ops)."""
    if n_ops <= 0:
        return 0.0
    if config.form == "paper":
        return config.alpha * max(0.0, config.H - rapr)
    c = config.c_video if media_kind == "video" else config.c_image
    return c * max(config.H - rapr, 0.0) / rapr  # rapr > 0 here: this rollout has ops


def efficiency_penalty(n_ops: int, config: CuriosityConfig) -> float:
    """The (non-positive in the published settings) term for using more than ``N`` operations."""
    if config.form == "paper":
        return config.beta * min(config.N - n_ops, 0)
    return -config.beta * (n_ops - config.N) if n_ops > 0 else 0.0


def group_rates(outcomes: Sequence[Outcome]) -> dict[Hashable, float]:
    """RaPR of each group id: the fraction of its rollouts with ``n_ops > 0``."""
    counts: dict[Hashable, list[int]] = {}
    for o in outcomes:
        c = counts.setdefault(o.group, [0, 0])
        c[0] += o.n_ops > 0
        c[1] += 1
    return {g: used / total for g, (used, total) in counts.items()}


def rewards(outcomes: Sequence[Outcome], config: CuriosityConfig = CuriosityConfig()) -> list[RewardParts]:  # noqa: B008
    """The reward parts of every rollout, each judged against its own group's RaPR."""
    rates = group_rates(outcomes)
    out = []
    for o in outcomes:
        rapr = rates[o.group]
        out.append(
            RewardParts(
                correctness=correctness_term(o.correct, o.last_op_failed),
                curiosity=curiosity_bonus(o.n_ops, rapr, o.media_kind, config),
                efficiency=efficiency_penalty(o.n_ops, config),
                rapr=rapr,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """Which groups carry no learning signal and are dropped.

    - ``mad`` (released): the mean absolute deviation of the group's rewards from their mean is
      below ``threshold`` (0.01): ``np.mean([abs(x - mean) for x in rewards]) < 0.01``.
    - ``equal`` (paper: "groups whose rewards are all equal"): max - min <= ``threshold``
      (use a tiny threshold such as 1e-9).
    """

    rule: FilterRule = "mad"
    threshold: float = 0.01

    def __post_init__(self) -> None:
        if self.rule not in ("mad", "equal"):
            raise ValueError(f"unknown group filter {self.rule!r}; expected 'mad' or 'equal'")
        if self.threshold < 0:
            raise ValueError(f"group filter threshold must be >= 0, got {self.threshold}")

    def drops(self, rewards: Sequence[float]) -> bool:
        """Whether a group with these rewards is dropped."""
        if self.rule == "equal":
            return max(rewards) - min(rewards) <= self.threshold
        mean = sum(rewards) / len(rewards)
        return sum(abs(r - mean) for r in rewards) / len(rewards) < self.threshold


PAPER_FILTER = GroupFilter("equal", 1e-9)


def group_advantages(
    values: Sequence[float], groups: Sequence[Hashable], group_filter: GroupFilter = PAPER_FILTER
) -> list[float | None]:
    """Reward minus its group's mean (no division by std); ``None`` for every rollout of a group
    that ``group_filter`` drops (by default the paper's: rewards all equal)."""
    if len(values) != len(groups):
        raise ValueError(f"{len(values)} rewards for {len(groups)} group ids")
    members: dict[Hashable, list[float]] = {}
    for v, g in zip(values, groups, strict=True):
        members.setdefault(g, []).append(float(v))
    means = {g: sum(vs) / len(vs) for g, vs in members.items()}
    dropped = {g for g, vs in members.items() if group_filter.drops(vs)}
    return [None if g in dropped else float(v) - means[g] for v, g in zip(values, groups, strict=True)]


def refill_order(kept: int, total: int, seed: int) -> list[int]:
    """Indices into the ``kept`` rollouts that refill a collection of ``total`` (released
    ``active_sampling``): every kept rollout ``total // kept`` times, each pass in a fresh shuffle,
    then the first ``total % kept`` of one more shuffle. Empty when nothing was kept."""
    if kept <= 0:
        return []
    rng = random.Random(seed)
    base = list(range(kept))
    order: list[int] = []
    for _ in range(total // kept):
        rng.shuffle(base)
        order += base
    if total % kept:
        rng.shuffle(base)
        order += base[: total % kept]
    return order


def released_correctness(sample: Sample, trajectory: Trajectory) -> float:
    """The released ``rule_reward`` result on the decoded transcript: 1.0, 0.0, or -1.0 when the
    prediction does not parse (:func:`harness.scoring.compat.pixel_reasoner_result`; the gold is a
    Pixel-Reasoner row's own ``answer`` when there is one, else the sample's golds)."""
    from harness.scoring.compat import pixel_reasoner_gold, pixel_reasoner_result, released_transcript

    text = released_transcript(trajectory)
    return pixel_reasoner_result(text, pixel_reasoner_gold(sample)) if text else -1.0


def outcome_of(
    spec: TaskSpec,
    sample: Sample,
    trajectory: Trajectory,
    group: Hashable,
    mode: ScoringMode = official,
    mode_name: str = DEFAULT_MODE,
    correctness: Correctness = "binary",
) -> Outcome:
    """An :class:`Outcome` whose ``correct`` is the eval scorer's score of ``trajectory``
    (``binary``), or the released {-1, 0, 1} rule (``released``)."""
    if correctness == "released":
        correct = released_correctness(sample, trajectory)
    elif correctness == "binary":
        correct = score_trajectory(spec, sample, trajectory, mode, mode_name).score
    else:
        raise ValueError(f"unknown correctness {correctness!r}; expected 'released' or 'binary'")
    return Outcome(
        group=group,
        correct=correct,
        n_ops=trajectory.n_ops,
        last_op_failed=trajectory.last_op_failed,
        media_kind=sample.media_kind,
    )
