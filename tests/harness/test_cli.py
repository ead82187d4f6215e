"""Black-box tests of the real ``harness`` entry point (``python -m harness``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

TASKS = ("infovqa", "mvbench", "tallyqa", "vstar")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_oracle_scores_one_on_every_task(tmp_path: Path) -> None:
    out = tmp_path / "oracle"
    run(
        "eval",
        "--tasks",
        "all",
        "--model",
        "scripted:oracle",
        "--limit",
        "4",
        "--output_path",
        str(out),
        "--log_crops",
        "--no_progress",
    )
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == set(TASKS)
    for task, r in results["results"].items():
        assert r["value"] == 1.0, task
        assert r["n"] == 4
        assert r["tool_stats"]["pixel_reasoning_rate"] > 0
    rows = lines(out / "samples.jsonl")
    assert len(rows) == 16
    vstar = [r for r in rows if r["sample"]["task"] == "vstar"]
    assert all(
        any(
            t["tool_call"] and t["tool_call"]["name"] == "crop_image_normalized"
            for t in r["trajectory"]["turns"]
        )
        for r in vstar
    )
    saved = [
        s
        for r in rows
        for t in r["trajectory"]["turns"]
        if t["observation"]
        for s in t["observation"]["saved"]
    ]
    assert saved and all((out / "crops" / s).is_file() or (out / s).is_file() for s in saved)
    assert results["versions"] == {"infovqa": 1, "mvbench": 2, "tallyqa": 1, "vstar": 1}
    assert "pixel-harness" in results["packages"]


def test_random_is_repeatable_and_near_chance(tmp_path: Path) -> None:
    args = (
        "eval",
        "--tasks",
        "vstar",
        "--model",
        "scripted:random",
        "--limit",
        "60",
        "--seed",
        "1",
        "--no_progress",
    )
    run(*args, "--output_path", str(tmp_path / "a"))
    run(*args, "--output_path", str(tmp_path / "b"))
    a = json.loads((tmp_path / "a" / "results.json").read_text())["results"]["vstar"]
    b = json.loads((tmp_path / "b" / "results.json").read_text())["results"]["vstar"]
    assert a["value"] == b["value"] and a["breakdown"] == b["breakdown"]
    assert 0.1 < a["value"] < 0.7
    key = lambda r: r["key"]  # noqa: E731
    assert sorted(lines(tmp_path / "a" / "samples.jsonl"), key=key) == sorted(
        lines(tmp_path / "b" / "samples.jsonl"), key=key
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--tasks", "vstr", "--model", "scripted:oracle"),
            "unknown task 'vstr' (did you mean vstar?); valid tasks: infovqa, mvbench, tallyqa, vstar",
        ),
        (("--tasks", "vstar", "--model", "gpt:x"), "unknown model backend 'gpt'; valid backends:"),
        (
            ("--tasks", "vstar", "--model", "scripted:oracle", "--episode_limits", "max_opz=1"),
            "unknown or malformed item",
        ),
        (("--tasks", "vstar", "--model", "scripted:oracle", "--data", "hubb"), "unknown --data source"),
        (("--tasks", "vstar", "--model", "scripted:oracle", "--resume"), "--resume needs --output_path"),
        (
            ("--tasks", "vstar", "--model", "scripted:oracle", "--scoring", "nope"),
            "unknown scoring mode 'nope'; valid modes: anls_paper, mvbench_official, official, pixel_reasoner",
        ),
    ],
)
def test_bad_input_gives_one_line_error(args: tuple[str, ...], message: str) -> None:
    proc = run("eval", *args, "--no_progress", check=False)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and message in err[0], proc.stderr


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    args = (
        "eval",
        "--tasks",
        "vstar",
        "--model",
        "scripted:oracle",
        "--limit",
        "2",
        "--output_path",
        str(tmp_path),
        "--no_progress",
    )
    run(*args)
    before = (tmp_path / "samples.jsonl").read_text()
    proc = run(*args, check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    assert (tmp_path / "samples.jsonl").read_text() == before


def test_tasks_and_plugins_commands() -> None:
    tasks = run("tasks").stdout
    for name in TASKS:
        assert name in tasks
    assert "direct_attributes" in tasks and "metric=anls" in tasks and "prompts=vcot,notool,official" in tasks
    plugins = run("plugins").stdout
    assert (
        "harness_tasks.vstar" in plugins
        and "harness_register_tasks" in plugins
        and "harness_register_tools" in plugins
    )


def test_killed_run_resumes_with_every_sample_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "eval",
        "--tasks",
        "vstar,mvbench",
        "--model",
        "scripted:random",
        "--model_args",
        "delay=0.05",
        "--limit",
        "40",
        "--seed",
        "3",
        "--batch_size",
        "4",
        "--output_path",
        str(out),
        "--no_progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if samples.exists() and samples.read_text().count("\n") >= 15:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = samples.read_text().count("\n")
    assert 15 <= partial < 80, "the run should have been killed part-way"
    assert not (out / "results.json").exists()
    run(*args, "--resume")
    keys = Counter(r["key"] for r in lines(samples))
    assert len(keys) == 80 and set(keys.values()) == {1}
    # Same samples and scores as an uninterrupted run.
    ref = tmp_path / "ref"
    run(*[a if a != str(out) else str(ref) for a in args])

    def scores(p: Path) -> dict[str, float]:
        return {r["key"]: r["score"]["score"] for r in lines(p / "samples.jsonl")}

    assert scores(out) == scores(ref)
    assert (
        json.loads((out / "results.json").read_text())["results"]
        == json.loads((ref / "results.json").read_text())["results"]
    )
