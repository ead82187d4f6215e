"""Report plots with matplotlib (Agg backend), returned as PNG bytes for embedding.

- :func:`scores_plot`: headline metric per task per model (bars with standard-error whiskers).
- :func:`ops_histogram`: how many tool calls each sample made, per task and model.
- :func:`score_vs_ops`: the mean score of samples grouped by their number of tool calls.
- :func:`end_reasons_plot`: how episodes ended (answered, no answer, a limit, an error) per run.
- :func:`training_plot`: loss, reward parts, RaPR, accuracy and learning rate over training steps.

Every plot names every run: one legend per figure (below the panels) listing all runs, even a
run with nothing to draw in some panel, in the colours of :func:`run_colors`, which the report
passes to every plot so that a run keeps its colour across the page. What a PNG labels is
written into it (a ``Labels`` text chunk, read back with :func:`labels_of`), so tests and the
HTML page can check it. Each function returns ``None`` when it has nothing to draw. Output is
deterministic (no date in the PNG metadata), so a report is a pure function of its inputs.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .report import png_labels  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_METADATA: dict[str, Any] = {"Software": None}
#: End reasons in display order, with their labels and colours.
END_REASONS: tuple[tuple[str, str, str], ...] = (
    ("answer", "answered", "#4c9a5b"),
    ("no_answer", "no answer", "#e0b040"),
    ("max_ops", "max ops", "#7b6fb0"),
    ("max_images", "max images", "#4f8fc0"),
    ("context", "context", "#a0a0a0"),
    ("error", "error", "#c8553d"),
)
#: Training-log panels: (title, y label). Series are assigned by :func:`harness_leaderboards.trainlog.panel_of`.
TRAINING_PANELS: tuple[tuple[str, str], ...] = (
    ("loss", "loss"),
    ("reward parts", "mean reward"),
    ("RaPR", "rate of pixel-space reasoning"),
    ("accuracy", "accuracy"),
    ("learning rate", "learning rate"),
)


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """One colour per run label, in order (tab10, then tab20 for more than 10 runs)."""
    names = list(dict.fromkeys(labels))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    n = cmap.N
    return {label: matplotlib.colors.to_hex(cmap(i % n)) for i, label in enumerate(names)}


def labels_of(png: bytes) -> list[str]:
    """The labels a plot's PNG says it shows (its legend entries and labelled rows)."""
    return png_labels(png)


