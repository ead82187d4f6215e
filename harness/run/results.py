"""Run folders: ``samples.jsonl`` written durably sample by sample, ``results.json`` at the end.

Layout of ``--output_path DIR``::

    run_config.json   the run's configuration (checked on --resume)
    samples.jsonl     one line per finished sample: sample, trajectory, score (fsync'd each line)
    results.json      per-task metric, stderr, breakdowns, tool-use stats, versions, seed, time
    crops/            images returned by tools, with --log_crops

A run killed mid-write leaves at most one torn last line; ``--resume`` drops it, skips every
sample already written and appends the rest, so each sample ends up exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from harness.records import EndReason, MetricValue, Sample, SampleScore, TaskResult, Trajectory
from harness.run.shard import natural_key
from harness.scoring import aggregate, breakdown
from harness.scoring.stats import bootstrap_stderr
from harness.task import TaskSpec

SAMPLES = "samples.jsonl"
RESULTS = "results.json"
RUN_CONFIG = "run_config.json"
CROPS = "crops"


_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class RunDirError(Exception):
    """The output folder cannot be used as asked (exists without --resume, config mismatch)."""


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One line of samples.jsonl."""

    sample: Sample
    trajectory: Trajectory
    score: SampleScore

    @property
    def key(self) -> str:
        return self.sample.key

    def to_json(self) -> str:
        row = {
            "key": self.key,
            "sample": self.sample.to_dict(),
            "trajectory": self.trajectory.to_dict(),
            "score": self.score.to_dict(),
        }
        line = json.dumps(row, ensure_ascii=False, allow_nan=False, default=str)
        # One record, one line for every reader: str.splitlines() (and JavaScript) also break at
        # U+0085, U+2028 and U+2029, which json.dumps leaves raw; they only occur inside strings.
        return line.translate(_LINE_BREAKS) if not line.isascii() else line

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> SampleRecord:
        return cls(
            sample=Sample.from_dict(row["sample"]),
            trajectory=Trajectory.from_dict(row["trajectory"]),
            score=SampleScore.from_dict(row["score"]),
        )


def _json_safe(value: Any) -> Any:
    """NaN and infinities become ``null``: strict JSON that every reader (and browser) accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, hence the /proc path first)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file (``0o666 & ~umask``); ``tempfile.mkstemp`` gives 0600,
    so the atomic writers set this one: colleagues read results files as the umask says."""
    return 0o666 & ~current_umask()


