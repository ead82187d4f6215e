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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.records import SampleRecord as SampleRecord  # re-exported: the lines of samples.jsonl
from harness.records import Trajectory

SAMPLES = "samples.jsonl"
RESULTS = "results.json"
RUN_CONFIG = "run_config.json"
CROPS = "crops"


class RunDirError(Exception):
    """The output folder cannot be used as asked (exists without --resume, config mismatch)."""


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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and
    ``os.replace``: readers see the old file or the whole new one, never a half file.
    The file gets the mode of a newly created file (:func:`new_file_mode`), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), new_file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lines_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` (newline-terminated, UTF-8) to ``path`` atomically (:func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, "".join(line + "\n" for line in lines).encode("utf-8"))


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
