"""Scale-out benchmarks (run: ``python -m pytest tests/benchmarks/test_bench_shard.py --benchmark-only``).

- ``--tasks all --limit 200`` with the scripted oracle (the harness's own cost, no model) as one
  process, and as 2 shards run in parallel plus ``harness merge``: the speed-up of sharding on
  this machine. Each run is the real CLI in a subprocess; the synthetic data is generated before
  timing. ``BENCH_LIMIT`` changes the limit.
- ``harness merge`` of 10,000 samples (2 shards built from the runs above with new sample ids),
  for the merge's cost per 10k samples: reading, checking, recomputing every metric and standard
  error (TallyQA's bootstrap included) and writing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.data import load_samples
from harness.plugins import Harness, make_plugin_manager
from harness.records import RunResult
from harness.run.evaluate import build_result
from harness.run.merge import merge
from harness.run.results import RESULTS, RUN_CONFIG, SAMPLES, SampleRecord, read_samples, write_json_atomic
from harness.run.shard import shard_of

LIMIT = int(os.environ.get("BENCH_LIMIT", "200"))
MERGE_SAMPLES = 10_000


def harness_cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=subprocess.DEVNULL)


def eval_args(out: Path, shard: str | None = None) -> list[str]:
    args = ["eval", "--tasks", "all", "--model", "scripted:oracle", "--limit", str(LIMIT), "--no_progress"]
    return [*args, "--output_path", str(out), *(["--shard", shard] if shard else [])]


def wait_ok(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        assert proc.wait() == 0


@pytest.fixture(scope="module")
def harness() -> Harness:
    harness = Harness(make_plugin_manager(autoload=False))
    for spec in harness.resolve_tasks("all"):  # generate (and cache) the data before any timing
        load_samples(spec, "synthetic", LIMIT)
    return harness


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-shard")


def test_one_process(benchmark: pytest.FixtureRequest, harness: Harness, root: Path) -> None:
    runs = iter(range(100))

    def run() -> None:
        wait_ok(harness_cli(*eval_args(root / f"single{next(runs)}")))

    load = os.getloadavg()[0]
    benchmark.pedantic(run, rounds=1, iterations=1)  # type: ignore[attr-defined]
    benchmark.extra_info["load_average_before"] = load  # type: ignore[attr-defined]
    assert len(read_samples(root / "single0" / SAMPLES)) == 4 * LIMIT


def test_two_shards_in_parallel_plus_merge(
    benchmark: pytest.FixtureRequest, harness: Harness, root: Path
) -> None:
    runs = iter(range(100))
    timings: dict[str, float] = {}

    def run() -> None:
        k = next(runs)
        dirs = [root / f"p{k}-shard{i}" for i in range(2)]
        start = time.perf_counter()
        wait_ok(*(harness_cli(*eval_args(d, f"{i}/2")) for i, d in enumerate(dirs)))
        timings["shards_s"] = time.perf_counter() - start
        start = time.perf_counter()
        wait_ok(harness_cli("merge", *map(str, dirs), "--output_path", str(root / f"p{k}-merged")))
        timings["merge_s"] = time.perf_counter() - start

    load = os.getloadavg()[0]
    benchmark.pedantic(run, rounds=1, iterations=1)  # type: ignore[attr-defined]
    benchmark.extra_info.update(timings, load_average_before=load)  # type: ignore[attr-defined]
    assert len(read_samples(root / "p0-merged" / SAMPLES)) == 4 * LIMIT


def _write_shard(
    folder: Path, records: list[SampleRecord], shard: str, template: RunResult, harness: Harness
) -> None:
    folder.mkdir(parents=True)
    with (folder / SAMPLES).open("w", encoding="utf-8") as fh:
        fh.writelines(r.to_json() + "\n" for r in records)
    specs = harness.resolve_tasks("all")
    counts = {s.name: sum(1 for r in records if r.sample.task == s.name) for s in specs}
    config = {**template.config, "shard": shard, "output_path": str(folder)}
    write_json_atomic(folder / RUN_CONFIG, config)
    write_json_atomic(
        folder / RESULTS, build_result(config, specs, records, counts, 0.0, shard=shard).to_dict()
    )


def test_merge_10k_samples(benchmark: pytest.FixtureRequest, harness: Harness, root: Path) -> None:
    source = root / "single0"
    if not (source / SAMPLES).exists():
        wait_ok(harness_cli(*eval_args(source)))
    base = read_samples(source / SAMPLES)
    template = RunResult.from_dict(json.loads((source / RESULTS).read_text()))
    records: list[list[SampleRecord]] = [[], []]
    for k in range(MERGE_SAMPLES):
        rec = base[k % len(base)]
        new_id = f"{rec.sample.id}-copy{k // len(base)}"
        sample = dataclasses.replace(rec.sample, id=new_id)
        rec = SampleRecord(sample, dataclasses.replace(rec.trajectory, sample_id=new_id), rec.score)
        records[shard_of(sample.task, new_id, 2)].append(rec)
    dirs = [root / f"big-shard{i}" for i in range(2)]
    for i, d in enumerate(dirs):
        _write_shard(d, records[i], f"{i}/2", template, harness)
    outs = iter(range(100))

    def merge_once() -> RunResult:
        return merge(dirs, root / f"big-merged{next(outs)}", harness=harness)

    result = benchmark.pedantic(merge_once, rounds=3, iterations=1)  # type: ignore[attr-defined]
    assert sum(result.n_samples.values()) == MERGE_SAMPLES
