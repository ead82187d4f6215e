"""examples/plugin: an out-of-tree package adding a task and a tool through entry points.

The package is installed (``pip install --no-deps --target``) into a temporary folder put on
``PYTHONPATH`` of black-box ``harness`` subprocesses, with entry-point autoload on, exactly as a
user's ``pip install`` would make it visible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        cwd=build,
    )
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH", "")]))
    return env


def _harness(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_installed_plugin_task_is_listed_and_oracle_scores_one(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    listed = _harness(plugin_env, "tasks", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "colorpatch" in listed.stdout
    run = _harness(
        plugin_env,
        "eval",
        "--tasks",
        "colorpatch",
        "--model",
        "scripted:oracle",
        "--limit",
        "6",
        "--output_path",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    metrics = json.dumps(result)
    assert '"colorpatch"' in metrics
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6
    assert all(s["score"]["score"] == 1.0 for s in samples), [s["score"] for s in samples]
    # the oracle zoomed first: every trajectory made a crop call
    assert all(s["trajectory"]["turns"][0]["tool_call"]["name"] == "crop_image_normalized" for s in samples)


def test_installed_plugin_tool_is_advertised_and_runs(plugin_env: dict[str, str], tmp_path: Path) -> None:
    call = '<tool_call>\n{"name": "mirror_image", "arguments": {"target_image": 1}}\n</tool_call>'
    bad = '<tool_call>\n{"name": "mirror_image", "arguments": {"target_image": 9}}\n</tool_call>'
    replies = {"colorpatch/0": [call, "\\boxed{red}"], "colorpatch/1": [bad, "\\boxed{red}"]}
    replay = tmp_path / "replies.json"
    replay.write_text(json.dumps(replies))
    run = _harness(
        plugin_env,
        "eval",
        "--tasks",
        "colorpatch",
        "--model",
        f"scripted:replay:{replay}",
        "--limit",
        "2",
        "--output_path",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    samples = {
        s["trajectory"]["sample_id"]: s["trajectory"]
        for s in map(json.loads, (tmp_path / "run" / "samples.jsonl").read_text().splitlines())
    }
    assert "mirror_image" in samples["0"]["system"]
    ok, err = samples["0"]["turns"][0]["observation"], samples["1"]["turns"][0]["observation"]
    assert ok["tool"] == "mirror_image" and ok["error"] is None
    w, h = ok["size"]  # the input image as the model saw it (smart-resized near 1200x900), mirrored
    assert abs(w - 1200) <= 28 and abs(h - 900) <= 28
    assert ok["text"] == f"\nHere is image 1 mirrored (Image Size: {w}x{h}):"
    assert err["kind"] == "error" and "target_image must be an image number from 1 to 1" in err["error"]
