"""The cluster recipes in examples/ run as written: the local ``xargs -P`` script for real, the
SLURM one with a stand-in ``sbatch`` that runs each submitted job at once on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HARNESS = f"{sys.executable} -m harness"
SETTINGS = {"TASKS": "vstar,tallyqa", "LIMIT": "4", "MODEL": "scripted:random", "DATA": "synthetic"}

# A stand-in for sbatch: "--array=A-B SCRIPT" runs SCRIPT once per index (as SLURM would, with
# SLURM_ARRAY_TASK_ID set), "--wrap=CMD" runs CMD; each prints a job id like sbatch --parsable.
FAKE_SBATCH = """#!/usr/bin/env bash
set -euo pipefail
array="" wrap="" script=""
for arg in "$@"; do
    case $arg in
        --array=*) array=${arg#--array=} ;;
        --wrap=*) wrap=${arg#--wrap=} ;;
        --*) ;;
        *) script=$arg ;;
    esac
done
echo "sbatch $*" >>"$SBATCH_LOG"
if [ -n "$wrap" ]; then bash -c "$wrap" >&2; echo "102;cluster"; exit 0; fi
for i in $(seq "${array%-*}" "${array#*-}"); do
    SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$(( ${array#*-} + 1 )) bash "$script" >&2
done
echo "101;cluster"
"""


def unsharded(tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    out = tmp_path / "U"
    argv = ["eval", "--tasks", SETTINGS["TASKS"], "--model", SETTINGS["MODEL"], "--limit", SETTINGS["LIMIT"]]
    subprocess.run(
        [sys.executable, "-m", "harness", *argv, "--output_path", str(out), "--no_progress"], check=True
    )
    return load(out)


def load(run: Path) -> tuple[dict[str, Any], list[str]]:
    results = json.loads((run / "results.json").read_text())
    keep = {k: v for k, v in results.items() if k not in {"config", "wall_seconds", "created", "merged"}}
    return keep, sorted((run / "samples.jsonl").read_text().splitlines())


def script(name: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(EXAMPLES / name)],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_local_xargs_script(tmp_path: Path) -> None:
    env = {**SETTINGS, "SHARDS": "3", "OUT": str(tmp_path / "runs"), "HARNESS": HARNESS}
    proc = script("local_xargs.sh", env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "runs").glob("shard-*-of-3")) == [
        "shard-0-of-3",
        "shard-1-of-3",
        "shard-2-of-3",
    ]
    assert load(tmp_path / "runs" / "merged") == unsharded(tmp_path)
    again = script("local_xargs.sh", env, tmp_path)  # rerun: shards resume (nothing left), merge rebuilt
    assert again.returncode == 0, again.stderr
    assert load(tmp_path / "runs" / "merged") == load(tmp_path / "U")


def test_local_xargs_script_fails_when_a_shard_fails(tmp_path: Path) -> None:
    env = {**SETTINGS, "OUT": str(tmp_path / "runs"), "HARNESS": HARNESS, "EXTRA": "--prompt no_such_mode"}
    proc = script("local_xargs.sh", env, tmp_path)
    assert proc.returncode != 0 and "failed; see" in proc.stderr
    assert not (tmp_path / "runs" / "merged").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_slurm_array_script_with_a_stand_in_sbatch(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    log = tmp_path / "sbatch.log"
    env = {**SETTINGS, "SHARDS": "2", "OUT": str(tmp_path / "runs"), "HARNESS": HARNESS}
    env |= {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_LOG": str(log)}
    proc = script("slurm_array.sh", env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "submitted array job 101 (2 shards" in proc.stdout and "merge job 102" in proc.stdout
    calls = log.read_text().splitlines()
    assert "--array=0-1" in calls[0] and "--dependency=afterok:101" in calls[1]
    assert load(tmp_path / "runs" / "merged") == unsharded(tmp_path)


SCALING = (EXAMPLES.parent / "docs" / "scaling-out.md").read_text(encoding="utf-8")  # moved from the README


@pytest.mark.parametrize(
    "command",
    [
        "--shard 0/2 --output_path A",
        "--shard 1/2 --output_path B",
        "harness merge A B --output_path M",
        "harness merge A A --output_path X",
        "accelerate launch --multi_gpu --num_processes 8 -m harness eval",
        "accelerate launch --multi_gpu --num_machines 2",
        "accelerate launch --multi_gpu --num_processes 2 -m harness eval",
        "accelerate launch --num_processes 2 --cpu -m harness eval",
        "--model_args tensor_parallel_size=4",
        "bash examples/local_xargs.sh",
        "bash examples/slurm_array.sh",
        "--allow-partial",
    ],
)
def test_readme_scaling_section_shows_each_command(command: str) -> None:
    assert command in SCALING
