"""``harness merge DIR... --output_path OUT``: combine shard folders into one run folder.

Every number is recomputed from the merged samples with the function a single run uses
(:func:`harness.run.evaluate.build_result`, hence :func:`harness.scoring.aggregate.task_result`), never by
averaging shard averages: metrics, standard errors (bootstrap ones included), breakdowns and
tool statistics equal those of the unsharded run, and ``OUT`` has the same layout
(``results.json``, ``samples.jsonl``, ``run_config.json``, ``crops/``), so leaderboards and
``harness rescore`` read it unchanged.

Refusals (a one-line :class:`MergeError` naming the field):

- fingerprints differ (the first differing field is named, e.g. ``seed`` or ``model_args.dtype``);
- a shard is given twice, or shards disagree on their count (``shard``);
- a sample appears twice, or in a shard it does not belong to (``sample``);
- a shard is missing, unfinished (no ``results.json``) or has fewer samples than it should.

``allow_partial`` merges the last group anyway and records it: ``partial: true`` and, under
``merged``, the missing shards and the incomplete ones with their counts.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.confine import PathEscape, confined
from harness.plugins import Harness
from harness.records import RunResult, SampleRecord
from harness.run.results import (
    CROPS,
    RESULTS,
    RUN_CONFIG,
    SAMPLES,
    read_samples,
    write_json_atomic,
    write_lines_atomic,
)
from harness.run.runlock import RunLock, holder
from harness.run.shard import Shard, canonical_order, field_value, fingerprint, fingerprint_difference
from harness.scoring.modes import DEFAULT_MODE, score_trajectory
from harness.task import TaskSpec

# Scores are recomputed from the trajectory on merge; they must equal the recorded ones (up to
# float noise: the same scorer on the same reply gives the same float).
SCORE_TOLERANCE = 1e-9


class MergeError(ValueError):
    """Shards that must not be merged as asked; the one-line message names the field."""


@dataclass(frozen=True)
class ShardRun:
    """One input folder as the merge sees it."""

    path: Path
    shard: Shard
    config: dict[str, Any]
    fingerprint: dict[str, Any]
    tasks: tuple[str, ...]
    records: tuple[SampleRecord, ...]
    result: RunResult | None  # None: the shard never finished (no results.json)

    @property
    def finished(self) -> bool:
        return self.result is not None

    def expected(self, task: str) -> int | None:
        """How many samples of ``task`` this shard was to evaluate (unknown if unfinished)."""
        return self.result.n_samples.get(task) if self.result is not None else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MergeError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise MergeError(f"{path}: expected a JSON object")
    return data


def read_shard(path: Path, harness: Harness, *, allow_partial: bool = False) -> ShardRun:
    """Read one shard folder (an unsharded run reads as shard ``0/1``)."""
    if not (path / SAMPLES).is_file():
        raise MergeError(f"{path}: no {SAMPLES} (not a run folder)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a torn last line of a killed shard is dropped, as on resume
        records = tuple(read_samples(path / SAMPLES))
    for w in caught:
        if "duplicate sample" in str(w.message):  # "FILE:LINE: duplicate sample KEY ignored"
            where, _, rest = str(w.message).rpartition(": duplicate sample ")
            raise MergeError(f"sample {rest.removesuffix(' ignored')} appears twice ({where})")
    if (path / RESULTS).is_file():
        try:
            result: RunResult | None = RunResult.from_dict(_read_json(path / RESULTS))
        except (TypeError, ValueError, KeyError) as exc:
            raise MergeError(f"{path / RESULTS}: not a results file ({exc})") from None
        assert result is not None
        config, tasks = dict(result.config), tuple(result.versions)
        versions = dict(result.versions)
        fp = result.fingerprint or fingerprint(config, versions)
        shard_text = result.shard
    elif allow_partial and (path / RUN_CONFIG).is_file():
        result = None
        config = _read_json(path / RUN_CONFIG)
        specs = harness.resolve_tasks(str(config.get("tasks", "")))
        tasks, versions = tuple(s.name for s in specs), {s.name: s.version for s in specs}
        fp = fingerprint(config, versions)
        shard_text = config.get("shard")
    else:
        raise MergeError(
            f"{path}: no {RESULTS}: the shard has not finished (rerun it with --resume, "
            "or pass --allow-partial to merge what it has)"
        )
    try:
        shard = Shard.parse(shard_text) if shard_text else Shard(0, 1)
    except ValueError as exc:
        raise MergeError(f"{path}: shard: {exc}") from None
    return ShardRun(path, shard, config, fp, tasks, records, result)


def _check_shards(runs: Sequence[ShardRun]) -> None:
    first = runs[0]
    seen: dict[int, ShardRun] = {}
    for run in runs:
        if run.shard.count != first.shard.count:
            raise MergeError(
                f"shard count differs: {first.path} is shard {first.shard}, {run.path} is shard {run.shard}"
            )
        if run.shard.index in seen:
            raise MergeError(f"shard {run.shard} appears twice ({seen[run.shard.index].path} and {run.path})")
        seen[run.shard.index] = run
        diff = fingerprint_difference(first.fingerprint, run.fingerprint)
        if diff is not None:
            raise MergeError(
                f"fingerprints differ in field {diff!r}: {first.path} has "
                f"{field_value(first.fingerprint, diff)!r}, {run.path} has {field_value(run.fingerprint, diff)!r}"
            )


def _check_samples(runs: Sequence[ShardRun]) -> list[SampleRecord]:
    owner: dict[str, Path] = {}
    records: list[SampleRecord] = []
    for run in runs:
        for rec in run.records:
            if rec.key in owner:
                raise MergeError(f"sample {rec.key} appears twice ({owner[rec.key]} and {run.path})")
            if not run.shard.owns(rec.sample.task, rec.sample.id):
                raise MergeError(f"sample {rec.key} in {run.path} does not belong to shard {run.shard}")
            if rec.sample.task not in run.tasks:
                raise MergeError(
                    f"sample {rec.key} in {run.path}: task {rec.sample.task!r} is not in its run"
                )
            owner[rec.key] = run.path
            records.append(rec)
    return records


def _gaps(runs: Sequence[ShardRun]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """(missing shards, incomplete shards with per-task ``[have, expected]``; expected None if unknown)."""
    count = runs[0].shard.count
    present = {r.shard.index for r in runs}
    missing = [str(Shard(i, count)) for i in range(count) if i not in present]
    incomplete: dict[str, dict[str, Any]] = {}
    for run in runs:
        have = Counter(r.sample.task for r in run.records)
        gaps = {
            t: [have.get(t, 0), run.expected(t)]
            for t in run.tasks
            if not run.finished or have.get(t, 0) != run.expected(t)
        }
        if gaps:
            incomplete[str(run.path)] = gaps
    return missing, incomplete


def _specs(runs: Sequence[ShardRun], harness: Harness) -> list[TaskSpec]:
    """The installed tasks, which must be the versions the shards were made with."""
    made_with = dict(runs[0].fingerprint.get("fields", {}).get("tasks") or {})
    specs = []
    for name in runs[0].tasks:
        spec = harness.task(name)
        if made_with.get(name, spec.version) != spec.version:
            raise MergeError(
                f"task {name}: version differs: the shards were made with v{made_with[name]}, "
                f"the installed task is v{spec.version}"
            )
        specs.append(spec)
    return specs


def _verify_scores(runs: Sequence[ShardRun], specs: Sequence[TaskSpec], harness: Harness) -> None:
    """Score every sample again from its trajectory, as evaluation does
    (:func:`harness.scoring.modes.score_trajectory` with the run's scoring mode), and refuse a
    recorded score that is not a finite number or that differs (a tampered or corrupted file)."""
    by_name = {s.name: s for s in specs}
    mode_name = str(runs[0].config.get("scoring") or DEFAULT_MODE)
    mode = harness.scoring_mode(mode_name)
    for run in runs:
        where = run.path / SAMPLES
        for rec in run.records:
            recorded = rec.score.score
            if not isinstance(recorded, (int, float)) or not math.isfinite(recorded):
                raise MergeError(f"{where}: sample {rec.key}: score {recorded!r} is not a finite number")
            try:
                fresh = score_trajectory(
                    by_name[rec.sample.task], rec.sample, rec.trajectory, mode, mode_name
                )
            except ValueError as exc:
                raise MergeError(f"{where}: sample {rec.key}: cannot be scored again ({exc})") from None
            if not math.isclose(fresh.score, recorded, rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE):
                raise MergeError(
                    f"{where}: sample {rec.key}: recorded score {recorded!r} but its trajectory scores "
                    f"{fresh.score!r} ({mode_name} scoring); the file was changed after the run"
                )
            if fresh.breakdown != rec.score.breakdown:
                raise MergeError(
                    f"{where}: sample {rec.key}: recorded breakdown {rec.score.breakdown!r} but the "
                    f"sample gives {fresh.breakdown!r}; the file was changed after the run"
                )


def _write_samples(path: Path, records: Sequence[SampleRecord]) -> None:
    write_lines_atomic(path, (r.to_json() for r in records))


def _copy_crops(runs: Sequence[ShardRun], out: Path) -> int:
    """Copy the crop files the samples refer to (names are per sample, so they never collide)."""
    copied = 0
    for run in runs:
        for rec in run.records:
            for turn in rec.trajectory.turns:
                for name in turn.observation.saved if turn.observation else ():
                    try:  # names come from the shard's samples.jsonl: untrusted (docs/reliability.md)
                        src = confined(confined(run.path, CROPS), name)
                        dst = confined(out / CROPS, name)
                    except PathEscape:
                        warnings.warn(
                            f"{run.path}: {rec.key}: crop name {name!r} leads out of {CROPS}/; not copied",
                            stacklevel=2,
                        )
                        continue
                    if src.is_file():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(src, dst)
                        copied += 1
    return copied


def _provenance(
    runs: Sequence[ShardRun], missing: list[str], incomplete: dict[str, Any], packages: dict[str, str]
) -> dict[str, Any]:
    """The ``merged`` record of results.json: which shards, from where, what was missing."""
    ordered = sorted(runs, key=lambda r: r.shard.index)
    return {
        "shards": [str(r.shard) for r in ordered],
        "count": runs[0].shard.count,
        "from": [str(r.path) for r in ordered],
        "wall_seconds": {str(r.shard): r.result.wall_seconds for r in ordered if r.result is not None},
        "missing_shards": missing,
        "incomplete": incomplete,
        "packages_differ": sorted(
            {k for r in ordered if r.result for k, v in r.result.packages.items() if packages.get(k) != v}
        ),
    }


def merge(
    dirs: Sequence[Path | str],
    out: Path | str,
    *,
    allow_partial: bool = False,
    overwrite: bool = False,
    harness: Harness | None = None,
) -> RunResult:
    """Merge shard folders ``dirs`` into ``out``; returns the merged result (also written).

    ``overwrite`` replaces a merged result already in ``out`` (what a resumed ``accelerate
    launch`` run does); otherwise an existing ``out/samples.jsonl`` is an error.
    """
    if not dirs:
        raise MergeError("merge needs at least one shard folder")
    harness = harness or Harness()
    out = Path(out)
    paths = [Path(d) for d in dirs]
    if any(out.resolve() == p.resolve() for p in paths):
        raise MergeError(f"--output_path {out} is one of the shard folders; merge into a new folder")
    if out.exists() and not out.is_dir():
        raise MergeError(f"--output_path {out} is a file; merge into a new folder")
    with RunLock(out, "merge"):  # one writer; a refused or failed merge leaves no folder it made
        if (out / SAMPLES).exists() and not overwrite:
            raise MergeError(f"{out / SAMPLES} already exists; merge into a new --output_path")
        return _merge(paths, out, allow_partial, harness)


def _merge(paths: Sequence[Path], out: Path, allow_partial: bool, harness: Harness) -> RunResult:
    from harness.run.evaluate import build_result

    for folder in paths:
        busy = holder(folder)
        if busy is not None:
            raise MergeError(f"{folder}: a run is still writing it ({busy}); merge when it has finished")
    runs = [read_shard(p, harness, allow_partial=allow_partial) for p in paths]
    _check_shards(runs)
    records = _check_samples(runs)
    missing, incomplete = _gaps(runs)
    if missing and not allow_partial:
        raise MergeError(
            f"shard: missing {', '.join(missing)} of {runs[0].shard.count} (pass --allow-partial to merge anyway)"
        )
    if incomplete and not allow_partial:
        path, gaps = next(iter(incomplete.items()))
        task, (have, want) = next(iter(gaps.items()))
        raise MergeError(
            f"shard in {path} is incomplete: task {task} has {have} of {want} samples "
            "(rerun it with --resume, or pass --allow-partial)"
        )
    specs = _specs(runs, harness)
    _verify_scores(runs, specs, harness)
    order = canonical_order(records, lambda r: r.sample.task, lambda r: r.sample.id, [s.name for s in specs])
    first = min(runs, key=lambda r: r.shard.index)
    config = {**first.config, "shard": None, "output_path": str(out), "resume": False}
    n_samples = {
        s.name: sum(
            max(r.expected(s.name) or 0, sum(1 for x in r.records if x.sample.task == s.name)) for r in runs
        )
        for s in specs
    }
    packages = dict(first.result.packages) if first.result else None
    result = build_result(
        config,
        specs,
        order,
        n_samples,
        sum(r.result.wall_seconds for r in runs if r.result is not None),
        partial=bool(missing or incomplete),
        merged=_provenance(runs, missing, incomplete, packages or {}),
        packages=packages,
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_samples(out / SAMPLES, order)
    write_json_atomic(out / RUN_CONFIG, config)
    _copy_crops(runs, out)
    write_json_atomic(out / RESULTS, result.to_dict())
    return result
