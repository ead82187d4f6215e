"""Crop IoU / coverage against target boxes and key-frame recall: pure arithmetic, table-driven."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.records import Observation, Sample, SampleScore, Trajectory, Turn
from harness.run.results import SampleRecord
from harness_leaderboards.analytics import (
    Box,
    Look,
    coverage,
    image_size,
    iou,
    look,
    look_stats,
    score_by_ops,
    target_boxes,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 1, 1), (0, 0, 1, 1), 1.0),
        ((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1), 0.0),  # touching corners
        ((0, 0, 0.5, 1), (0.25, 0, 0.75, 1), 1 / 3),
        ((0, 0, 1, 1), (0.25, 0.25, 0.75, 0.75), 0.25),
        ((0.1, 0.1, 0.2, 0.2), (0.6, 0.6, 0.9, 0.9), 0.0),
    ],
)
def test_iou(a: Any, b: Any, expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("targets", "crops", "expected"),
    [
        ([(0.4, 0.4, 0.5, 0.5)], [(0, 0, 1, 1)], 1.0),
        ([(0.4, 0.4, 0.5, 0.5)], [(0.45, 0, 1, 1)], 0.5),
        ([(0.4, 0.4, 0.5, 0.5)], [(0, 0, 0.1, 0.1)], 0.0),
        ([(0.4, 0.4, 0.5, 0.5)], [], 0.0),
        # two targets, one crop covering one of them: half the target area
        ([(0.1, 0.1, 0.2, 0.2), (0.8, 0.8, 0.9, 0.9)], [(0.05, 0.05, 0.3, 0.3)], 0.5),
        # overlapping crops are not double counted
        ([(0.0, 0.0, 0.4, 0.1)], [(0.0, 0.0, 0.2, 0.1), (0.1, 0.0, 0.2, 0.1)], 0.5),
        # two crops together cover what neither covers alone
        ([(0.0, 0.0, 0.4, 0.1)], [(0.0, 0.0, 0.2, 0.1), (0.2, 0.0, 0.4, 0.1)], 1.0),
    ],
)
def test_coverage(targets: Any, crops: Any, expected: float) -> None:
    assert coverage(targets, crops) == pytest.approx(expected)


def _sample(**kw: Any) -> Sample:
    base: dict[str, Any] = {
        "task": "vstar",
        "id": "0",
        "question": "q",
        "answer": "A",
        "media": ("img.png",),
        "metadata": {"target_boxes": [[40, 20, 20, 10]], "image_size": [200, 100]},
    }
    base.update(kw)
    return Sample(**base)


def _record(
    sample: Sample, crops: Sequence[Box] = (), frames: tuple[int, ...] = (), score: float = 1.0
) -> SampleRecord:
    turns = []
    for i, box in enumerate(crops):
        obs = Observation(kind="crop", tool="crop_image_normalized", text="", box_in_original=box)
        turns.append(Turn(index=i, reply="call", observation=obs))
    if frames:
        turns.append(
            Turn(
                index=len(turns),
                reply="call",
                observation=Observation(kind="frames", tool="select_frames", text="", frames=frames),
            )
        )
    turns.append(Turn(index=len(turns), reply="\\boxed{A}"))
    n_ops = len(crops) + (1 if frames else 0)
    traj = Trajectory(sample.task, sample.id, "vcot", "", "", tuple(turns), "answer", n_ops=n_ops)
    return SampleRecord(sample, traj, SampleScore(sample.task, sample.id, "accuracy", score, "A", ("A",)))


def test_target_boxes_are_fractions_of_the_image() -> None:
    assert target_boxes(_sample()) == [pytest.approx((0.2, 0.2, 0.3, 0.3))]


def test_image_size_falls_back_to_the_file_header(tmp_path: Path) -> None:
    Image.new("RGB", (64, 32)).save(tmp_path / "img.png")
    sample = _sample(root=str(tmp_path), metadata={"target_boxes": [[16, 8, 16, 8]]})
    assert image_size(sample) == (64, 32)
    assert target_boxes(sample) == [pytest.approx((0.25, 0.25, 0.5, 0.5))]
    assert (
        target_boxes(_sample(root=str(tmp_path / "nowhere"), metadata={"target_boxes": [[1, 1, 1, 1]]})) == []
    )


@pytest.mark.parametrize(
    ("crops", "expected"),
    [
        ([], Look()),  # no crop: nothing to judge
        ([(0.2, 0.2, 0.3, 0.3)], Look(iou=1.0, coverage=1.0)),
        ([(0.0, 0.0, 1.0, 1.0)], Look(iou=0.01, coverage=1.0)),
        ([(0.6, 0.6, 0.9, 0.9), (0.2, 0.2, 0.3, 0.3)], Look(iou=1.0, coverage=1.0)),  # best crop counts
        ([(0.25, 0.2, 0.3, 0.3)], Look(iou=0.5, coverage=0.5)),
    ],
)
def test_look_of_an_image_sample(crops: Any, expected: Look) -> None:
    got = look(_record(_sample(), crops))
    assert got.key_frame_recall is None
    assert (got.iou is None) == (expected.iou is None)
    if expected.iou is not None:
        assert got.iou == pytest.approx(expected.iou)
        assert got.coverage == pytest.approx(expected.coverage)


@pytest.mark.parametrize(("frames", "recall"), [((6, 7), 1.0), ((6, 1), 0.5), ((1, 2), 0.0), ((), None)])
def test_key_frame_recall(frames: tuple[int, ...], recall: float | None) -> None:
    video = _sample(task="mvbench", media_kind="video", metadata={"key_frames": [6, 7]})
    assert look(_record(video, frames=frames)).key_frame_recall == recall


def test_look_stats_average_over_defined_samples_only() -> None:
    records = [
        _record(_sample(id="0"), [(0.2, 0.2, 0.3, 0.3)]),
        _record(_sample(id="1"), [(0.6, 0.6, 0.9, 0.9)]),
        _record(_sample(id="2")),  # no crop: left out
        _record(_sample(id="3", metadata={}), [(0, 0, 1, 1)]),  # no target: left out
    ]
    stats = look_stats(records)["vstar"]
    assert stats == {"crop_iou": 0.5, "crop_coverage": 0.5, "look_hit_rate": 0.5, "looked_n": 2.0}
    assert look_stats([_record(_sample())]) == {"vstar": {}}  # never NaN


def test_score_by_ops() -> None:
    records = [
        _record(_sample(id="0"), [], score=1.0),
        _record(_sample(id="1"), [], score=0.0),
        _record(_sample(id="2"), [(0, 0, 1, 1)], score=1.0),
    ]
    assert score_by_ops(records) == {"vstar": {0: (0.5, 2), 1: (1.0, 1)}}
