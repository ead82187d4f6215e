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
            lambda: plots.training_plot(
                "run",
                {"reward parts": {"reward": [(1, 0.1), (2, 0.3)]}, "accuracy": {"accuracy": [(1, 0.2)]}},
            ),
            lambda: plots.training_plot("run", {}),
        ),
        (
            lambda: plots.end_reasons_plot({"a": {"answer": 0.5, "no_answer": 0.5}, "b": {"error": 1.0}}),
            lambda: plots.end_reasons_plot({"a": {}}),
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
        "loss": [(1.0, 1.0)],
        "reward": [(1.0, 0.2), (2.0, 0.4)],
        "rewards/curiosity/mean": [(1.0, 0.1), (2.0, 0.05)],
    }


@pytest.mark.parametrize("content", ["", "{not json", json.dumps([{"step": 1, "grad_norm": 0.3}])])
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


# -- every plot labels every run, in one colour per run ------------------------------------------

RUNS = ("scripted:oracle", "scripted:random", "hf:@tiny")


def test_run_plots_name_every_run_even_one_missing_from_a_panel() -> None:
    colors = plots.run_colors(RUNS)
    ops = {"scripted:oracle": {"vstar": [1, 1], "mvbench": [1]}, "scripted:random": {"vstar": [0, 1]},
           "hf:@tiny": {"mvbench": [0]}}  # fmt: skip
    points = {m: {t: {v[0]: (0.5, len(v))} for t, v in per.items()} for m, per in ops.items()}
    frame = pd.DataFrame([{"model": m, "column": "vstar", "value": 0.5, "stderr": 0.1} for m in RUNS])
    ends = {m: {"answer": 0.5, "no_answer": 0.5} for m in RUNS}
    for png in (
        plots.scores_plot(frame, colors),
        plots.ops_histogram(ops, colors),
        plots.score_vs_ops(points, colors),
        plots.end_reasons_plot(ends),
    ):
        assert png is not None
        assert set(RUNS) <= set(plots.labels_of(png))


def test_run_colours_are_stable_and_distinct() -> None:
    colors = plots.run_colors(RUNS)
    assert len(set(colors.values())) == 3
    assert plots.run_colors([*RUNS, "other"])["hf:@tiny"] == colors["hf:@tiny"]
    assert len(set(plots.run_colors([f"r{i}" for i in range(20)]).values())) == 20


def test_report_plots_all_label_every_run(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    report = build_report([str(scripted_runs["oracle"]), str(scripted_runs["random"])])
    assert {p.key for p in report.plots} == {"scores", "ops_histogram", "score_vs_ops", "end_reasons"}
    for plot in report.plots:
        assert {"scripted:oracle", "scripted:random"} <= set(plot.labels()), plot.key


@pytest.mark.parametrize(
    ("key", "panel"),
    [
        ("loss", "loss"),
        ("eval_loss", "loss"),
        ("reward", "reward parts"),
        ("reward_correctness", "reward parts"),
        ("rewards/curiosity/mean", "reward parts"),
        ("rewards/curiosity/std", None),
        ("reward_std", None),
        ("pixel_reasoning_rate", "RaPR"),
        ("accuracy", "accuracy"),
        ("mean_token_accuracy", "accuracy"),
        ("learning_rate", "learning rate"),
        ("lr", "learning rate"),
        ("grad_norm", None),
        ("epoch", None),
    ],
)
def test_training_log_panels(key: str, panel: str | None) -> None:
    from harness_leaderboards.trainlog import panel_of

    assert panel_of(key) == panel


def test_sft_and_grpo_logs_plot_loss_rewards_rapr_and_learning_rate(tmp_path: Path) -> None:
    from harness_leaderboards.trainlog import by_panel

    sft = [
        {"step": s, "loss": 2.0 / s, "learning_rate": 1e-5, "mean_token_accuracy": 0.1 * s} for s in (1, 2)
    ]
    grpo = [{"step": s, "reward": 0.1, "reward_curiosity": 0.02, "pixel_reasoning_rate": 0.4, "loss": 0.1,
             "lr": 1e-6, "accuracy": 0.3} for s in (1, 2, 3)]  # fmt: skip
    for name, entries, panels in (
        ("sft", sft, ["loss", "accuracy", "learning rate"]),
        ("grpo", grpo, ["loss", "reward parts", "RaPR", "accuracy", "learning rate"]),
    ):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in entries))
        grouped = by_panel(read_training_log(path))
        assert sorted(grouped) == sorted(panels)
        png = plots.training_plot(name, grouped)
        assert png is not None and "loss" in plots.labels_of(png)
