from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.records import Sample, SampleScore, Trajectory, Turn
from harness.run.results import (
    RunDirError,
    SampleRecord,
    SamplesWriter,
    prepare_run_dir,
    read_samples,
    write_json_atomic,
)
from harness.scoring.aggregate import tool_stats


def _record(i: int, n_ops: int = 0, score: float = 1.0, n_errors: int = 0) -> SampleRecord:
    sample = Sample(task="vstar", id=f"s{i}", question="q", answer="A", media=("a.jpg",))
    turns = tuple(Turn(index=k, reply="r") for k in range(n_ops + 1))
    traj = Trajectory("vstar", f"s{i}", "vcot", "", "q", turns, "answer", "r", n_ops=n_ops, n_errors=n_errors)
    return SampleRecord(sample, traj, SampleScore("vstar", f"s{i}", "accuracy", score, "A", ("A",)))


def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with SamplesWriter(path) as w:
        for i in range(3):
            w.write(_record(i))
    assert [r.key for r in read_samples(path)] == ["vstar/s0", "vstar/s1", "vstar/s2"]
    assert read_samples(path)[1] == _record(1)


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with SamplesWriter(path) as w:
        w.write(_record(0))
    with path.open("a") as fh:
        fh.write(_record(1).to_json()[:40])
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r.key for r in read_samples(path)] == ["vstar/s0"]
    with pytest.warns(UserWarning):
        read_samples(path, repair=True)
    assert path.read_text().count("\n") == 1 and path.read_text().endswith("\n")


def test_duplicate_keys_keep_first(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with SamplesWriter(path) as w:
        w.write(_record(0, score=1.0))
        w.write(_record(0, score=0.0))
    with pytest.warns(UserWarning, match="duplicate"):
        recs = read_samples(path)
    assert len(recs) == 1 and recs[0].score.score == 1.0


def test_malformed_middle_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"not": "a record"}\n' + _record(0).to_json() + "\n")
    with pytest.raises(RunDirError, match=r"samples.jsonl:1"):
        read_samples(path)


def test_existing_run_needs_resume_and_matching_config(tmp_path: Path) -> None:
    assert prepare_run_dir(tmp_path, {"model": "a", "seed": 1}, resume=False) == []
    with SamplesWriter(tmp_path / "samples.jsonl") as w:
        w.write(_record(0))
    with pytest.raises(RunDirError, match="--resume"):
        prepare_run_dir(tmp_path, {"model": "a", "seed": 1}, resume=False)
    with pytest.raises(RunDirError, match="seed differs"):
        prepare_run_dir(tmp_path, {"model": "a", "seed": 2}, resume=True)
    done = prepare_run_dir(tmp_path, {"model": "a", "seed": 1, "limit": 50}, resume=True)
    assert [r.key for r in done] == ["vstar/s0"]
    assert json.loads((tmp_path / "run_config.json").read_text())["limit"] == 50


def test_tool_stats() -> None:
    recs = [
        _record(0, n_ops=2, score=1.0, n_errors=1),
        _record(1, n_ops=0, score=0.0),
        _record(2, n_ops=1, score=0.0),
    ]
    stats = tool_stats([(r.trajectory, r.score) for r in recs])
    assert stats["ops_per_sample"] == pytest.approx(1.0)
    assert stats["pixel_reasoning_rate"] == pytest.approx(2 / 3)
    assert stats["tool_error_rate"] == pytest.approx(1 / 3)
    assert stats["score_with_tools"] == pytest.approx(0.5)
    assert stats["score_without_tools"] == 0.0
    assert stats["turns_per_sample"] == pytest.approx(2.0)
    assert stats["end_answer"] == 1.0
    assert "score_with_tools" not in tool_stats([(recs[1].trajectory, recs[1].score)])


def test_results_json_is_strict(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "r.json", {"a": math.nan, "b": [1.0, math.inf], "c": {"d": 0.5}})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [1.0, None], "c": {"d": 0.5}}
