"""``harness rescore RUN_DIR --scoring MODE``: recompute every score from samples.jsonl alone.

No model runs. Each record's trajectory is scored again with the chosen scoring mode (the same
:func:`harness.scoring.modes.score_trajectory` evaluation uses), results.json is rebuilt by
:func:`harness.run.evaluate.build_result` (the one path of a run, a shard and a merge, so it has
the run's fingerprint with ``scoring`` = the mode), and the run gets ``results.<mode>.json`` and
``samples.<mode>.jsonl`` beside the originals, which are never overwritten. The new results
file is an ordinary ``RunResult`` (``config["scoring"]`` = the mode, ``config["rescored"]``
saying from what), so ``harness leaderboard RUN_DIR/results.<mode>.json`` reports it.

A task whose installed version differs from the version the run was made with is rescored
with a warning saying so (the new scorer may not be the one the run used); a mode that does
not apply to a task leaves that task out with a warning naming both. The run folder is locked
(:class:`harness.run.runlock.RunLock`) while rescoring: a run still writing it refuses the rescore.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.plugins import Harness
from harness.records import RunResult, SampleRecord
from harness.run.results import (
    RESULTS,
    RUN_CONFIG,
    SAMPLES,
    read_samples,
    write_json_atomic,
    write_lines_atomic,
)
from harness.run.runlock import RunLock
from harness.scoring.modes import ScoringMode, score_trajectory

from .load import ReportError, ReportWarning, read_result

MODE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Rescored:
    """What a rescore wrote and what it had to say."""

    results_path: Path
    samples_path: Path
    result: RunResult
    changed: int
    warnings: tuple[str, ...]


def _warn(messages: list[str], message: str) -> None:
    messages.append(message)
    warnings.warn(message, ReportWarning, stacklevel=3)


def _old_result(run_dir: Path, messages: list[str]) -> RunResult | None:
    path = run_dir / RESULTS
    if not path.exists():
        _warn(messages, f"{path}: missing; rescoring from {SAMPLES} alone")
        return None
    try:
        return read_result(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _warn(messages, f"{path}: corrupt ({exc}); rescoring from {SAMPLES} alone")
        return None


def _run_config(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def rescore(run_dir: Path, mode_name: str, harness: Harness | None = None) -> Rescored:
    """Rescore one run folder with ``mode_name``; raises ``ReportError`` for user errors."""
    harness = harness or Harness()
    if not MODE_NAME.match(mode_name):
        raise ReportError(f"scoring mode name {mode_name!r} cannot be part of a file name")
    mode = harness.scoring_mode(mode_name)  # UnknownNameError lists the valid modes
    samples_file = run_dir / SAMPLES
    if not samples_file.exists():
        raise ReportError(f"{samples_file}: no such file; rescore needs a run folder with {SAMPLES}")
    with RunLock(run_dir, "rescore", create=False):  # not while a run (or another rescore) writes it
        return _rescore(run_dir, mode_name, mode, harness)


def _rescore(run_dir: Path, mode_name: str, mode: ScoringMode, harness: Harness) -> Rescored:
    samples_file = run_dir / SAMPLES
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_samples(samples_file)
    for w in caught:
        _warn(messages, str(w.message))
    if not records:
        raise ReportError(f"{samples_file}: no sample records to rescore")
    old = _old_result(run_dir, messages)
    old_versions = dict(old.versions) if old else {}
    new_records: list[SampleRecord] = []
    skipped: set[str] = set()
    changed = 0
    for rec in records:
        task = rec.sample.task
        if task in skipped:
            continue
        if task not in harness.tasks:
            skipped.add(task)
            _warn(messages, f"{samples_file}: task {task!r} is not installed; its samples are left out")
            continue
        spec = harness.task(task)
        try:
            score = score_trajectory(spec, rec.sample, rec.trajectory, mode, mode_name)
        except ValueError as exc:
            skipped.add(task)
            _warn(
                messages, f"scoring mode {mode_name!r} does not apply to task {task!r} ({exc}); task left out"
            )
            continue
        changed += score.score != rec.score.score
        new_records.append(replace(rec, score=score))
    if not new_records:
        raise ReportError(f"scoring mode {mode_name!r} applies to no task of {samples_file}")
    specs = {t: harness.task(t) for t in dict.fromkeys(r.sample.task for r in new_records)}
    for name, spec in specs.items():
        was = old_versions.get(name)
        if was is not None and was != spec.version:
            _warn(
                messages,
                f"task {name}: the run was made with v{was}, the installed task is v{spec.version}; "
                f"rescored with the v{spec.version} scorer, so the numbers may not match the run's own",
            )
    config = dict(old.config) if old else _run_config(run_dir)
    config["scoring"] = mode_name
    config["rescored"] = {
        "from": SAMPLES,
        "mode": mode_name,
        "run_versions": {t: old_versions.get(t) for t in specs},
        "scorer_versions": {t: s.version for t, s in specs.items()},
    }
    from harness.run.evaluate import build_result

    result = build_result(
        config,
        list(specs.values()),
        new_records,
        {t: sum(1 for r in new_records if r.sample.task == t) for t in specs},
        old.wall_seconds if old else 0.0,
    )
    # The run's own identity and time (build_result would stamp the rescore's).
    result = replace(
        result,
        seed=old.seed if old else int(config.get("seed", 0) or 0),
        model=old.model if old else str(config.get("model", "unknown")),
        wall_seconds=old.wall_seconds if old else 0.0,
        created=old.created if old else "",
    )
    results_path = run_dir / f"results.{mode_name}.json"
    samples_path = run_dir / f"samples.{mode_name}.jsonl"
    write_lines_atomic(samples_path, [r.to_json() for r in new_records])
    write_json_atomic(results_path, result.to_dict())
    return Rescored(results_path, samples_path, result, int(changed), tuple(messages))
