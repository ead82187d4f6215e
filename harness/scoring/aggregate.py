"""Aggregation: how per-sample scores become a task's numbers. The one module that does it.

A run, a shard, a merge of shards and a rescore all build their ``TaskResult`` here
(:func:`task_result`, through :func:`harness.run.evaluate.build_result`), so their files have the
same layout and the same numbers:

- the headline metric is the mean of the per-sample scores with lm-eval's closed-form standard
  error (:func:`aggregate`), per category too (:func:`breakdown`);
- a task's corpus metrics (statistics that are not means) get lm-eval's bootstrap standard error
  (:func:`bootstrap_stderr`);
- tool-use statistics summarise the trajectories (:func:`tool_stats`);
- records are taken in a canonical order (:func:`natural_key` of the sample ids), so the floats
  never depend on the order samples finished in.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar, get_args

from harness.records import EndReason, MetricValue, SampleRecord, SampleScore, TaskResult, Trajectory
from harness.task import TaskSpec

T = TypeVar("T")

BOOTSTRAP_ITERS = 1000


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value: ``"2" < "10"``, ``"a_9" < "a_10"``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def bootstrap_stderr(
    statistic: Callable[[Sequence[T]], float], items: Sequence[T], iters: int = BOOTSTRAP_ITERS
) -> float:
    """Standard error of ``statistic(items)`` by lm-eval's bootstrap (``lm_eval.api.metrics``).

    ``iters`` resamples with replacement in chunks of up to 1000, chunk ``i`` drawn with
    ``random.Random(i)``, then the sample standard deviation of the statistic over them: the
    same draws and numbers as ``lm_eval.api.metrics.bootstrap_stderr``, run in this process
    (lm-eval's entry point starts a process pool and prints). Deterministic; NaN for fewer than
    two items. lm-eval bootstraps only statistics that are not means; so do we (a mean gets
    the closed form, :func:`aggregate`).
    """
    if len(items) < 2:
        return math.nan
    from lm_eval.api.metrics import _bootstrap_internal, sample_stddev

    chunk = min(1000, iters)
    draws: list[float] = []
    for i in range(max(iters // chunk, 1)):
        draws.extend(_bootstrap_internal(statistic, chunk)((i, list(items))))
    return float(sample_stddev(draws))


def aggregate(values: Sequence[float]) -> MetricValue:
    """Mean, standard error of the mean (lm-eval's ``mean_stderr``: sample std / sqrt(n)) and n.

    The closed form is what lm-eval itself reports for a mean metric (``stderr_for_metric``
    bootstraps only other statistics, :func:`bootstrap_stderr`), so our stderr equals
    lm-eval's on the same scores.

    ``n == 1`` has stderr 0.0; no values give ``MetricValue(nan, nan, 0)``: an empty
    category is "unknown", never 0 and never perfect.
    """
    if not values:
        return MetricValue(value=math.nan, stderr=math.nan, n=0)
    from lm_eval.api.metrics import mean, mean_stderr

    floats = [float(v) for v in values]
    stderr = float(mean_stderr(floats)) if len(floats) > 1 else 0.0
    return MetricValue(value=float(mean(floats)), stderr=stderr, n=len(floats))


def breakdown(rows: Sequence[tuple[dict[str, str], float]]) -> dict[str, dict[str, MetricValue]]:
    """Aggregate per category: ``{"category": {"direct_attributes": MetricValue, ...}}``.

    ``rows`` are ``(sample breakdown, score)``; a sample counts once under each of its keys.
    Keys and values are sorted.
    """
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for labels, score in rows:
        for key, value in labels.items():
            groups[key][value].append(score)
    return {
        key: {value: aggregate(groups[key][value]) for value in sorted(groups[key])} for key in sorted(groups)
    }


def tool_stats(pairs: Sequence[tuple[Trajectory, SampleScore]]) -> dict[str, float]:
    """Tool-use statistics of a task: ops per sample, rate of pixel-space reasoning, errors, turns."""
    n = len(pairs)
    if n == 0:
        return {}
    ops = sum(t.n_ops for t, _ in pairs)
    errors = sum(t.n_errors for t, _ in pairs)
    with_tools = [s.score for t, s in pairs if t.n_ops > 0]
    without = [s.score for t, s in pairs if t.n_ops == 0]
    ends = Counter(t.end_reason for t, _ in pairs)
    stats: dict[str, float] = {
        "ops_per_sample": ops / n,
        "pixel_reasoning_rate": len(with_tools) / n,
        "tool_error_rate": errors / ops if ops else 0.0,
        "turns_per_sample": sum(len(t.turns) for t, _ in pairs) / n,
        "sample_error_rate": sum(1 for t, _ in pairs if t.error) / n,
    }
    # Undefined rates (no sample with / without tool use) are left out rather than NaN.
    if with_tools:
        stats["score_with_tools"] = sum(with_tools) / len(with_tools)
    if without:
        stats["score_without_tools"] = sum(without) / len(without)
    # Every end reason, zeros included: a run written before ``no_answer`` existed lacks that key
    # (its replies without an answer are counted under ``end_answer``), so reports can tell.
    stats.update({f"end_{reason}": ends.get(reason, 0) / n for reason in get_args(EndReason)})
    stats.update({f"end_{reason}": count / n for reason, count in sorted(ends.items())})
    return stats


def task_result(spec: TaskSpec, records: Iterable[SampleRecord], scoring: str = "official") -> TaskResult:
    """Aggregate one task's records: metric with stderr, breakdowns, tool statistics.

    Records are taken in a canonical order (natural order of sample ids), so the numbers do not
    depend on the order samples finished in: a resumed run, another batch size or a merge of
    shards (``harness merge``) gives the same floats, bootstrap standard errors included.
    """
    recs = sorted((r for r in records if r.sample.task == spec.name), key=lambda r: natural_key(r.sample.id))
    overall = aggregate([r.score.score for r in recs])
    return TaskResult(
        task=spec.name,
        version=spec.version,
        metric=spec.metric,
        value=overall.value,
        stderr=overall.stderr,
        n=overall.n,
        breakdown=breakdown([(r.score.breakdown, r.score.score) for r in recs]),
        tool_stats=tool_stats([(r.trajectory, r.score) for r in recs]),
        scorer={"scoring": scoring, **spec.scorer_params},
        metrics=corpus_metrics(spec, [r.score for r in recs]) if scoring == "official" else {},
        higher_is_better={
            spec.metric: spec.higher_is_better,
            **{m.name: m.higher_is_better for m in spec.corpus_metrics},
        },
    )


def corpus_metrics(spec: TaskSpec, scores: Sequence[SampleScore]) -> dict[str, MetricValue]:
    """The task's non-mean statistics (e.g. an RMSE of counts) with lm-eval's bootstrap stderr."""
    if not scores:
        return {}
    return {
        m.name: MetricValue(m.compute(scores), bootstrap_stderr(m.compute, scores), len(scores))
        for m in spec.corpus_metrics
    }
