"""``--shard I/N`` + ``harness merge``: shards merged equal the unsharded run, sample for sample and
metric for metric; every refusal names its field; a killed shard resumed loses and duplicates
nothing. Scripted policies (test doubles) on all four tasks."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.plugins import Harness, make_plugin_manager
from harness.run.evaluate import EvalConfig, evaluate
from harness.run.merge import MergeError, merge
from harness.run.results import RunDirError, read_samples

LIMIT = 12
BASE = EvalConfig(tasks="all", model="scripted:random", seed=1, limit=LIMIT, batch_size=8)
# git: the revision at write time (a commit landing mid-session is not a result change)
VOLATILE = ("config", "wall_seconds", "created", "merged", "git")


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """A results.json without what differs between equal runs (output folder, clock, provenance)."""
    return {k: v for k, v in results.items() if k not in VOLATILE}


def load(run: Path) -> tuple[dict[str, Any], list[str]]:
    """(results.json, sorted samples.jsonl lines) of a run folder."""
    results = json.loads((run / "results.json").read_text())
    return results, sorted((run / "samples.jsonl").read_text().splitlines())


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness(make_plugin_manager(autoload=False))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, harness: Harness) -> Callable[[str], Path]:
    """``runs("U")`` the unsharded run, ``runs("2/0")`` shard 0 of 2, ...: each evaluated once."""
    root = tmp_path_factory.mktemp("runs")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            out = root / name.replace("/", "-of-")
            shard = None if name == "U" else f"{name.split('/')[1]}/{name.split('/')[0]}"
            config = dataclasses.replace(BASE, output_path=str(out), shard=shard)
            evaluate(config, harness, show_progress=False)
            made[name] = out
        return made[name]

    return get


def shard_dirs(runs: Callable[[str], Path], count: int) -> list[Path]:
    return [runs(f"{count}/{i}") for i in range(count)]


@pytest.mark.parametrize("count", [2, 3])
def test_merged_shards_equal_the_unsharded_run(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path, count: int
) -> None:
    dirs = shard_dirs(runs, count)
    merge(list(reversed(dirs)), tmp_path / "M", harness=harness)  # argument order does not matter
    unsharded, u_lines = load(runs("U"))
    merged, m_lines = load(tmp_path / "M")
    assert m_lines == u_lines  # the same samples, each once, byte for byte
    assert comparable(merged) == comparable(unsharded)  # every metric, stderr, breakdown, lm-eval key
    assert merged["results"]["tallyqa"]["metrics"]["rmse"]["stderr"] > 0  # bootstrap stderr compared too
    assert {k: v for k, v in merged["config"].items() if k != "output_path"} == {
        k: v for k, v in unsharded["config"].items() if k != "output_path"
    }
    assert merged["merged"]["shards"] == [f"{i}/{count}" for i in range(count)]
    assert merged["partial"] is False


def test_a_shard_records_its_part_and_fingerprint(runs: Callable[[str], Path]) -> None:
    unsharded, _ = load(runs("U"))
    parts = [load(d)[0] for d in shard_dirs(runs, 2)]
    assert [p["shard"] for p in parts] == ["0/2", "1/2"]
    assert all(p["fingerprint"] == unsharded["fingerprint"] for p in parts)
    for task, n in unsharded["n_samples"].items():
        assert sum(p["n_samples"][task] for p in parts) == n == LIMIT
        assert sum(p["results"][task]["n"] for p in parts) == n


def test_merged_run_is_read_by_rescore_and_leaderboards(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    from harness_leaderboards.load import load_runs
    from harness_leaderboards.rescore import rescore

    merge(shard_dirs(runs, 2), tmp_path / "M", harness=harness)
    loaded = load_runs([str(tmp_path / "M"), str(runs("U"))])
    assert not loaded.warnings and len(loaded.runs) == 2
    merged, single = loaded.runs
    assert merged.result.results == single.result.results and merged.records is not None
    done = rescore(tmp_path / "M", "official", harness)
    assert done.changed == 0
    assert sum(done.result.n_samples.values()) == 4 * LIMIT


def _copy(dirs: list[Path], tmp: Path) -> list[Path]:
    return [Path(shutil.copytree(d, tmp / f"in{i}")) for i, d in enumerate(dirs)]


def _duplicate_a_sample(dirs: list[Path]) -> None:
    first = (dirs[0] / "samples.jsonl").read_text().splitlines()[0]
    with (dirs[1] / "samples.jsonl").open("a") as fh:
        fh.write(first + "\n")


def _duplicate_within_a_shard(dirs: list[Path]) -> None:
    path = dirs[1] / "samples.jsonl"
    with path.open("a") as fh:
        fh.write(path.read_text().splitlines()[0] + "\n")


def _drop_a_sample(dirs: list[Path]) -> None:
    path = dirs[1] / "samples.jsonl"
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")


def _unfinished(dirs: list[Path]) -> None:
    (dirs[1] / "results.json").unlink()


def _other_version(dirs: list[Path]) -> None:
    for d in dirs:
        data = json.loads((d / "results.json").read_text())
        data["fingerprint"]["fields"]["tasks"]["vstar"] = 99
        (d / "results.json").write_text(json.dumps(data))


REFUSALS: list[tuple[str, Callable[[list[Path]], list[Path]], str]] = [
    ("same shard twice", lambda d: [d[0], d[0]], r"shard 0/2 appears twice"),
    ("missing shard", lambda d: [d[1]], r"shard: missing 0/2 of 2 .*--allow-partial"),
    ("sample twice", lambda d: (_duplicate_a_sample(d), d)[1], r"sample \S+ appears twice"),
    ("sample twice in a shard", lambda d: (_duplicate_within_a_shard(d), d)[1], r"appears twice \(\S+:\d+\)"),
    ("incomplete shard", lambda d: (_drop_a_sample(d), d)[1], r"incomplete: task \w+ has \d+ of \d+ samples"),
    ("unfinished shard", lambda d: (_unfinished(d), d)[1], r"no results.json: the shard has not finished"),
    ("task version", lambda d: (_other_version(d), d)[1], r"task vstar: version differs: .* v99"),
]


@pytest.mark.parametrize(("case", "arrange", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_merge_refuses(
    runs: Callable[[str], Path],
    harness: Harness,
    tmp_path: Path,
    case: str,
    arrange: Callable[[list[Path]], list[Path]],
    message: str,
) -> None:
    dirs = arrange(_copy(shard_dirs(runs, 2), tmp_path))
    with pytest.raises(MergeError, match=message) as info:
        merge(dirs, tmp_path / "M", harness=harness)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "M").exists()  # a refused merge leaves no (empty) output folder


def _set_score(dirs: list[Path], value: Any) -> str:
    """Write ``value`` as the recorded score of the first sample of shard 1; returns its key."""
    path = dirs[1] / "samples.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[0])
    row["score"]["score"] = value
    lines[0] = json.dumps(row, allow_nan=True)
    path.write_text("\n".join(lines) + "\n")
    return str(row["key"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), r"score nan is not a finite number"),
        ("NaN", r"score nan is not a finite number"),
        (
            "flip",
            r"recorded score \S+ but its trajectory scores \S+ \(official scoring\); the file was changed",
        ),
    ],
    ids=["NaN literal", "NaN string", "tampered"],
)
def test_merge_rescores_every_sample_and_names_a_bad_one(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path, value: Any, message: str
) -> None:
    dirs = _copy(shard_dirs(runs, 2), tmp_path)
    if value == "flip":
        first = json.loads((dirs[1] / "samples.jsonl").read_text().splitlines()[0])
        value = 1.0 - first["score"]["score"]
    key = _set_score(dirs, value)
    with pytest.raises(MergeError, match=message) as info:
        merge(dirs, tmp_path / "M", harness=harness)
    text = str(info.value)
    assert "\n" not in text and f"{dirs[1] / 'samples.jsonl'}: sample {key}:" in text
    assert not (tmp_path / "M").exists()


def test_merge_refuses_a_tampered_breakdown(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    dirs = _copy(shard_dirs(runs, 2), tmp_path)
    path = dirs[0] / "samples.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[-1])
    row["score"]["breakdown"] = {"category": "made-up"}
    path.write_text("\n".join([*lines[:-1], json.dumps(row)]) + "\n")
    with pytest.raises(MergeError, match=rf"sample {row['key']}: recorded breakdown .*made-up"):
        merge(dirs, tmp_path / "M", harness=harness)


def test_merge_output_path_naming_a_file(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    (tmp_path / "M").write_text("mine")
    with pytest.raises(MergeError, match=r"--output_path \S+ is a file") as info:
        merge(shard_dirs(runs, 2), tmp_path / "M", harness=harness)
    assert "\n" not in str(info.value) and (tmp_path / "M").read_text() == "mine"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"seed": 2}, "'seed'"), ({"limits": BASE.limits.replace(max_ops=2)}, "'limits.max_ops'")],
)
def test_merge_refuses_a_fingerprint_mismatch(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    other = dataclasses.replace(BASE, output_path=str(tmp_path / "B"), shard="1/2", **changes)
    evaluate(other, harness, show_progress=False)
    with pytest.raises(MergeError, match=f"fingerprints differ in field {field}") as info:
        merge([runs("2/0"), tmp_path / "B"], tmp_path / "M", harness=harness)
    assert "\n" not in str(info.value)


def test_merge_refuses_a_different_shard_count(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    with pytest.raises(MergeError, match=r"shard count differs: .* 0/2, .* 1/3"):
        merge([runs("2/0"), runs("3/1")], tmp_path / "M", harness=harness)


@pytest.mark.parametrize("where", ["existing", "input"])
def test_merge_never_overwrites(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path, where: str
) -> None:
    dirs = _copy(shard_dirs(runs, 2), tmp_path)
    out = dirs[0] if where == "input" else tmp_path / "M"
    if where == "existing":
        merge(dirs, out, harness=harness)
    with pytest.raises(MergeError, match="new (folder|--output_path)"):
        merge(dirs, out, harness=harness)


def test_allow_partial_merges_and_records_it(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    dirs = _copy(shard_dirs(runs, 3), tmp_path)
    _drop_a_sample(dirs)  # shard 1/3 lost a sample, shard 2/3 is not given
    result = merge(dirs[:2], tmp_path / "M", allow_partial=True, harness=harness)
    written = json.loads((tmp_path / "M" / "results.json").read_text())
    assert written["partial"] is True and result.partial
    assert written["merged"]["missing_shards"] == ["2/3"]
    [(path, gaps)] = written["merged"]["incomplete"].items()
    assert path == str(dirs[1]) and sum(want - have for have, want in gaps.values()) == 1
    have = len(read_samples(dirs[0] / "samples.jsonl")) + len(read_samples(dirs[1] / "samples.jsonl"))
    assert sum(r["n"] for r in written["results"].values()) == have


def test_resume_refuses_another_shard(runs: Callable[[str], Path], harness: Harness, tmp_path: Path) -> None:
    out = Path(shutil.copytree(runs("2/0"), tmp_path / "A"))
    config = dataclasses.replace(BASE, output_path=str(out), shard="1/2", resume=True)
    with pytest.raises(RunDirError, match="--resume: shard differs"):
        evaluate(config, harness, show_progress=False)


def test_killed_shard_resumed_and_merged_loses_and_duplicates_nothing(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    slow = dataclasses.replace(BASE, model_args={"delay": "0.05"})
    out = tmp_path / "A"
    argv = ["eval", "--tasks", "all", "--model", "scripted:random", "--model_args", "delay=0.05"]
    argv += ["--seed", "1", "--limit", str(LIMIT), "--shard", "0/2", "--batch_size", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *argv, "--output_path", str(out), "--no_progress"]
    )
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not samples.exists() or samples.read_text().count("\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_with = samples.read_text().count("\n")
    assert 3 <= killed_with < len(read_samples(runs("2/0") / "samples.jsonl"))
    with samples.open("a") as fh:
        fh.write('{"key": "vstar/torn')  # a write the kill cut short
    with pytest.warns(UserWarning, match="dropping a torn last line"):
        evaluate(
            dataclasses.replace(slow, output_path=str(out), shard="0/2", resume=True),
            harness,
            show_progress=False,
        )
    evaluate(
        dataclasses.replace(slow, output_path=str(tmp_path / "B"), shard="1/2"), harness, show_progress=False
    )
    merge([out, tmp_path / "B"], tmp_path / "M", harness=harness)
    keys = [json.loads(line)["key"] for line in (tmp_path / "M" / "samples.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 4 * LIMIT
    unsharded, u_lines = load(runs("U"))
    merged, m_lines = load(tmp_path / "M")
    assert m_lines == u_lines
    skip = {"fingerprint"}  # the slow run's model_args carry delay=0.05; the results do not
    assert {k: v for k, v in comparable(merged).items() if k not in skip} == {
        k: v for k, v in comparable(unsharded).items() if k not in skip
    }


def test_cli_shard_and_merge(tmp_path: Path) -> None:
    """The acceptance commands, black-box through ``python -m harness`` (a small --limit)."""

    def harness_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300
        )

    common = ["--tasks", "vstar,tallyqa", "--model", "scripted:oracle", "--data", "synthetic", "--limit", "4"]
    for shard, name in (("0/2", "A"), ("1/2", "B"), (None, "U")):
        extra = ["--shard", shard] if shard else []
        proc = harness_cli("eval", *common, *extra, "--output_path", str(tmp_path / name), "--no_progress")
        assert proc.returncode == 0, proc.stderr
    proc = harness_cli(
        "merge", str(tmp_path / "A"), str(tmp_path / "B"), "--output_path", str(tmp_path / "M")
    )
    assert proc.returncode == 0, proc.stderr
    assert "merged 2 of 2 shards" in proc.stdout
    merged, m_lines = load(tmp_path / "M")
    unsharded, u_lines = load(tmp_path / "U")
    assert m_lines == u_lines and comparable(merged) == comparable(unsharded)
    refused = harness_cli(
        "merge", str(tmp_path / "A"), str(tmp_path / "A"), "--output_path", str(tmp_path / "X")
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "shard 0/2 appears twice" in refused.stderr
    bad = harness_cli("eval", *common, "--shard", "2/2", "--no_progress")
    assert bad.returncode == 2 and "--shard" in bad.stderr
    (tmp_path / "F").write_text("mine")
    into_file = harness_cli(
        "merge", str(tmp_path / "A"), str(tmp_path / "B"), "--output_path", str(tmp_path / "F")
    )
    assert into_file.returncode == 2 and into_file.stderr.count("\n") == 1, into_file.stderr
    assert "is a file" in into_file.stderr and (tmp_path / "F").read_text() == "mine"


def test_allow_partial_merges_an_unfinished_shard(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    dirs = _copy(shard_dirs(runs, 2), tmp_path)
    _unfinished(dirs)  # killed: run_config.json and samples.jsonl, no results.json
    result = merge(dirs, tmp_path / "M", allow_partial=True, harness=harness)
    assert result.partial and result.merged is not None
    gaps = result.merged["incomplete"][str(dirs[1])]
    assert all(want is None for _, want in gaps.values())  # its expected counts are unknown
    assert sum(r.n for r in result.results.values()) == 4 * LIMIT  # yet no sample was lost


def test_merge_copies_no_crop_from_outside_a_shard(
    runs: Callable[[str], Path], harness: Harness, tmp_path: Path
) -> None:
    """A shard's samples.jsonl is untrusted: a `saved` crop name leading out of crops/ is neither
    read from outside the shard nor written outside the merge output (docs/reliability.md)."""
    dirs = _copy(shard_dirs(runs, 2), tmp_path / "shards")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"SECRET")
    path = dirs[0] / "samples.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    escape = os.path.relpath(secret, dirs[0] / "crops")
    rows[0]["trajectory"]["turns"][0]["observation"] = {
        **(rows[0]["trajectory"]["turns"][0].get("observation") or {"kind": "crop", "tool": "x", "text": ""}),
        "saved": [escape, "../../../escaped.png"],
    }
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out" / "merged"
    with pytest.warns(UserWarning, match="leads out of crops/; not copied"):
        merge(dirs, out, harness=harness)
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path / "out" / "escaped.png").exists()
    copied = [p for p in out.rglob("*") if p.is_file() and p.read_bytes() == b"SECRET"]
    assert copied == []
