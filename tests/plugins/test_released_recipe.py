"""Golden tests of the released Pixel-Reasoner training arithmetic, computed by hand from the
released code (``experience_maker.py``: rewards and the group's mean absolute deviation;
``replay_buffer.py``: the refill; ``models/loss.py`` + ``models/utils.py``: the clipped loss summed
and divided by 200), not from the harness's helpers. Every expected number below is written out
from that arithmetic."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from train_support import HAVE_TRAIN

from harness.records import Sample, Trajectory, Turn
from harness.task import TaskSpec
from harness_plugins.rewards import (
    CuriosityConfig,
    GroupFilter,
    Outcome,
    group_advantages,
    refill_order,
    released_correctness,
    rewards,
)

RELEASED = CuriosityConfig()  # the default is the released form
PAPER = CuriosityConfig(form="paper")
MAD = GroupFilter()  # released: mean |r - mean| < 0.01
EQUAL = GroupFilter("equal", 1e-9)


def _group(
    correct: list[float], ops: list[int], failed: list[bool] | None = None, media: str = "image"
) -> list[Outcome]:
    failed = failed or [False] * len(correct)
    return [Outcome("g", c, n, f, media) for c, n, f in zip(correct, ops, failed, strict=True)]  # type: ignore[arg-type]


# Each case: outcomes of one group of 8, the released rewards, advantages (None = dropped) under MAD.
GOLDEN = [
    pytest.param(
        # RaPR = 2/8: bonus 0.125 * (0.3 - 0.25) / 0.25 = 0.025 for the two rollouts with ops;
        # the 2-op rollout pays 0.05. Rewards sum to 2.0, mean 0.25; MAD = 4.55 / 8 > 0.01: kept.
        _group([1, 1, 0, -1, 0, 0, 1, 0], [1, 0, 0, 0, 2, 0, 0, 0]),
        [1.025, 1.0, 0.0, -1.0, -0.025, 0.0, 1.0, 0.0],
        [0.775, 0.75, -0.25, -1.25, -0.275, -0.25, 0.75, -0.25],
        id="mixed-with-minus-one",
    ),
    pytest.param(
        # all wrong, two zoom: rewards [0.025, 0.025, 0 x 6], mean 0.00625,
        # MAD = (2 * 0.01875 + 6 * 0.00625) / 8 = 0.009375 < 0.01: dropped (curiosity alone)
        _group([0] * 8, [1, 1, 0, 0, 0, 0, 0, 0]),
        [0.025, 0.025, 0, 0, 0, 0, 0, 0],
        [None] * 8,
        id="curiosity-only-dropped",
    ),
    pytest.param(
        # RaPR = 1: no bonus; one rollout with 2 ops pays 0.05: rewards [1 x 7, 0.95], mean 0.99375,
        # MAD = (7 * 0.00625 + 0.04375) / 8 = 0.0109375 >= 0.01: kept
        _group([1] * 8, [1] * 7 + [2]),
        [1.0] * 7 + [0.95],
        [0.00625] * 7 + [-0.04375],
        id="penalty-only-kept",
    ),
    pytest.param(
        # a correct answer right after a failed operation counts 0; a -1 stays -1 (released:
        # `if this_r > 0.5 and final_is_error_vo: this_r = 0.0`). RaPR = 3/8: no bonus.
        # Rewards [0, -1, 1, 0 x 5], mean 0, MAD = 2 / 8: kept
        _group([1, -1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0], [True, True] + [False] * 6),
        [0.0, -1.0, 1.0, 0, 0, 0, 0, 0],
        [0.0, -1.0, 1.0, 0, 0, 0, 0, 0],
        id="failed-last-op",
    ),
    pytest.param(
        # video, RaPR = 1/8: bonus (0.3 - 0.125) / 1.5 / 0.125 * 0.25 = 0.2333...; rewards
        # [1.2333, 1 x 7], mean 1.029166..., kept
        _group([1] * 8, [1] + [0] * 7, media="video"),
        [1 + 0.175 / 1.5 / 0.125 * 0.25] + [1.0] * 7,
        [(0.175 / 1.5 / 0.125 * 0.25) * 7 / 8] + [-(0.175 / 1.5 / 0.125 * 0.25) / 8] * 7,
        id="video-bonus",
    ),
]


@pytest.mark.parametrize(("outcomes", "expected_rewards", "expected_advantages"), GOLDEN)
def test_released_rewards_advantages_and_group_drop(
    outcomes: list[Outcome], expected_rewards: list[float], expected_advantages: list[float | None]
) -> None:
    got = [p.total for p in rewards(outcomes, RELEASED)]
    assert got == pytest.approx(expected_rewards, abs=1e-9)
    adv = group_advantages(got, [o.group for o in outcomes], MAD)
    assert [a is None for a in adv] == [e is None for e in expected_advantages]
    assert [a for a in adv if a is not None] == pytest.approx(
        [e for e in expected_advantages if e is not None], abs=1e-9
    )


def test_the_paper_filter_keeps_what_mad_drops() -> None:
    values = [0.025, 0.025, 0, 0, 0, 0, 0, 0]
    assert group_advantages(values, ["g"] * 8, MAD) == [None] * 8
    assert group_advantages(values, ["g"] * 8, EQUAL)[0] == pytest.approx(0.01875)
    assert group_advantages([0.3] * 8, ["g"] * 8, EQUAL) == [None] * 8


def test_mad_threshold_boundary() -> None:
    # two rollouts 0.02 apart: MAD = 0.01 exactly, not < 0.01: kept; 0.0199 apart: dropped
    assert group_advantages([0.0, 0.02], ["g", "g"], MAD) == pytest.approx([-0.01, 0.01])
    assert group_advantages([0.0, 0.0199], ["g", "g"], MAD) == [None, None]


def test_paper_form_differs_from_released_at_low_rapr() -> None:
    group = _group([1] + [0] * 7, [1] + [0] * 7)
    assert rewards(group, PAPER)[0].curiosity == pytest.approx(0.5 * 0.175)  # alpha * (H - RaPR)
    assert rewards(group, RELEASED)[0].curiosity == pytest.approx(0.175)  # c * (H - RaPR) / RaPR


@pytest.mark.parametrize(("kept", "total"), [(3, 8), (5, 16), (8, 8), (1, 4), (7, 3)])
def test_refill_repeats_every_kept_rollout_evenly(kept: int, total: int) -> None:
    order = refill_order(kept, total, seed=42)
    assert len(order) == total and set(order) <= set(range(kept))
    counts = Counter(order)
    # released active_sampling: total // kept full shuffled passes, then total % kept more
    expected = [total // kept + (1 if i < total % kept else 0) for i in range(kept)]
    assert sorted(counts.values()) == sorted(c for c in expected if c)
    assert order == refill_order(kept, total, seed=42)
    assert refill_order(0, total, seed=42) == []


def _trajectory(*replies: str) -> Trajectory:
    turns = tuple(Turn(index=i, reply=r) for i, r in enumerate(replies))
    return Trajectory("t", "1", "vcot", "", "", turns, "answer", final_reply=replies[-1])


@pytest.mark.parametrize(
    ("reply", "gold", "expected"),
    [
        ("So the answer is \\boxed{B}.", "B", 1.0),
        ("So the answer is \\boxed{C}.", "B", 0.0),
        ("The count is \\boxed{4}.", "4", 1.0),
        ("The count is \\boxed{5}.", "4", 0.0),
        ("I cannot tell.", "4", -1.0),  # nothing parses: -1, as released
        ("It is \\boxed{12%}", ["12%"], 1.0),
    ],
)
def test_released_correctness_is_ternary(reply: str, gold: Any, expected: float) -> None:
    sample = Sample("t", "1", "q", "x", ("x.png",), metadata={"pr_answer": gold})
    assert released_correctness(sample, _trajectory(reply)) == expected


needs_torch = pytest.mark.skipif(not HAVE_TRAIN, reason="needs torch")


@needs_torch
@pytest.mark.parametrize(
    ("ratio", "advantage", "expected"),
    [
        (1.5, 1.0, -1.35),  # clipped at 1 + 0.35
        (1.5, -1.0, 1.5),  # max(-r A, -clip(r) A) keeps the unclipped, larger loss
        (0.5, 1.0, -0.5),
        (0.5, -1.0, 0.8),  # clipped at 1 - 0.2
        (1.0, 0.3, -0.3),
    ],
)
def test_clipped_surrogate(ratio: float, advantage: float, expected: float) -> None:
    import torch

    from harness_plugins.curiosity_grpo import clipped_surrogate

    logp = torch.tensor([math.log(ratio) - 2.0])
    loss = clipped_surrogate(logp, torch.tensor([-2.0]), advantage, (0.2, 0.35))
    assert float(loss[0]) == pytest.approx(expected, abs=1e-6)


@needs_torch
@pytest.mark.parametrize(
    ("agg", "micro", "expected"),
    [
        # ratio 1, so each token's loss is -A; rollouts of 2, 3, 1 and 4 tokens with A = 0.5, -1,
        # 2, 0.25: token sum -1 + 3 - 2 - 1 = -1; 4 rollouts = 2 micro-batches of 2, 4 of 1, 1 of 8
        ("constant", 2, (-(0.5 * 2) - (-1.0 * 3) - (2.0 * 1) - (0.25 * 4)) / (200.0 * 2)),
        ("constant", 1, (-(0.5 * 2) - (-1.0 * 3) - (2.0 * 1) - (0.25 * 4)) / (200.0 * 4)),
        ("constant", 8, (-(0.5 * 2) - (-1.0 * 3) - (2.0 * 1) - (0.25 * 4)) / (200.0 * 1)),
        ("token_mean", 2, (-(0.5 * 2) - (-1.0 * 3) - (2.0 * 1) - (0.25 * 4)) / 10),
    ],
)
def test_loss_aggregation(agg: str, micro: int, expected: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Released: per micro-batch, token sum / 200; gradient accumulation averages micro-batches."""
    import types

    import torch

    import harness_plugins.curiosity_grpo as grpo
    import harness_plugins.grpo_loss as grpo_loss

    tokens = {"a": 2, "b": 3, "c": 1, "d": 4}
    params = {k: torch.zeros(n, requires_grad=True) for k, n in tokens.items()}
    monkeypatch.setattr(grpo_loss, "token_logps", lambda model, processor, roll: params[roll.group] - 1.0)
    rolls = []
    for key, n in tokens.items():
        roll = grpo.Rollout(None, key, None, None, None, [])  # type: ignore[arg-type]
        roll.encoded = types.SimpleNamespace(labels=torch.tensor([-100] + [1] * n))
        rolls.append(roll)
    batch = list(zip(rolls, [0.5, -1.0, 2.0, 0.25], strict=True))
    metrics = grpo.grpo_loss(None, None, batch, grpo.LossSpec((0.2, 0.35), agg, 200.0, micro))  # type: ignore[arg-type]
    assert metrics["loss"] == pytest.approx(expected, rel=1e-6)  # float32 token losses
    assert metrics["clipped_fraction"] == 0.0 and metrics["ratio_max_dev"] == 0.0
    denominator = {"constant": 200.0 * math.ceil(4 / micro), "token_mean": 10.0}[agg]
    assert float(params["a"].grad[0]) == pytest.approx(-0.5 / denominator)  # d(-A * ratio)/d logp


def test_task_spec_of_rl_rows_is_not_registered(harness_instance: Any) -> None:
    from harness_plugins.pr_data import RL_TASK

    assert isinstance(RL_TASK, TaskSpec) and RL_TASK.name not in harness_instance.tasks
