"""Read run folders for reports: results files, their samples, row labels and version flags.

A run is named on the command line as a folder (its ``results.json``), a results file
(``results.json`` or a rescored ``results.<mode>.json``), or a glob of either. Nothing here
raises on a bad run: a missing or corrupt file becomes a warning that names it, and the other
runs are still reported. Only "no readable run at all" is an error (:class:`ReportError`).
"""

from __future__ import annotations

import glob
import json
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.records import RunResult
from harness.run.results import RESULTS, SAMPLES, RunDirError, SampleRecord, read_samples

DEFAULT_PROMPT = "vcot"
DEFAULT_SCORING = "official"


class ReportError(ValueError):
    """A report cannot be made at all (no readable run, bad output folder); a user error."""


class ReportWarning(UserWarning):
    """A run (or part of one) is left out of a report or flagged; the message names the file."""


@dataclass(frozen=True)
class LoadedRun:
    """One run as a report sees it: its results, its samples (``None`` if unreadable) and label."""

    label: str
    path: Path
    result: RunResult
    records: tuple[SampleRecord, ...] | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def scoring(self) -> str:
        return str(self.result.config.get("scoring") or DEFAULT_SCORING)

    @property
    def prompt_mode(self) -> str:
        return str(self.result.config.get("mode") or DEFAULT_PROMPT)


@dataclass
class Loaded:
    """The readable runs, and every warning met while reading (also emitted as warnings)."""

    runs: list[LoadedRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, ReportWarning, stacklevel=3)


def _has_glob(arg: str) -> bool:
    return any(ch in arg for ch in "*?[")


def expand_runs(args: Iterable[str], loaded: Loaded | None = None) -> list[Path]:
    """Results-file paths for the given folders, files and globs (order kept, duplicates dropped).

    A glob that matches nothing is a warning (added to ``loaded`` when given).
    """
    loaded = loaded if loaded is not None else Loaded()
    out: list[Path] = []
    for arg in args:
        matches = sorted(glob.glob(arg)) if _has_glob(arg) else [arg]
        if not matches:
            loaded.warn(f"{arg}: no run folder matches this pattern")
        for match in matches:
            path = Path(match)
            if path.is_file() and path.suffix != ".json":
                loaded.warn(f"{path}: not a run folder or results file; left out")
                continue
            out.append(path / RESULTS if path.is_dir() or not path.suffix else path)
    return list(dict.fromkeys(out))


def samples_path(results_path: Path) -> Path:
    """``results.json`` -> ``samples.jsonl``; ``results.<mode>.json`` -> ``samples.<mode>.jsonl``."""
    name = results_path.name
    if name.startswith("results") and name.endswith(".json"):
        return results_path.with_name("samples" + name[len("results") : -len(".json")] + ".jsonl")
    return results_path.with_name(SAMPLES)


def read_result(path: Path) -> RunResult:
    """Parse one results file; raises ``OSError`` / ``ValueError`` with the reason."""
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return RunResult.from_dict(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a harness results file ({type(exc).__name__}: {exc})") from exc


def read_records(path: Path, loaded: Loaded) -> tuple[SampleRecord, ...] | None:
    """A samples file's records, or ``None`` (with a warning naming it) if missing or unreadable."""
    if not path.exists():
        loaded.warn(f"{path}: missing; per-sample analytics and plots leave this run out")
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            records = tuple(read_samples(path))
        except (RunDirError, OSError, UnicodeDecodeError) as exc:
            records = None
            loaded.warn(f"{path}: unreadable ({exc}); per-sample analytics leave this run out")
    for w in caught:
        loaded.warn(str(w.message))
    return records


def load_runs(args: Iterable[str], *, with_samples: bool = True) -> Loaded:
    """Read every run named by ``args``; bad ones are warned about and left out.

    Raises :class:`ReportError` when no run at all could be read.
    """
    loaded = Loaded()
    found: list[tuple[Path, RunResult]] = []
    for path in expand_runs(args, loaded):
        if not path.exists():
            hint = (
                " (an unfinished run? `harness rescore` rebuilds it)" if samples_path(path).exists() else ""
            )
            loaded.warn(f"{path}: missing{hint}; run left out")
            continue
        try:
            found.append((path, read_result(path)))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            loaded.warn(f"{path}: corrupt results file ({exc}); run left out")
    if not found:
        raise ReportError("no readable results file among the runs given")
    labels = assign_labels([(p, r) for p, r in found])
    for (path, result), label in zip(found, labels, strict=True):
        records = read_records(samples_path(path), loaded) if with_samples else None
        loaded.runs.append(LoadedRun(label=label, path=path, result=result, records=records))
    return loaded


def base_label(result: RunResult) -> str:
    """The model name, plus the prompt mode and scoring mode when they are not the defaults."""
    extras = []
    mode = result.config.get("mode") or DEFAULT_PROMPT
    scoring = result.config.get("scoring") or DEFAULT_SCORING
    if mode != DEFAULT_PROMPT:
        extras.append(f"prompt={mode}")
    if scoring != DEFAULT_SCORING:
        extras.append(f"scoring={scoring}")
    return result.model + (f" [{', '.join(extras)}]" if extras else "")


def assign_labels(runs: Sequence[tuple[Path, RunResult]]) -> list[str]:
    """Unique row labels: the base label, disambiguated by folder name (then a number)."""
    bases = [base_label(r) for _, r in runs]
    counts = defaultdict(int, {b: bases.count(b) for b in bases})
    labels: list[str] = []
    for (path, _), base in zip(runs, bases, strict=True):
        where = path.parent.name or str(path.parent)
        if path.name != RESULTS:
            where += f"/{path.name}"
        label = base if counts[base] == 1 else f"{base} ({where})"
        n = 2
        candidate = label
        while candidate in labels:
            candidate = f"{label} #{n}"
            n += 1
        labels.append(candidate)
    return labels


def task_columns(results: Mapping[str, RunResult]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Map (label, task) to the table column the task is reported in, plus flags.

    A task run at one version everywhere is one column named after the task. When runs used
    different versions of a task, each version gets its own column (``vstar v1``, ``vstar v2``)
    and a flag says so: results of different task versions are never merged.
    """
    versions: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for label, result in results.items():
        for task, tr in result.results.items():
            versions[task][tr.version].append(label)
    columns: dict[tuple[str, str], str] = {}
    flags: list[str] = []
    for task in versions:
        by_version = versions[task]
        split = len(by_version) > 1
        if split:
            parts = "; ".join(f"v{v}: {', '.join(labels)}" for v, labels in sorted(by_version.items()))
            flags.append(
                f"task {task} was run at different versions ({parts}); "
                "each version is reported in its own column, not merged"
            )
        for version, labels in by_version.items():
            for label in labels:
                columns[(label, task)] = f"{task} v{version}" if split else task
    return columns, flags


def comparability_flags(runs: Sequence[LoadedRun]) -> list[str]:
    """Flags for results that share a column but are not like for like (sample counts, data)."""
    flags: list[str] = []
    by_task: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for run in runs:
        data = str(run.result.config.get("data", "?"))
        for task, tr in run.result.results.items():
            by_task[task].append((run.label, tr.n, data))
    for task, rows in by_task.items():
        if len({n for _, n, _ in rows}) > 1:
            parts = ", ".join(f"{label}: n={n}" for label, n, _ in rows)
            flags.append(f"task {task}: runs scored different numbers of samples ({parts})")
        if len({d for _, _, d in rows}) > 1:
            parts = ", ".join(f"{label}: {d}" for label, _, d in rows)
            flags.append(f"task {task}: runs used different data ({parts})")
    return flags
