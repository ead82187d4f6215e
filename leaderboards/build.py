"""``harness leaderboard``: run folders in, leaderboard.{md,html,csv,json} (+ plots/) out.

:func:`build_report` is a pure function of the result files (and any training logs): it reads
every ``results.json`` (and its ``samples.jsonl`` for per-sample analytics and plots), builds
the tables with pandas, asks plugins for extra sections through
``harness_leaderboard_sections`` (the built-in breakdown tables come that way too), and draws
the plots. :func:`write_report` writes the files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.plugins import Harness
from harness.run.results import write_json_atomic
from harness.sections import Section

from . import plots as P
from .analytics import score_by_ops
from .html import to_html
from .load import Loaded, LoadedRun, ReportError, comparability_flags, load_runs, task_columns
from .report import TEST_DOUBLE_NOTE, Plot, Report, to_json, to_markdown, write_csv
from .tables import (
    end_section,
    end_shares,
    headline_section,
    reference_frame,
    reference_section,
    results_frame,
    tool_section,
)
from .trainlog import by_panel, read_training_log

TITLE = "pixel-harness leaderboard"
OUTPUTS = ("leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard.json")


def runs_section(runs: Sequence[LoadedRun]) -> Section:
    """Where every row comes from: folder, model, scoring, prompt, seed, task versions, time."""
    rows = tuple(
        (
            run.label,
            str(run.path),
            run.result.model,
            run.scoring,
            run.prompt_mode,
            run.result.seed,
            ", ".join(f"{t} v{v}" for t, v in sorted(run.result.versions.items())),
            "yes" if run.records is not None else "no",
            run.result.created,
        )
        for run in runs
    )
    return Section(
        key="runs",
        title="Runs",
        columns=(
            "model",
            "results file",
            "backend:model",
            "scoring",
            "prompt",
            "seed",
            "task versions",
            "samples read",
            "created",
        ),
        rows=rows,
        digits=0,
        note="The result files this report was built from (model rows below are named by the first column).",
    )


def _plots(runs: Sequence[LoadedRun], frame: pd.DataFrame) -> list[Plot]:
    out: list[Plot] = []
    colors = P.run_colors([r.label for r in runs])  # one colour per run on every plot of the page
    png = P.scores_plot(frame, colors)
    if png:
        out.append(
            Plot(
                "scores",
                "Score per task per model",
                png,
                "Measured headline metric x 100 ± stderr.",
                "headline",
            )
        )
    columns, _ = task_columns({r.label: r.result for r in runs})
    with_samples = [r for r in runs if r.records]
    ops = {
        r.label: {
            columns.get((r.label, t), t): [x.trajectory.n_ops for x in r.records or () if x.sample.task == t]
            for t in r.result.results
        }
        for r in with_samples
    }
    png = P.ops_histogram(ops, colors)
    if png:
        out.append(
            Plot(
                "ops_histogram",
                "Tool calls per sample",
                png,
                "Share of samples by number of executed tool calls.",
                "tool_use",
            )
        )
    points = {
        r.label: {columns.get((r.label, t), t): v for t, v in score_by_ops(r.records or ()).items()}
        for r in with_samples
    }
    png = P.score_vs_ops(points, colors)
    if png:
        out.append(
            Plot(
                "score_vs_ops",
                "Score against tool calls",
                png,
                "Mean score x 100 of the samples with each number of tool calls (n per point).",
                "tool_use",
            )
        )
    png = P.end_reasons_plot({r.label: end_shares(r.result) for r in runs})
    if png:
        out.append(
            Plot(
                "end_reasons",
                "How episodes ended",
                png,
                "Share of each run's samples (all tasks) by how the episode ended.",
                "end_reasons",
            )
        )
    return out


def _training_plots(logs: Sequence[str], loaded: Loaded) -> list[Plot]:
    out: list[Plot] = []
    for i, name in enumerate(logs):
        path = Path(name)
        try:
            series = read_training_log(path)
        except ValueError as exc:
            loaded.warn(f"{exc}; training plot left out")
            continue
        label = path.parent.name if path.name in ("trainer_state.json", "log.jsonl") else path.stem
        png = P.training_plot(label, by_panel(series))
        if png:
            out.append(
                Plot(
                    f"training-{i}",
                    f"Training: {label}",
                    png,
                    f"Loss, reward parts, RaPR, accuracy and learning rate per step, as logged ({path}).",
                )
            )
    return out


def build_report(
    run_args: Sequence[str],
    *,
    train_logs: Sequence[str] = (),
    harness: Harness | None = None,
    title: str = TITLE,
) -> Report:
    """Read the runs and build the report; bad runs become warnings (``ReportError`` if none)."""
    loaded = load_runs(run_args)
    runs = loaded.runs
    results = {r.label: r.result for r in runs}
    _, version_flags = task_columns(results)
    flags = [*version_flags, *comparability_flags(runs)]
    for flag in flags:
        loaded.warn(flag)
    frame = results_frame(runs)
    sections = [
        runs_section(runs),
        headline_section(frame),
        reference_section(),
        tool_section(frame),
        end_section(results),
        *(harness or Harness()).leaderboard_sections(results),
    ]
    plots = [*_plots(runs, frame), *_training_plots(train_logs, loaded)]
    notes = [TEST_DOUBLE_NOTE] if any(r.result.model.startswith("scripted:") for r in runs) else []
    both = pd.concat([frame, reference_frame()], ignore_index=True) if not frame.empty else reference_frame()
    return Report(
        title=title,
        sections=tuple(sections),
        plots=tuple(plots),
        warnings=tuple(w for w in loaded.warnings if w not in flags),
        flags=tuple(flags),
        notes=tuple(notes),
        frame=both,
    )


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} exists and is not a folder")


def write_report(report: Report, out: Path) -> list[Path]:
    """Write leaderboard.{md,html,csv,json} and plots/*.png into ``out``; return the paths."""
    _check_out(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    written = [out / name for name in OUTPUTS]
    for plot in report.plots:
        path = out / "plots" / f"{plot.key}.png"
        path.write_bytes(plot.png)
        written.append(path)
    (out / "leaderboard.md").write_text(to_markdown(report), encoding="utf-8")
    (out / "leaderboard.html").write_text(to_html(report), encoding="utf-8")
    write_csv(report, out / "leaderboard.csv")
    write_json_atomic(out / "leaderboard.json", json.loads(json.dumps(to_json(report))))
    return written


def leaderboard(
    run_args: Sequence[str], out: Path, *, train_logs: Sequence[str] = (), harness: Harness | None = None
) -> tuple[Report, list[Path]]:
    """Build and write a leaderboard (what ``harness leaderboard`` does)."""
    _check_out(out)
    report = build_report(run_args, train_logs=train_logs, harness=harness)
    return report, write_report(report, out)
