"""Many processes: one shard per process from the launcher's rank and world size, merged by the
main process with ``harness merge``'s code.

The launch logic is tested in-process with stand-in processes (scripted policy, no torch). With
torch, transformers and accelerate installed, the tiny random-weight model is evaluated as 2 and 3
shards in-process, and by a real 2-process ``accelerate launch`` on CPU (gloo), and each merged
result must equal the single-process run sample for sample and metric for metric.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.loop.limits import Limits
from harness.plugins import Harness, make_plugin_manager
from harness.run.evaluate import EvalConfig, evaluate
from harness.run.launch import Process, evaluate_launched, launched_world_size
from harness.run.merge import merge
from harness.run.results import RunDirError

HAVE_STACK = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "torchvision", "accelerate"))
needs_stack = pytest.mark.skipif(
    not HAVE_STACK, reason="needs torch, transformers and accelerate: pip install -e '.[hf]'"
)
VOLATILE = ("config", "wall_seconds", "created", "merged", "git")
# Small enough for CPU: tiny images for the tiny model, short replies.
TINY_LIMITS = "max_new_tokens=8,min_pixels=3136,max_pixels=50176"


def comparable(run: Path) -> tuple[dict[str, Any], list[Any]]:
    """(results.json without run-specific keys, samples sorted by key without wall-clock seconds)."""
    results = json.loads((run / "results.json").read_text())
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return {k: v for k, v in results.items() if k not in VOLATILE}, sorted(
        (_no_seconds(r) for r in rows), key=lambda r: r["key"]
    )


def _no_seconds(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_no_seconds(v) for v in value]
    return value


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness(make_plugin_manager(autoload=False))


def stand_in(index: int, count: int, log: list[str]) -> Process:
    return Process(index, count, index == 0, wait_for_everyone=lambda: log.append(f"wait {index}"))


SCRIPTED = EvalConfig(tasks="vstar,mvbench", model="scripted:random", seed=3, limit=6)


def test_each_process_runs_its_shard_and_the_main_one_merges(harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    config = dataclasses.replace(SCRIPTED, output_path=str(out))
    log: list[str] = []
    # Process 1 first: the main process merges only after accelerate's barrier.
    assert evaluate_launched(config, harness, stand_in(1, 2, log), show_progress=False) is None
    merged = evaluate_launched(config, harness, stand_in(0, 2, log), show_progress=False)
    assert merged is not None and log == ["wait 1", "wait 0"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["shard-0-of-2", "shard-1-of-2"]
    evaluate(dataclasses.replace(SCRIPTED, output_path=str(tmp_path / "U")), harness, show_progress=False)
    assert comparable(out) == comparable(tmp_path / "U")
    # --resume reruns nothing that is done and merges again into OUT
    resumed = dataclasses.replace(config, resume=True)
    assert evaluate_launched(resumed, harness, stand_in(1, 2, log), show_progress=False) is None
    assert evaluate_launched(resumed, harness, stand_in(0, 2, log), show_progress=False) is not None
    assert comparable(out) == comparable(tmp_path / "U")


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"shard": "0/2"}, ValueError, r"--shard 0/2 cannot be combined with a 2-process launch"),
        ({"output_path": None}, ValueError, r"needs --output_path"),
    ],
)
def test_launch_refuses(
    harness: Harness, tmp_path: Path, changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    config = dataclasses.replace(SCRIPTED, **{"output_path": str(tmp_path / "OUT"), **changes})
    with pytest.raises(error, match=message):
        evaluate_launched(config, harness, stand_in(0, 2, []), show_progress=False)


def test_launch_never_overwrites_a_run(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "OUT").mkdir()
    (tmp_path / "OUT" / "samples.jsonl").write_text("{}\n")
    config = dataclasses.replace(SCRIPTED, output_path=str(tmp_path / "OUT"))
    with pytest.raises(RunDirError, match="already exists; pass --resume"):
        evaluate_launched(config, harness, stand_in(1, 2, []), show_progress=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, 1), ({"WORLD_SIZE": "4"}, 4), ({"WORLD_SIZE": "1"}, 1), ({"OMPI_COMM_WORLD_SIZE": "3"}, 3)],
)
def test_launched_world_size(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: int) -> None:
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launched_world_size() == expected


@pytest.fixture(scope="module")
def tiny() -> Path:
    if not HAVE_STACK:
        pytest.skip("needs torch, transformers and accelerate")
    from harness.backends.tiny import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="module")
def tiny_config(tiny: Path) -> EvalConfig:
    return EvalConfig(tasks="tallyqa", model=f"hf:{tiny}", limit=4, limits=Limits.parse(TINY_LIMITS))


@pytest.fixture(scope="module")
def tiny_unsharded(
    tiny_config: EvalConfig, harness: Harness, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "U"
    evaluate(dataclasses.replace(tiny_config, output_path=str(out)), harness, show_progress=False)
    return out


@needs_stack
@pytest.mark.parametrize("count", [2, 3])
def test_tiny_model_shards_merged_equal_the_unsharded_run(
    tiny_config: EvalConfig, tiny_unsharded: Path, harness: Harness, tmp_path: Path, count: int
) -> None:
    from harness.run.evaluate import build_policy

    policy = build_policy(harness, tiny_config)  # one model for every shard of this process
    dirs = [tmp_path / f"s{i}" for i in range(count)]
    for i, folder in enumerate(dirs):
        config = dataclasses.replace(tiny_config, output_path=str(folder), shard=f"{i}/{count}")
        evaluate(config, harness, show_progress=False, policy=policy)
    merge(dirs, tmp_path / "M", harness=harness)
    assert comparable(tmp_path / "M") == comparable(tiny_unsharded)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def accelerate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@needs_stack
@pytest.mark.slow
def test_two_process_accelerate_launch_equals_the_single_process_run(
    tiny_config: EvalConfig, tiny_unsharded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "OUT"
    launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    harness_args = ["-m", "harness", "eval", "--tasks", tiny_config.tasks, "--model", tiny_config.model]
    harness_args += ["--limit", "4", "--limits", TINY_LIMITS, "--output_path", str(out), "--no_progress"]
    proc = accelerate(*launch, *harness_args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["shard-0-of-2", "shard-1-of-2"]
    shards = [json.loads((out / d / "results.json").read_text()) for d in ("shard-0-of-2", "shard-1-of-2")]
    assert [s["shard"] for s in shards] == ["0/2", "1/2"]
    table_rows = [line for line in proc.stdout.splitlines() if line.startswith("tallyqa ")]
    assert len(table_rows) == 1  # only the main process prints: the merged table
    assert comparable(out) == comparable(tiny_unsharded)


@needs_stack
@pytest.mark.slow
def test_accelerate_launch_cpu_flag_completes(tiny_config: EvalConfig, tmp_path: Path) -> None:
    """``--cpu --num_processes 2`` (accelerate 1.x starts one process without MPI) completes."""
    out = tmp_path / "OUT"
    launch = ["--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no"]
    harness_args = ["-m", "harness", "eval", "--tasks", tiny_config.tasks, "--model", tiny_config.model]
    harness_args += ["--limit", "2", "--limits", TINY_LIMITS, "--output_path", str(out), "--no_progress"]
    proc = accelerate(*launch, *harness_args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "results.json").read_text())["results"]["tallyqa"]["n"] == 2