def _png(fig: Figure, labels: Sequence[str], legend_rows: int = 0) -> bytes:
    buf = io.BytesIO()
    bottom = min(0.45, (0.25 + 0.22 * legend_rows) / fig.get_figheight()) if legend_rows else 0.0
    fig.tight_layout(rect=(0, bottom, 1, 1))
    metadata = {**PNG_METADATA, "Labels": json.dumps(list(labels))}
    fig.savefig(buf, format="png", dpi=100, metadata=metadata)
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, *, width: float = 4.2, height: float = 3.0, cols: int = 4) -> tuple[Figure, list[Axes]]:
    cols = min(n, cols)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _run_legend(fig: Figure, models: Sequence[str], colors: Mapping[str, str], kind: str) -> tuple[str, int]:
    """One legend below the panels naming every run; returns (title, rows)."""
    handles: list[Artist] = [
        Patch(color=colors[m]) if kind == "bar" else Line2D([], [], color=colors[m], marker="o")
        for m in models
    ]
    ncol = max(1, min(len(models), 3))
    fig.legend(handles, list(models), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    return "runs", math.ceil(len(models) / ncol)


def _colors(models: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    own = run_colors(models)
    return {m: (colors or {}).get(m, own[m]) for m in models}


def scores_plot(frame: pd.DataFrame, colors: Mapping[str, str] | None = None) -> bytes | None:
    """Grouped bars: x = task column, one bar per model, whiskers = standard error (x 100)."""
    if frame.empty:
        return None
    models = list(dict.fromkeys(str(m) for m in frame["model"]))
    palette = _colors(models, colors)
    cols = sorted(set(frame["column"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(cols) * max(1, len(models)) ** 0.5), 4.0))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        sub = frame[frame["model"] == model].set_index("column")
        xs, ys, es = [], [], []
        for j, col in enumerate(cols):
            if col in sub.index:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(100.0 * float(sub.loc[col, "value"]))
                es.append(100.0 * float(sub.loc[col, "stderr"] or 0.0))
        ax.bar(xs, ys, width=width, yerr=es, capsize=3, color=palette[model])
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylim(0, 105)
    ax.set_ylabel("headline metric x 100")
    ax.set_title("Score per task (measured)")
    ax.grid(axis="y", alpha=0.3)
    _, rows = _run_legend(fig, models, palette, "bar")
    return _png(fig, models, rows)


def ops_histogram(
    ops: Mapping[str, Mapping[str, Sequence[int]]], colors: Mapping[str, str] | None = None
) -> bytes | None:
    """``ops[model][task]`` = tool calls per sample; one panel per task, bars side by side."""
    tasks = sorted({t for per in ops.values() for t in per})
    if not tasks:
        return None
    models = list(ops)
    palette = _colors(models, colors)
    fig, axes = _grid(len(tasks))
    width = 0.8 / max(1, len(models))
    for ax, task in zip(axes, tasks, strict=True):
        top = max((max(v, default=0) for per in ops.values() for v in [per.get(task, [])]), default=0)
        for i, model in enumerate(models):
            counts = list(ops[model].get(task, []))
            if not counts:
                continue
            share = [counts.count(k) / len(counts) for k in range(top + 1)]
            xs = [k - 0.4 + width * (i + 0.5) for k in range(top + 1)]
            ax.bar(xs, share, width=width, color=palette[model])
        ax.set_xticks(range(top + 1))
        ax.set_title(task)
        ax.set_xlabel("tool calls per sample")
        ax.set_ylabel("share of samples")
        ax.set_ylim(0, 1.05)
    _, rows = _run_legend(fig, models, palette, "bar")
    return _png(fig, models, rows)


def score_vs_ops(
    points: Mapping[str, Mapping[str, Mapping[int, tuple[float, int]]]],
    colors: Mapping[str, str] | None = None,
) -> bytes | None:
    """``points[model][task][n_ops]`` = (mean score, n): score x 100 against tool calls."""
    tasks = sorted({t for per in points.values() for t in per})
    if not tasks:
        return None
    models = list(points)
    palette = _colors(models, colors)
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        for model, per in points.items():
            series = per.get(task)
            if not series:
                continue
            xs = sorted(series)
            ax.plot(xs, [100.0 * series[x][0] for x in xs], marker="o", color=palette[model])
            for x in xs:
                ax.annotate(f"n={series[x][1]}", (x, 100.0 * series[x][0]), fontsize=6, alpha=0.7)
        ax.set_title(task)
        ax.set_xlabel("tool calls per sample")
        ax.set_ylabel("score x 100")
        ax.set_ylim(-5, 105)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _, rows = _run_legend(fig, models, palette, "line")
    return _png(fig, models, rows)


def end_reasons_plot(ends: Mapping[str, Mapping[str, float]]) -> bytes | None:
    """``ends[model][reason]`` = share of samples: one stacked bar per run (the runs name the rows)."""
    models = [m for m, per in ends.items() if per]
    if not models:
        return None
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.45 * len(models)))
    ys = list(range(len(models)))[::-1]
    left = [0.0] * len(models)
    shown = []
    for reason, label, color in END_REASONS:
        widths = [100.0 * float(ends[m].get(reason, 0.0)) for m in models]
        if not any(widths):
            continue
        ax.barh(ys, widths, left=left, color=color, label=label, height=0.6)
        left = [a + b for a, b in zip(left, widths, strict=True)]
        shown.append(label)
    ax.set_yticks(ys, models)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of samples (all tasks)")
    ax.set_title("How episodes ended")
    ncol = max(1, min(len(shown), 6))
    fig.legend(loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    return _png(fig, [*models, *shown], math.ceil(len(shown) / ncol))


def training_plot(
    name: str, panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]]
) -> bytes | None:
    """``panels[panel][series]`` = [(step, value)]: one subplot per panel of :data:`TRAINING_PANELS`
    that has data (loss, reward parts, RaPR, accuracy, learning rate), integer steps on x."""
    groups = [(t, y, panels[t]) for t, y in TRAINING_PANELS if any(panels.get(t, {}).values())]
    if not groups:
        return None
    fig, axes = _grid(len(groups), width=4.6, height=3.2, cols=3)
    labels: list[str] = []
    for ax, (title, ylabel, series) in zip(axes, groups, strict=True):
        for key, values in sorted(series.items()):
            if not values:
                continue
            ax.plot([s for s, _ in values], [v for _, v in values], marker="." if len(values) < 30 else None,
                    label=key)  # fmt: skip
            labels.append(key)
        ax.set_title(f"{name}: {title}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _png(fig, labels)
