"""Leaderboard tables built with pandas from loaded runs (measured) and the published numbers.

The long table (:func:`results_frame`, one row per run x task, numbers as stored in
``results.json``: fractions 0-1) is what ``leaderboard.csv`` holds. The display sections scale
scores and rates to percent (as papers report them) and keep IoU / coverage as fractions.
Reference rows live in their own frame and section, labelled "reported by the authors"; they
are never pivoted together with measured rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.records import RunResult
from harness.sections import Cell, Estimate, Section

from .analytics import look_stats
from .load import LoadedRun, task_columns
from .reference import REFERENCE_COLUMNS, REFERENCE_ROWS, column_key

MEASURED = "measured"
TOOL_STATS = (
    "ops_per_sample",
    "pixel_reasoning_rate",
    "tool_error_rate",
    "score_with_tools",
    "score_without_tools",
)
LOOK_STATS = ("crop_iou", "crop_coverage", "look_hit_rate", "key_frame_recall")
FRAME_COLUMNS = (
    "source",
    "model",
    "run",
    "task",
    "column",
    "version",
    "metric",
    "scoring",
    "value",
    "stderr",
    "n",
    *TOOL_STATS,
    *LOOK_STATS,
)

# (column in the long frame, header, scale, digits) of the tool-use table.
TOOL_TABLE: tuple[tuple[str, str, float, int], ...] = (
    ("ops_per_sample", "ops / sample", 1.0, 2),
    ("pixel_reasoning_rate", "tool use %", 100.0, 1),
    ("tool_error_rate", "tool errors %", 100.0, 1),
    ("score_with_tools", "score with tools", 100.0, 1),
    ("score_without_tools", "score without tools", 100.0, 1),
    ("crop_iou", "crop IoU", 1.0, 3),
    ("crop_coverage", "target coverage", 1.0, 2),
    ("look_hit_rate", "looked right %", 100.0, 1),
    ("key_frame_recall", "key frames %", 100.0, 1),
)

BREAKDOWN_TITLES: dict[tuple[str, str], str] = {
    ("vstar", "category"): "V* categories",
    ("tallyqa", "subset"): "TallyQA simple / complex",
    ("infovqa", "answer_type"): "InfoVQA answer types",
    ("infovqa", "evidence"): "InfoVQA evidence",
    ("infovqa", "operation"): "InfoVQA operations",
    ("mvbench", "task"): "MVBench's 20 tasks",
}
TRANSPOSE_OVER = 8  # breakdowns with more categories than this list categories as rows


def _num(x: Any) -> float | None:
    """A finite float, or ``None`` (NaN, missing)."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _scaled(x: Any, scale: float) -> float | None:
    f = _num(x)
    return None if f is None else f * scale


