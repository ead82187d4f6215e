"""``harness eval`` as a function: load tasks and data, build the policy, roll out, write results."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.backends import BackendContext, split_model
from harness.data import DataError, load_samples
from harness.data.source import DataSource
from harness.errors import OptionError
from harness.loop.limits import Limits
from harness.loop.policy import Policy, Sampling
from harness.loop.rollout import RolloutConfig, rollout
from harness.plugins import Harness
from harness.records import RunResult, Sample
from harness.run.results import (
    CROPS,
    RESULTS,
    SAMPLES,
    RunDirError,
    SampleRecord,
    SamplesWriter,
    prepare_run_dir,
    write_json_atomic,
)
from harness.run.runlock import RunLock
from harness.run.shard import Shard, fingerprint
from harness.scoring.aggregate import task_result
from harness.task import PromptMode, TaskSpec
from harness.tools import tools_for_protocol

PACKAGES = (
    "pixel-harness",
    "pillow",
    "pluggy",
    "lm-eval",
    "numpy",
    "rapidfuzz",
    "av",  # video decoding (MVBench files)
    "math-verify",  # --scoring pixel_reasoner
    "datasets",  # --data hub / parquet
    "torch",
    "transformers",
    "vllm",
    "trl",
)


@dataclass(frozen=True)
class EvalConfig:
    """Everything that defines an evaluation run (serialised into run_config.json)."""

    tasks: str
    model: str
    model_args: dict[str, str] = field(default_factory=dict)
    data: DataSource | str = DataSource("synthetic")  # text is parsed once, into a DataSource
    limit: int | float | None = None  # below 1: that fraction of each task (lm-eval's --limit 0.1)
    seed: int = 0
    mode: PromptMode = "vcot"
    limits: Limits = Limits()
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 8
    workers: int | None = None  # media/tool threads (None: the CPU count); results never depend on it
    scoring: str = "official"
    protocol: str = "crop_image_normalized"  # crop tool schema (harness.tools.PROTOCOLS)
    output_path: str | None = None
    log_crops: bool = False
    resume: bool = False
    shard: str | None = None  # "I/N": evaluate only this part of the samples (harness/run/shard.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", DataSource.of(self.data))

    @property
    def source(self) -> DataSource:
        """``data`` as the :class:`DataSource` it always is once constructed."""
        assert isinstance(self.data, DataSource)
        return self.data

    def to_dict(self) -> dict[str, Any]:
        """The stored form (run_config.json, results.json's ``config``): ``data`` as its text."""
        d = asdict(self)
        d["limits"] = asdict(self.limits)
        d["data"] = str(self.source)
        return d


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that can change results (read without importing)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_revision() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def build_policy(harness: Harness, config: EvalConfig) -> Policy:
    prefix, rest = split_model(config.model)
    factory = harness.backend(prefix)
    return factory(
        rest, BackendContext(model_args=dict(config.model_args), seed=config.seed, tasks=harness.tasks)
    )


def load_limited(
    spec: TaskSpec, data: DataSource, limit: int | float | None, hub_keys: Sequence[str] = ()
) -> list[Sample]:
    """``--limit``: the first N samples, or below 1 that fraction of the task (rounded up, as
    lm-eval). ``hub_keys``: the hub options of every selected task (one ``--data`` feeds them all)."""
    keys = (*spec.hub_keys, *hub_keys)
    if limit is not None and limit < 1:
        everything = load_samples(spec, data, None, hub_keys=keys)
        return everything[: math.ceil(round(len(everything) * limit, 9))]  # 0.7 * 10 is 7, not 8
    return load_samples(spec, data, None if limit is None else int(limit), hub_keys=keys)


def evaluate(
    config: EvalConfig,
    harness: Harness | None = None,
    *,
    progress: Callable[[int, int], Any] | None = None,
    show_progress: bool = True,
    policy: Policy | None = None,
) -> RunResult:
    """Run an evaluation; with ``output_path`` every sample is on disk as soon as it finishes.

    The output folder is locked for the whole run (:class:`harness.run.runlock.RunLock`): a second
    run, resume or merge into it is refused in one line naming this one, before writing anything.
    """
    if not config.output_path:
        return _evaluate(config, harness, progress=progress, show_progress=show_progress, policy=policy)
    out = Path(config.output_path)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--output_path {out} is a file; give a folder (it is created if missing)")
    with RunLock(out, "eval"):
        return _evaluate(config, harness, progress=progress, show_progress=show_progress, policy=policy)


def _evaluate(
    config: EvalConfig,
    harness: Harness | None = None,
    *,
    progress: Callable[[int, int], Any] | None = None,
    show_progress: bool = True,
    policy: Policy | None = None,
) -> RunResult:
    harness = harness or Harness()
    specs = harness.resolve_tasks(config.tasks)
    for spec in specs:
        if config.mode not in spec.prompt_modes:
            raise OptionError(
                f"task {spec.name} has no prompt mode {config.mode!r} (has {', '.join(spec.prompt_modes)})"
            )
    scoring = harness.scoring_mode(config.scoring)
    tools = tools_for_protocol(harness.tools, config.protocol)
    try:
        shard = Shard.parse(config.shard) if config.shard else None
    except ValueError as exc:  # a malformed --shard I/N
        raise OptionError(str(exc)) from None
    if policy is None:
        split = split_model(config.model)[0]
        harness.backend(split)  # unknown backend fails before any data is built
    hub_keys = [k for s in specs for k in s.hub_keys]
    samples = {s.name: load_limited(s, config.source, config.limit, hub_keys) for s in specs}
    empty = [name for name, ss in samples.items() if not ss]
    if empty:  # a task with n=0 would "finish" with NaN metrics and exit 0
        limit = f" --limit {config.limit}" if config.limit is not None else ""
        raise DataError(f"--data {config.source}{limit}: no samples of task {', '.join(empty)}")
    if shard is not None:  # --limit first (the unsharded run's samples), then this shard's part
        samples = {name: shard.select(ss) for name, ss in samples.items()}

    out = Path(config.output_path) if config.output_path else None
    done: list[SampleRecord] = []
    if out is not None:
        done = prepare_run_dir(out, config.to_dict(), resume=config.resume)
    wanted = {s.key for ss in samples.values() for s in ss}
    done = [r for r in done if r.key in wanted]
    done_keys = {r.key for r in done}
    by_name = {s.name: s for s in specs}
    todo = [(by_name[t], s) for t, ss in samples.items() for s in ss if s.key not in done_keys]

    policy = policy or build_policy(harness, config)
    rconf = RolloutConfig(
        mode=config.mode,
        limits=config.limits,
        sampling=Sampling(temperature=config.temperature, top_p=config.top_p),
        batch_size=config.batch_size,
        workers=config.workers,
        seed=config.seed,
        crop_dir=(out / CROPS) if (out is not None and config.log_crops) else None,
        scoring=scoring,
        scoring_name=config.scoring,
    )
    start = time.monotonic()
    records = list(done)
    writer = SamplesWriter(out / SAMPLES) if out is not None else None
    bar = _progress_bar(len(todo) + len(done), len(done), show_progress)
    total_score = sum(r.score.score for r in done)
    try:
        for record in rollout(todo, policy, tools, rconf):
            if writer is not None:
                writer.write(record)
            records.append(record)
            harness.on_trajectory(record.trajectory, record.score)
            total_score += record.score.score
            if bar is not None:
                bar.update(1)
                bar.set_postfix(score=f"{total_score / len(records):.3f}")
            if progress is not None:
                progress(len(records), len(todo) + len(done))
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    wall = time.monotonic() - start
    result = build_result(
        config,
        specs,
        records,
        {s.name: len(samples[s.name]) for s in specs},
        wall,
        shard=str(shard) if shard is not None else None,
    )
    if out is not None:
        try:
            write_json_atomic(out / RESULTS, result.to_dict())
        except OSError as exc:  # disk full at the very end: every sample is already on disk
            raise RunDirError(
                f"{out / RESULTS}: cannot write ({exc.strerror or exc}); all {len(records)} samples are in "
                f"{out / SAMPLES}: fix the cause and rerun with --resume to write it"
            ) from exc
    return result


def build_result(
    config: EvalConfig | Mapping[str, Any],
    specs: Sequence[TaskSpec],
    records: Sequence[SampleRecord],
    n_samples: Mapping[str, int],
    wall_seconds: float,
    *,
    shard: str | None = None,
    partial: bool = False,
    merged: dict[str, Any] | None = None,
    packages: dict[str, str] | None = None,
) -> RunResult:
    """The ``RunResult`` of ``records`` (what results.json holds): one code path for a run, a
    shard and a merge of shards, so their files have the same layout and the same numbers.

    ``config`` is the run's :class:`EvalConfig`, or the stored configuration of a run folder
    (``results.json``'s ``config``, as a merge or a rescore reads it), kept as stored."""
    versions = {s.name: s.version for s in specs}
    if isinstance(config, EvalConfig):
        stored, scoring, seed, model = config.to_dict(), config.scoring, config.seed, config.model
    else:  # a run folder's file: read by key, missing keys as the oldest files lack them
        stored = dict(config)
        scoring = str(config.get("scoring") or "official")
        seed, model = int(config.get("seed") or 0), str(config.get("model"))
    return RunResult(
        results={s.name: task_result(s, records, scoring) for s in specs},
        config=stored,
        versions=versions,
        packages=package_versions() if packages is None else packages,
        seed=seed,
        model=model,
        wall_seconds=round(wall_seconds, 3),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        git=git_revision(),
        n_samples={s.name: int(n_samples.get(s.name, 0)) for s in specs},
        shard=shard,
        fingerprint=fingerprint(stored, versions),
        partial=partial,
        merged=merged,
    )


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    import sys

    from tqdm.auto import tqdm

    # On a terminal refresh often; in a log file (not a tty) print a line every 30 s at most.
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(
        total=total, initial=initial, desc="eval", unit="sample", dynamic_ncols=True, mininterval=interval
    )


def format_results(result: RunResult, specs: dict[str, TaskSpec] | None = None) -> str:
    """A plain-text table: task, metric, value +- stderr, n, ops/sample, tool-use rate."""
    rows = [("task", "metric", "value", "stderr", "n", "ops/sample", "tool use")]
    for name, r in result.results.items():
        ts = r.tool_stats
        rows.append(
            (
                name,
                r.metric,
                _fmt(r.value),
                _fmt(r.stderr),
                str(r.n),
                _fmt(ts.get("ops_per_sample", math.nan), 2),
                _fmt(ts.get("pixel_reasoning_rate", math.nan), 2),
            )
        )
        for key, cats in r.breakdown.items():
            for cat, v in cats.items():
                rows.append((f"  {key}={cat}", "", _fmt(v.value), _fmt(v.stderr), str(v.n), "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(x: float, digits: int = 4) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
