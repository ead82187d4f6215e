"""Fixtures for the leaderboard tests: real scripted runs (once per session) and generated results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.plugins import Harness, make_plugin_manager
from harness.records import MetricValue, RunResult, TaskResult
from harness.run.evaluate import EvalConfig, evaluate


@pytest.fixture(scope="session")
def scripted_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real run folders (``oracle``, ``random``), 3 samples per task, crops logged."""
    root = tmp_path_factory.mktemp("runs")
    harness = Harness(make_plugin_manager(autoload=False))
    runs = {}
    for name, seed in (("oracle", 0), ("random", 1)):
        out = root / name
        config = EvalConfig(
            tasks="all",
            model=f"scripted:{name}",
            limit=3,
            seed=seed,
            output_path=str(out),
            log_crops=True,
        )
        evaluate(config, harness, show_progress=False)
        runs[name] = out
    return runs


def task_result(task: str, value: float, **kw: Any) -> TaskResult:
    return TaskResult(
        task=task,
        version=kw.get("version", 1),
        metric=kw.get("metric", "accuracy"),
        value=value,
        stderr=kw.get("stderr", 0.05),
        n=kw.get("n", 100),
        breakdown=kw.get("breakdown", {}),
        tool_stats=kw.get("tool_stats", {}),
        scorer={"scoring": "official"},
    )


def run_result(model: str, tasks: dict[str, TaskResult], **config: Any) -> RunResult:
    return RunResult(
        results=tasks,
        config={"mode": "vcot", "scoring": "official", "data": "synthetic", **config},
        versions={t: r.version for t, r in tasks.items()},
        packages={},
        seed=0,
        model=model,
        wall_seconds=1.0,
        created="2026-01-01T00:00:00+00:00",
    )


@pytest.fixture
def make_task() -> Callable[..., TaskResult]:
    """``make_task(task, value, version=, n=, stderr=, breakdown=, tool_stats=)`` -> TaskResult."""
    return task_result


@pytest.fixture
def make_result() -> Callable[..., RunResult]:
    """``make_result(model, {task: value or TaskResult}, **config)`` -> RunResult."""

    def make(model: str, tasks: dict[str, float | TaskResult], **config: Any) -> RunResult:
        built = {t: v if isinstance(v, TaskResult) else task_result(t, v) for t, v in tasks.items()}
        return run_result(model, built, **config)

    return make


@pytest.fixture
def write_run(tmp_path: Path) -> Callable[[str, RunResult], Path]:
    """Write a RunResult as ``tmp_path/<name>/results.json``; return the folder."""

    def write(name: str, result: RunResult) -> Path:
        from harness.run.results import write_json_atomic

        folder = tmp_path / name
        write_json_atomic(folder / "results.json", result.to_dict())
        return folder

    return write


@pytest.fixture
def breakdown_result() -> Callable[[str, dict[str, dict[str, float]]], TaskResult]:
    """A TaskResult with ``{key: {category: value}}`` breakdowns."""

    def make(task: str, cats: dict[str, dict[str, float]]) -> TaskResult:
        bd = {k: {c: MetricValue(v, 0.1, 10) for c, v in per.items()} for k, per in cats.items()}
        return task_result(task, 0.5, breakdown=bd)

    return make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the tiny random-weight model through the CLI (3 samples each of V* and
    TallyQA, small images, 8 new tokens): a model run beside the scripted ones."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from harness.cli import main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    limits = "max_new_tokens=8,min_pixels=3136,max_pixels=50176"
    argv = ["eval", "--tasks", "vstar,tallyqa", "--model", "hf:@tiny", "--limit", "3"]
    assert main([*argv, "--episode_limits", limits, "--output_path", str(out), "--no_progress"]) == 0
    return out