def results_frame(runs: Sequence[LoadedRun]) -> pd.DataFrame:
    """One row per (run, task): headline metric, stderr, n, tool statistics, look statistics."""
    columns, _ = task_columns({r.label: r.result for r in runs})
    rows: list[dict[str, Any]] = []
    for run in runs:
        looks = look_stats(run.records) if run.records is not None else {}
        for task, tr in run.result.results.items():
            row: dict[str, Any] = {
                "source": MEASURED,
                "model": run.label,
                "run": str(run.path),
                "task": task,
                "column": columns[(run.label, task)],
                "version": tr.version,
                "metric": tr.metric,
                "scoring": str(tr.scorer.get("scoring", run.scoring)),
                "value": tr.value,
                "stderr": tr.stderr,
                "n": tr.n,
            }
            row.update({k: tr.tool_stats.get(k) for k in TOOL_STATS})
            row.update({k: looks.get(task, {}).get(k) for k in LOOK_STATS})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def reference_frame() -> pd.DataFrame:
    """The published numbers in the long format (fractions), ``source`` = reported by the authors."""
    rows = [
        {
            "source": ref.source,
            "model": ref.model,
            "run": ref.citation,
            "task": col.split(" ")[0],
            "column": col,
            "metric": "anls" if col == "infovqa" else "accuracy",
            "value": value / 100.0,
        }
        for ref in REFERENCE_ROWS
        for col, value in ref.scores.items()
    ]
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def _ordered(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def headline_section(frame: pd.DataFrame) -> Section:
    """Model x task: the headline metric x 100 with its standard error."""
    models = _ordered(frame["model"])
    cols = sorted(_ordered(frame["column"]), key=column_key)
    cells = {(str(r.model), str(r.column)): r for r in frame.itertuples(index=False)}
    rows: list[tuple[Cell, ...]] = []
    for model in models:
        row: list[Cell] = [model]
        for col in cols:
            r = cells.get((model, col))
            value = None if r is None else _scaled(r.value, 100.0)
            row.append(
                None if r is None or value is None else Estimate(value, _scaled(r.stderr, 100.0), int(r.n))
            )
        rows.append(tuple(row))
    metrics = frame.groupby("metric")["task"].agg(lambda s: ", ".join(sorted(set(s))))
    described = "; ".join(f"{'ANLS' if m == 'anls' else m} for {tasks}" for m, tasks in metrics.items())
    return Section(
        key="headline",
        title="Leaderboard: model x task",
        columns=("model", *cols),
        rows=tuple(rows),
        note=f"Measured from the run folders. Headline metric x 100 ± standard error ({described}).",
    )


def reference_section() -> Section:
    """The published numbers, labelled, in a table of their own."""
    rows = tuple(
        (ref.model, *(ref.scores.get(col) for col in REFERENCE_COLUMNS), f"{ref.source} ({ref.citation})")
        for ref in REFERENCE_ROWS
    )
    described = "; ".join(f"{col}: {what}" for col, what in REFERENCE_COLUMNS.items())
    return Section(
        key="reference",
        title="Reported by the authors (not measured here)",
        columns=("model", *REFERENCE_COLUMNS, "source"),
        rows=rows,
        note=f"Published numbers for comparison, not measured by this harness ({described}; empty = not recorded here).",
        source="reported",
    )


def tool_section(frame: pd.DataFrame) -> Section:
    """Model x task tool use: ops, tool-use and error rates, score with vs without tools, looks."""
    rows: list[tuple[Cell, ...]] = []
    ordered = frame.assign(_model=pd.Categorical(frame["model"], _ordered(frame["model"]), ordered=True))
    for r in ordered.sort_values(["_model", "column"]).itertuples(index=False):
        cells: list[Cell] = [str(r.model), str(r.column)]
        cells.extend(_scaled(getattr(r, col), scale) for col, _, scale, _ in TOOL_TABLE)
        rows.append(tuple(cells))
    return Section(
        key="tool_use",
        title="Tool use",
        columns=("model", "task", *(header for _, header, _, _ in TOOL_TABLE)),
        rows=tuple(rows),
        digits=(0, 0, *(d for _, _, _, d in TOOL_TABLE)),
        note=(
            "ops / sample: executed tool calls per sample; tool use: share of samples with at least one call "
            "(pixel-space reasoning); tool errors: failed calls / calls; score with / without tools: the headline "
            "metric x 100 over samples that did / did not call a tool. Where samples carry target boxes: crop IoU "
            "(best crop vs the target region), target coverage (share of target area inside a crop), looked right "
            "(coverage >= 0.5); for videos with key frames: key frames selected. Empty = not defined."
        ),
    )


# (end reason, header) of the end-reason table, in display order.
END_TABLE: tuple[tuple[str, str], ...] = (
    ("answer", "answered %"),
    ("no_answer", "no answer %"),
    ("max_ops", "max ops %"),
    ("max_images", "max images %"),
    ("context", "context %"),
    ("error", "error %"),
)


def end_shares(result: RunResult, task: str | None = None) -> dict[str, float]:
    """Share of samples per end reason (one task, or all tasks weighted by n); a reason the run
    did not record (``no_answer`` before it existed) is left out."""
    tasks = [result.results[task]] if task is not None else list(result.results.values())
    total = sum(tr.n for tr in tasks)
    shares: dict[str, float] = {}
    for reason, _ in END_TABLE:
        have = [tr for tr in tasks if f"end_{reason}" in tr.tool_stats]
        if total and len(have) == len(tasks):
            shares[reason] = sum(tr.tool_stats[f"end_{reason}"] * tr.n for tr in tasks) / total
    return shares


def end_section(results: Mapping[str, RunResult]) -> Section:
    """Model x task: how the episodes ended, in percent of samples."""
    columns, _ = task_columns(results)
    rows: list[tuple[Cell, ...]] = []
    for label, result in results.items():
        for task in sorted(result.results, key=lambda t: column_key(columns[(label, t)])):
            shares = end_shares(result, task)
            cells = [_scaled(shares.get(reason), 100.0) for reason, _ in END_TABLE]
            rows.append((label, columns[(label, task)], *cells))
    return Section(
        key="end_reasons",
        title="How episodes ended",
        columns=("model", "task", *(header for _, header in END_TABLE)),
        rows=tuple(rows),
        digits=(0, 0, *(1 for _ in END_TABLE)),
        note=(
            "answered: a final reply the task's extractor got an answer from; no answer: a final reply it got "
            "nothing from; max ops / max images / context: the episode hit that limit; error: the backend or "
            "the sample failed. Empty no answer: a run written before that reason existed (its replies "
            "without an answer are counted as answered)."
        ),
    )


def breakdown_sections(results: Mapping[str, RunResult]) -> list[Section]:
    """One table per task and breakdown key (V* categories, TallyQA subsets, ...), x 100 ± stderr."""
    columns, _ = task_columns(results)
    keys = sorted(
        {
            (columns[(label, task)], task, key)
            for label, rr in results.items()
            for task, tr in rr.results.items()
            for key in tr.breakdown
        }
    )
    sections = []
    for column, task, key in keys:
        cells: dict[tuple[str, str], Estimate] = {}
        for label, rr in results.items():
            tr = rr.results.get(task)
            if tr is None or columns[(label, task)] != column:
                continue
            for cat, mv in tr.breakdown.get(key, {}).items():
                cells[(label, cat)] = Estimate(mv.value * 100.0, mv.stderr * 100.0, mv.n)
        models = [label for label in results if any(m == label for m, _ in cells)]
        cats = sorted({c for _, c in cells})
        title = BREAKDOWN_TITLES.get((task, key), f"{task}: {key}")
        if column != task:
            title += f" ({column})"
        if len(cats) > TRANSPOSE_OVER:
            head, rows = (key, *models), [(c, *(cells.get((m, c)) for m in models)) for c in cats]
        else:
            head, rows = ("model", *cats), [(m, *(cells.get((m, c)) for c in cats)) for m in models]
        sections.append(
            Section(
                key=f"breakdown-{column}-{key}".replace(" ", "_"),
                title=title,
                columns=tuple(head),
                rows=tuple(tuple(r) for r in rows),
                note=f"{task} by {key}: metric x 100 ± standard error (hover a cell for n).",
            )
        )
    return sections