def write_lines_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` (newline-terminated) to ``path`` via a temporary file, fsync and
    ``os.replace``: readers see the old file or the whole new one, never a half file.
    The file gets the mode of a newly created file (:func:`new_file_mode`), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), new_file_mode())
            fh.writelines(line + "\n" for line in lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write strict JSON to ``path`` atomically (see :func:`write_lines_atomic`)."""
    write_lines_atomic(path, [json.dumps(_json_safe(data), indent=2, ensure_ascii=False, allow_nan=False)])


def read_samples(path: Path, *, repair: bool = False) -> list[SampleRecord]:
    """Read samples.jsonl; a torn final line (killed run) is dropped, and cut off if ``repair``.

    A malformed line anywhere else is an error naming the line. A key seen twice keeps the first
    record and warns.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        warnings.warn(f"{path}: dropping a torn last line ({len(data) - end} bytes)", stacklevel=2)
        if repair:
            with path.open("r+b") as fh:
                fh.truncate(end)
    records: list[SampleRecord] = []
    seen: set[str] = set()
    # Split at "\n" only: str.splitlines() would also split inside strings at U+0085/U+2028.
    for lineno, line in enumerate(data[:end].decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = SampleRecord.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{path}:{lineno}: malformed sample line: {exc}") from exc
        if rec.key in seen:
            warnings.warn(f"{path}:{lineno}: duplicate sample {rec.key} ignored", stacklevel=2)
            continue
        seen.add(rec.key)
        records.append(rec)
    return records


class SampleWriteError(RunDirError):
    """samples.jsonl could not take a sample (disk full, I/O error): the run stops, in one line
    naming the sample; every line written before it is kept and ``--resume`` carries on."""


def unwritable_record(record: SampleRecord, exc: BaseException) -> SampleRecord:
    """What is written for a finished sample whose record cannot be serialised (a harness or
    plugin bug, e.g. a circular ``metadata``): the sample as an error, so it is on disk, counted
    and never rerun forever by ``--resume``. Built from plain strings only, so it always serialises."""
    reason = f"the sample's record could not be written: {type(exc).__name__}: {exc}"
    sample = record.sample
    try:
        json.dumps(sample.to_dict(), allow_nan=False, default=str)
    except Exception:  # noqa: BLE001 (the sample itself is the problem: keep its identity only)
        sample = dataclasses.replace(sample, metadata={"unwritable": reason[:2000]})
    traj = Trajectory(
        task=record.trajectory.task,
        sample_id=record.trajectory.sample_id,
        prompt_mode=record.trajectory.prompt_mode,
        system="",
        prompt="",
        turns=(),
        end_reason="error",
        error=reason[:2000],
    )
    score = dataclasses.replace(
        record.score, score=0.0, extracted=None, breakdown=dict(record.score.breakdown)
    )
    try:
        json.dumps(score.to_dict(), allow_nan=False, default=str)
    except Exception:  # noqa: BLE001
        score = dataclasses.replace(score, breakdown={})
    return SampleRecord(sample, traj, score)


class SamplesWriter:
    """Append-only samples.jsonl writer: one ``write`` + fsync per sample.

    Every finished sample is written: a record that cannot be serialised becomes its
    :func:`unwritable_record` (with a warning) instead of stopping the run. An I/O error is a
    :class:`SampleWriteError` naming the sample; a partly written line is the torn last line
    that ``--resume`` cuts.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.written = 0
        # Unbuffered binary: a failed write leaves nothing queued that close() would retry.
        self._fh = path.open("ab", buffering=0)

    def write(self, record: SampleRecord) -> None:
        try:
            line = record.to_json()
        except Exception as exc:  # noqa: BLE001 (never lose a finished sample to its content)
            warnings.warn(
                f"{self.path}: sample {record.key} could not be serialised ({type(exc).__name__}: "
                f"{exc}); it is recorded as an error",
                stacklevel=2,
            )
            line = unwritable_record(record, exc).to_json()
        # Lone surrogates cannot reach here (records clean them); were one to, backslashreplace
        # writes it as the JSON escape \udXXX inside its string, which reads back the same.
        data = (line + "\n").encode("utf-8", "backslashreplace")
        try:
            view = memoryview(data)
            while view:
                n = self._fh.write(view)
                view = view[n or 0 :]
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise SampleWriteError(
                f"{self.path}: cannot write sample {record.sample.id!r} of task {record.sample.task} "
                f"({exc.strerror or exc}); the {self.written} sample(s) written before it by this run "
                "are kept: fix the cause and rerun with --resume"
            ) from exc
        self.written += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> SamplesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_run_dir(out: Path, config: dict[str, Any], *, resume: bool) -> list[SampleRecord]:
    """Create or reopen a run folder and return the records already in it.

    Without ``resume`` an existing samples.jsonl is an error (never overwritten). With
    ``resume`` the stored configuration must match ``config`` on every field except those that
    do not change results (``resume``, ``limit``, ``batch_size``, progress display).
    """
    out.mkdir(parents=True, exist_ok=True)
    samples = out / SAMPLES
    cfg_path = out / RUN_CONFIG
    if not resume:
        if samples.exists() and samples.stat().st_size > 0:
            raise RunDirError(
                f"{samples} already exists; pass --resume to continue that run, or use another --output_path"
            )
        write_json_atomic(cfg_path, config)
        return []
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text(encoding="utf-8"))
        volatile = {"resume", "limit", "batch_size", "progress", "output_path"}
        for key in sorted((set(old) | set(config)) - volatile):
            if old.get(key) != config.get(key):
                raise RunDirError(
                    f"--resume: {key} differs from the run in {out} ({old.get(key)!r} there, {config.get(key)!r} now)"
                )
    write_json_atomic(cfg_path, config)
    return read_samples(samples, repair=True)


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


def by_task(records: Iterable[SampleRecord]) -> dict[str, list[SampleRecord]]:
    groups: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in records:
        groups[r.sample.task].append(r)
    return dict(groups)


def breakdown_table(result: TaskResult) -> list[tuple[str, str, MetricValue]]:
    """Flatten a TaskResult's breakdown into (key, category, value) rows."""
    return [(k, c, v) for k, cats in result.breakdown.items() for c, v in cats.items()]
