from __future__ import annotations

import dataclasses
import json

import pytest

from harness.records import (
    MetricValue,
    Observation,
    RunResult,
    Sample,
    SampleScore,
    TaskResult,
    ToolCall,
    Trajectory,
    Turn,
)

SAMPLE = Sample(
    task="vstar",
    id="q1",
    question="What colour is the cup?",
    answer="B",
    media=("img/1.jpg",),
    options=("red", "blue"),
    category="direct_attributes",
    metadata={"target_boxes": [[1, 2, 3, 4]], "nested": {"a": [1, 2]}},
)
CALL = ToolCall(name="crop_image_normalized", arguments={"bbox_2d": [0.1, 0.2, 0.3, 0.4], "target_image": 1})
OBS = Observation(
    kind="crop",
    tool="crop_image_normalized",
    text="\nHere is the cropped image (Image Size: 300x200):",
    source_image=1,
    box=(10, 20, 30, 40),
    box_norm=(0.1, 0.2, 0.3, 0.4),
    box_in_original=(0.1, 0.2, 0.3, 0.4),
    size=(300, 200),
    images=(2,),
    saved=("crops/a.png",),
)
TURN = Turn(
    index=0, reply="<tool_call>...</tool_call>", tool_call=CALL, observation=OBS, prompt_tokens=5, seconds=0.5
)
TRAJ = Trajectory(
    task="vstar",
    sample_id="q1",
    prompt_mode="vcot",
    system="sys",
    prompt="p",
    turns=(TURN, Turn(index=1, reply="\\boxed{B}")),
    end_reason="answer",
    final_reply="\\boxed{B}",
    n_ops=1,
)
SCORE = SampleScore(
    task="vstar",
    sample_id="q1",
    metric="accuracy",
    score=1.0,
    extracted="B",
    gold=("B",),
    breakdown={"category": "x"},
)
TASK = TaskResult(
    task="vstar",
    version=1,
    metric="accuracy",
    value=0.5,
    stderr=0.1,
    n=2,
    breakdown={"category": {"x": MetricValue(0.5, 0.1, 2)}},
    tool_stats={"ops_per_sample": 1.0},
)
RUN = RunResult(
    results={"vstar": TASK},
    config={"model": "scripted:oracle"},
    versions={"vstar": 1},
    packages={"pillow": "11"},
    seed=0,
    model="scripted:oracle",
    wall_seconds=1.5,
    created="2026-01-01T00:00:00+00:00",
)


@pytest.mark.parametrize(
    "record", [SAMPLE, CALL, OBS, TURN, TRAJ, SCORE, TASK, RUN], ids=lambda r: type(r).__name__
)
def test_json_round_trip(record: object) -> None:
    data = json.loads(json.dumps(record.to_dict()))  # type: ignore[attr-defined]
    assert type(record).from_dict(data) == record  # type: ignore[attr-defined]


@pytest.mark.parametrize("record", [SAMPLE, TRAJ, RUN], ids=lambda r: type(r).__name__)
def test_records_are_frozen(record: object) -> None:
    first = dataclasses.fields(record)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, first, "other")


def test_unknown_field_is_an_error() -> None:
    data = SAMPLE.to_dict() | {"colour": "red"}
    with pytest.raises(ValueError, match="colour"):
        Sample.from_dict(data)


def test_sample_key_and_used_tools() -> None:
    assert SAMPLE.key == "vstar/q1"
    assert TRAJ.used_tools
    assert not Trajectory("t", "i", "vcot", "", "", (), "answer").used_tools
