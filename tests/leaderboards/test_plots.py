"""Plots are PNGs (or ``None`` when there is nothing to draw); training logs in the accepted formats."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness_leaderboards import plots
from harness_leaderboards.build import build_report
from harness_leaderboards.load import ReportWarning
from harness_leaderboards.trainlog import read_training_log

PNG = b"\x89PNG\r\n\x1a\n"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": "a", "column": "vstar", "value": 0.8, "stderr": 0.05},
            {"model": "b", "column": "vstar", "value": 0.4, "stderr": 0.05},
            {"model": "a", "column": "tallyqa", "value": 0.5, "stderr": 0.1},
        ]
    )


@pytest.mark.parametrize(
    ("draw", "empty"),
    [
        (lambda: plots.scores_plot(_frame()), lambda: plots.scores_plot(pd.DataFrame())),
        (
            lambda: plots.ops_histogram({"a": {"vstar": [0, 1, 1, 2]}, "b": {"vstar": [0, 0]}}),
            lambda: plots.ops_histogram({}),
        ),
        (
            lambda: plots.score_vs_ops({"a": {"vstar": {0: (0.5, 2), 1: (1.0, 3)}}}),
            lambda: plots.score_vs_ops({}),
        ),
        (
            lambda: plots.training_plot("run", {"reward": [(1, 0.1), (2, 0.3)], "accuracy": [(1, 0.2)]}),
            lambda: plots.training_plot("run", {}),
        ),
    ],
)
def test_plots_are_png_or_none(draw, empty) -> None:  # type: ignore[no-untyped-def]
    png = draw()
    assert png is not None and png.startswith(PNG) and len(png) > 2000
    assert empty() is None


def test_plots_are_deterministic() -> None:
    assert plots.scores_plot(_frame()) == plots.scores_plot(_frame())


LOG_ENTRIES = [
    {
        "step": 1,
        "reward": 0.2,
        "reward_std": 0.5,
        "rewards/curiosity/mean": 0.1,
        "rewards/curiosity/std": 0.0,
        "accuracy": 0.3,
        "loss": 1.0,
    },
    {"step": 2, "reward": 0.4, "rewards/curiosity/mean": 0.05, "accuracy": 0.5},
    {"epoch": 1.0},  # no step: ignored
]


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_text(json.dumps({"log_history": LOG_ENTRIES})),  # trainer_state.json
        lambda p: p.write_text(json.dumps(LOG_ENTRIES)),
        lambda p: p.write_text("\n".join(json.dumps(e) for e in LOG_ENTRIES) + "\n"),
    ],
)
def test_training_log_formats(tmp_path: Path, write) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "trainer_state.json"
    write(path)
    series = read_training_log(path)
    assert series == {
        "accuracy": [(1.0, 0.3), (2.0, 0.5)],
        "reward": [(1.0, 0.2), (2.0, 0.4)],
        "rewards/curiosity/mean": [(1.0, 0.1), (2.0, 0.05)],
    }


@pytest.mark.parametrize("content", ["", "{not json", json.dumps([{"step": 1, "loss": 0.3}])])
def test_unusable_training_logs_raise(tmp_path: Path, content: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=str(path)):
        read_training_log(path)


def test_training_plots_in_report_and_bad_logs_warn(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    good = tmp_path / "grpo" / "trainer_state.json"
    good.parent.mkdir()
    good.write_text(json.dumps({"log_history": LOG_ENTRIES}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope")
    with pytest.warns(ReportWarning, match="bad.jsonl"):
        report = build_report([str(scripted_runs["oracle"])], train_logs=[str(good), str(bad)])
    training = [p for p in report.plots if p.key.startswith("training")]
    assert [p.title for p in training] == ["Training: grpo"]
    assert str(bad) in " ".join(report.warnings)
