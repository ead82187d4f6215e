"""Report plots with matplotlib (Agg backend), returned as PNG bytes for embedding.

- :func:`scores_plot`: headline metric per task per model (bars with standard-error whiskers).
- :func:`ops_histogram`: how many tool calls each sample made, per task and model.
- :func:`score_vs_ops`: the mean score of samples grouped by their number of tool calls.
- :func:`training_plot`: reward parts and accuracy over training steps, from a trainer log.

Each function returns ``None`` when it has nothing to draw. Output is deterministic (no date in
the PNG metadata), so a report is a pure function of its inputs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_METADATA: dict[str, Any] = {"Software": None}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, metadata=PNG_METADATA)
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, *, width: float = 4.2, height: float = 3.0) -> tuple[Figure, list[Axes]]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def scores_plot(frame: pd.DataFrame) -> bytes | None:
    """Grouped bars: x = task column, one bar per model, whiskers = standard error (x 100)."""
    if frame.empty:
        return None
    models = list(dict.fromkeys(frame["model"]))
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
        ax.bar(xs, ys, width=width, yerr=es, capsize=3, label=str(model))
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylim(0, 105)
    ax.set_ylabel("headline metric x 100")
    ax.set_title("Score per task (measured)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(3, len(models)))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def ops_histogram(ops: Mapping[str, Mapping[str, Sequence[int]]]) -> bytes | None:
    """``ops[model][task]`` = tool calls per sample; one panel per task, bars side by side."""
    tasks = sorted({t for per in ops.values() for t in per})
    if not tasks:
        return None
    models = list(ops)
    fig, axes = _grid(len(tasks))
    width = 0.8 / max(1, len(models))
    for ax, task in zip(axes, tasks, strict=True):
        top = max((max(v, default=0) for per in ops.values() for v in [per.get(task, [])]), default=0)
        for i, model in enumerate(models):
            counts = list(ops[model].get(task, []))
            if not counts:
                continue
            share = [counts.count(k) / len(counts) for k in range(top + 1)]
            ax.bar([k - 0.4 + width * (i + 0.5) for k in range(top + 1)], share, width=width, label=model)
        ax.set_xticks(range(top + 1))
        ax.set_title(task)
        ax.set_xlabel("tool calls per sample")
        ax.set_ylabel("share of samples")
        ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=7)
    return _png(fig)


def score_vs_ops(points: Mapping[str, Mapping[str, Mapping[int, tuple[float, int]]]]) -> bytes | None:
    """``points[model][task][n_ops]`` = (mean score, n): score x 100 against tool calls."""
    tasks = sorted({t for per in points.values() for t in per})
    if not tasks:
        return None
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        for model, per in points.items():
            series = per.get(task)
            if not series:
                continue
            xs = list(series)
            ax.plot(xs, [100.0 * series[x][0] for x in xs], marker="o", label=model)
            for x in xs:
                ax.annotate(f"n={series[x][1]}", (x, 100.0 * series[x][0]), fontsize=6, alpha=0.7)
        ax.set_title(task)
        ax.set_xlabel("tool calls per sample")
        ax.set_ylabel("score x 100")
        ax.set_ylim(-5, 105)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    return _png(fig)


def training_plot(name: str, steps: Mapping[str, Sequence[tuple[float, float]]]) -> bytes | None:
    """``steps[series]`` = [(step, value)]: reward parts on the left, accuracy on the right."""
    rewards = {k: v for k, v in steps.items() if "reward" in k.lower() and v}
    accuracy = {k: v for k, v in steps.items() if k not in rewards and v}
    if not rewards and not accuracy:
        return None
    fig, axes = _grid(2 if rewards and accuracy else 1, width=5.5, height=3.4)
    groups = [g for g in (("reward parts", rewards), ("accuracy", accuracy)) if g[1]]
    for ax, (title, series) in zip(axes, groups, strict=True):
        for key, values in sorted(series.items()):
            ax.plot([s for s, _ in values], [v for _, v in values], label=key)
        ax.set_title(f"{name}: {title}")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _png(fig)
