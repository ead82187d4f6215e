"""The curiosity reward table (docs/reference.md section 3), group advantages, and correctness == eval scorer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.loop.policy import Policy
from harness.loop.rollout import RolloutConfig, rollout
from harness.plugins import Harness
from harness.records import Sample
from harness_plugins.rewards import (
    CuriosityConfig,
    Outcome,
    curiosity_bonus,
    efficiency_penalty,
    group_advantages,
    group_rates,
    outcome_of,
    rewards,
)

PAPER = CuriosityConfig(form="paper")
RELEASED = CuriosityConfig(form="released")

# (form, media, RaPR, n_ops, expected curiosity, expected efficiency)
TABLE = [
    # paper: alpha * max(0, 0.3 - RaPR) for n_ops > 0; beta * min(1 - n_ops, 0)
    (PAPER, "image", 1 / 8, 0, 0.0, 0.0),
    (PAPER, "image", 1 / 8, 1, 0.5 * 0.175, 0.0),
    (PAPER, "image", 1 / 8, 3, 0.5 * 0.175, -0.1),
    (PAPER, "video", 1 / 8, 1, 0.5 * 0.175, 0.0),
    (PAPER, "image", 0.3, 1, 0.0, 0.0),
    (PAPER, "video", 0.3, 3, 0.0, -0.1),
    (PAPER, "image", 1.0, 0, 0.0, 0.0),
    (PAPER, "image", 1.0, 1, 0.0, 0.0),
    (PAPER, "video", 1.0, 3, 0.0, -0.1),
    # released: c * max(0.3 - RaPR, 0) / RaPR - 0.05 * (n_ops - 1) for n_ops > 0, else 0
    (RELEASED, "image", 1 / 8, 0, 0.0, 0.0),
    (RELEASED, "image", 1 / 8, 1, 0.175, 0.0),
    (RELEASED, "video", 1 / 8, 1, 0.175 * 4 / 3, 0.0),  # the published +0.233
    (RELEASED, "image", 1 / 8, 3, 0.175, -0.1),
    (RELEASED, "video", 1 / 8, 3, 0.175 * 4 / 3, -0.1),
    (RELEASED, "image", 2 / 8, 1, 0.025, 0.0),
    (RELEASED, "image", 3 / 8, 1, 0.0, 0.0),
    (RELEASED, "image", 0.3, 1, 0.0, 0.0),
    (RELEASED, "video", 0.3, 0, 0.0, 0.0),
    (RELEASED, "image", 1.0, 3, 0.0, -0.1),
    (RELEASED, "video", 1.0, 1, 0.0, 0.0),
]


@pytest.mark.parametrize(("config", "media", "rapr", "n_ops", "bonus", "penalty"), TABLE)
def test_reward_table(
    config: CuriosityConfig, media: str, rapr: float, n_ops: int, bonus: float, penalty: float
) -> None:
    assert curiosity_bonus(n_ops, rapr, media, config) == pytest.approx(bonus)  # type: ignore[arg-type]
    assert efficiency_penalty(n_ops, config) == pytest.approx(penalty)


@pytest.mark.parametrize(
    ("media", "used", "bonus"),
    [("image", 1, 0.175), ("video", 1, 0.2333), ("image", 2, 0.025), ("image", 3, 0.0)],
)
def test_released_worked_values_in_a_group_of_eight(media: str, used: int, bonus: float) -> None:
    outcomes = [Outcome("g", 1.0, 1 if k < used else 0, media_kind=media) for k in range(8)]  # type: ignore[arg-type]
    parts = rewards(outcomes, RELEASED)
    assert parts[0].rapr == used / 8
    assert parts[0].curiosity == pytest.approx(bonus, abs=5e-4)
    assert parts[0].total == pytest.approx(1.0 + bonus, abs=5e-4)
    assert parts[-1].total == 1.0  # no ops: r = correct


def test_constants_are_configurable() -> None:
    config = CuriosityConfig(form="paper", H=0.5, alpha=1.0, beta=0.1, N=2)
    assert curiosity_bonus(1, 0.25, "image", config) == pytest.approx(0.25)
    assert efficiency_penalty(2, config) == 0.0
    assert efficiency_penalty(4, config) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="unknown reward form"):
        CuriosityConfig(form="other")  # type: ignore[arg-type]


def test_correctness_forced_to_zero_after_a_failed_operation() -> None:
    parts = rewards([Outcome("g", 1.0, 1, last_op_failed=True), Outcome("g", 1.0, 1)])
    assert [p.correctness for p in parts] == [0.0, 1.0]


def test_groups_come_from_ids_not_positions() -> None:
    # interleaved groups: "a" has 1 of 2 using ops, "b" none
    outcomes = [Outcome("a", 0, 1), Outcome("b", 0, 0), Outcome("a", 0, 0), Outcome("b", 0, 0)]
    assert group_rates(outcomes) == {"a": 0.5, "b": 0.0}
    assert [p.rapr for p in rewards(outcomes)] == [0.5, 0.0, 0.5, 0.0]


@pytest.mark.parametrize(
    ("values", "groups", "expected"),
    [
        ([1.0, 0.0, 1.0, 1.0], ["a", "a", "b", "b"], [0.5, -0.5, None, None]),  # zero-variance group dropped
        ([1.0, 1.0], ["a", "a"], [None, None]),
        ([0.0, 2.0, 1.0, 1.0], ["x", "y", "x", "y"], [-0.5, 0.5, 0.5, -0.5]),  # interleaved ids
        ([1.175, 1.0, 0.0, 0.0], [7, 7, 7, 7], [1.175 - 0.54375, 1.0 - 0.54375, -0.54375, -0.54375]),
    ],
)
def test_group_advantages(values: list[float], groups: list[object], expected: list[float | None]) -> None:
    got = group_advantages(values, groups)  # type: ignore[arg-type]
    assert [None if g is None else round(g, 6) for g in got] == [
        None if e is None else round(e, 6) for e in expected
    ]


def test_group_advantages_length_mismatch() -> None:
    with pytest.raises(ValueError, match="group ids"):
        group_advantages([1.0], ["a", "b"])


@pytest.mark.parametrize("kind", ["oracle", "random"])
def test_correctness_equals_eval_scorer_on_recorded_trajectories(
    harness_instance: Harness,
    make_samples: Callable[..., list[Sample]],
    scripted_policy: Callable[[str], Policy],
    kind: str,
) -> None:
    spec = harness_instance.task("vstar")
    samples = make_samples("vstar", 6)
    records = list(
        rollout([(spec, s) for s in samples], scripted_policy(kind), harness_instance.tools, RolloutConfig())
    )
    assert records
    for rec in records:
        outcome = outcome_of(spec, rec.sample, rec.trajectory, group=rec.sample.id)
        assert outcome.correct == rec.score.score
        part = rewards([outcome])[0]
        assert part.correctness == (0.0 if rec.trajectory.last_op_failed else rec.score.score)
