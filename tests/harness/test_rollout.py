from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import pytest

from harness.backends.scripted import boxed, tool_call_text
from harness.plugins import Harness
from harness.policy import Policy, Reply, Request
from harness.records import Sample
from harness.rollout import RolloutConfig, rollout, sample_seed

CROP = tool_call_text("crop_image_normalized", {"bbox_2d": [0.2, 0.2, 0.6, 0.6], "target_image": 1})


class Recorder:
    """Test double: a long episode for keys in ``long`` (3 crops), one-turn answers otherwise."""

    name = "recorder"

    def __init__(self, long: set[str]) -> None:
        self.long = long
        self.batches: list[list[str]] = []

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        self.batches.append([r.sample.id for r in requests])
        return [
            Reply(CROP) if r.sample.id in self.long and r.turn < 3 else Reply(boxed(r.sample.answer))
            for r in requests
        ]


def _items(harness: Harness, samples: list[Sample]) -> list[tuple[object, Sample]]:
    return [(harness.task(s.task), s) for s in samples]


def test_no_turn_barrier_finished_slots_refill_at_once(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    samples = make_samples("vstar", 4)
    ids = [s.id for s in samples]
    policy = Recorder(long={ids[0]})
    records = list(
        rollout(
            _items(harness_instance, samples), policy, harness_instance.tools, RolloutConfig(batch_size=2)
        )
    )
    # The long episode keeps its slot for 4 turns while short ones flow through the other slot.
    assert policy.batches == [[ids[0], ids[1]], [ids[0], ids[2]], [ids[0], ids[3]], [ids[0]]]
    assert [r.sample.id for r in records] == [ids[1], ids[2], ids[3], ids[0]]
    assert records[-1].trajectory.n_ops == 3
    assert all(r.score.score == 1.0 for r in records)


def test_results_do_not_depend_on_batch_size(
    harness_instance: Harness,
    make_samples: Callable[..., list[Sample]],
    scripted_policy: Callable[[str], Policy],
) -> None:
    samples = make_samples("vstar", 6) + make_samples("mvbench", 4)
    runs = []
    for batch in (1, 3, 16):
        conf = RolloutConfig(batch_size=batch, seed=7)
        recs = rollout(
            _items(harness_instance, samples), scripted_policy("random"), harness_instance.tools, conf
        )
        runs.append(sorted((r.key, r.trajectory.to_dict(), r.score.to_dict()) for r in recs))
    assert runs[0] == runs[1] == runs[2]


def test_sample_seed_is_stable() -> None:
    assert sample_seed(1, "vstar/a") == sample_seed(1, "vstar/a")
    assert sample_seed(1, "vstar/a") != sample_seed(2, "vstar/a")
    assert 0 <= sample_seed(123, "x") < 2**63


def test_broken_media_is_a_recorded_error_and_the_run_goes_on(
    harness_instance: Harness,
    make_samples: Callable[..., list[Sample]],
    scripted_policy: Callable[[str], Policy],
) -> None:
    good = make_samples("vstar", 2)
    missing = dataclasses.replace(good[0], id="missing", media=("nope.jpg",))
    escape = dataclasses.replace(good[0], id="escape", media=("../../etc/passwd",))
    recs = {
        r.sample.id: r
        for r in rollout(
            _items(harness_instance, [missing, escape, *good]),
            scripted_policy("oracle"),
            harness_instance.tools,
            RolloutConfig(),
        )
    }
    assert recs["missing"].trajectory.end_reason == "error"
    assert "media[0]" in (recs["missing"].trajectory.error or "")
    assert "escapes the data root" in (recs["escape"].trajectory.error or "")
    assert recs["missing"].score.score == 0.0
    assert all(recs[s.id].score.score == 1.0 for s in good)


def test_policy_returning_wrong_count_is_an_error(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    class Broken:
        name = "broken"

        def generate(self, requests: Sequence[Request]) -> list[Reply]:
            return []

    with pytest.raises(RuntimeError, match="returned 0 replies for 1"):
        list(
            rollout(
                _items(harness_instance, make_samples("vstar", 1)),
                Broken(),
                harness_instance.tools,
                RolloutConfig(),
            )
        )


def test_backend_error_reply_ends_only_that_episode(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    samples = make_samples("vstar", 2)

    class Flaky:
        name = "flaky"

        def generate(self, requests: Sequence[Request]) -> list[Reply]:
            return [
                Reply("CUDA out of memory", "error")
                if r.sample.id == samples[0].id
                else Reply(boxed(r.sample.answer))
                for r in requests
            ]

    recs = {
        r.sample.id: r
        for r in rollout(_items(harness_instance, samples), Flaky(), harness_instance.tools, RolloutConfig())
    }
    assert recs[samples[0].id].trajectory.end_reason == "error"
    assert recs[samples[0].id].score.score == 0.0
    assert recs[samples[1].id].score.score == 1.0
