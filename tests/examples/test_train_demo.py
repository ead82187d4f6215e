"""examples/train_demo.sh (README "Does training move the numbers?") runs as written: with
DEMO_QUICK=1 every count shrinks (2 SFT steps, 1 GRPO step of 2 rollouts, 2 eval samples), so
each command of the recipe really runs, in about 90 s on 2 CPU cores, and the table is printed."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_demo.sh"
README = (SCRIPT.parents[1] / "README.md").read_text(encoding="utf-8")
MODELS = ("sft", "grpo-nobonus", "grpo-bonus", "grpo-bonus8x")
HAVE_TRAIN = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "trl", "yaml"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.skipif(not HAVE_TRAIN, reason="needs the train extra: pip install -e '.[hf,train]'")
def test_quick_demo_runs_every_command(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {**os.environ, "DEMO_QUICK": "1", "HARNESS": f"{sys.executable} -m harness"}
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = proc.stdout
    for model in MODELS:
        for folder in (f"eval-{model}", f"eval-{model}-t1"):
            results = json.loads((out / folder / "results.json").read_text())
            assert results["results"]["vstar"]["n"] == 2
        assert f"| {model} | greedy |" in table and f"| {model} | T=1.0 |" in table
    for model in MODELS[1:]:
        config = json.loads((out / model / "harness_train.json").read_text())["config"]
        assert config["model"] == str(out / "sft") and config["max_steps"] == 1
        assert len((out / model / "train_log.jsonl").read_text().splitlines()) == 1
    bonus = {m: json.loads((out / m / "harness_train.json").read_text())["config"] for m in MODELS[1:]}
    assert (bonus["grpo-nobonus"]["H"], bonus["grpo-bonus"]["H"], bonus["grpo-bonus8x"]["H"]) == (0, 0.3, 0.3)
    assert (bonus["grpo-bonus"]["c_image"], bonus["grpo-bonus8x"]["c_image"]) == (0.125, 1.0)
    assert json.loads((out / "model" / "harness_tiny.json").read_text())["size"] == "demo"
    steps = [line.split("\t")[0] for line in (out / "timings.tsv").read_text().splitlines()[1:]]
    assert steps[:2] == ["make-model", "sft"] and steps[-1] == "leaderboard" and len(steps) == 14
    assert (out / "report" / "leaderboard.md").is_file()
    assert "total:" in table
    again = subprocess.run(
        ["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 2 and "exists" in again.stderr  # never writes into an old folder


def test_readme_shows_the_demo_commands() -> None:
    section = README.split("### Does training move the numbers?")[1].split("\n## ")[0]
    for command in (
        "bash examples/train_demo.sh runs/demo",
        "harness make-tiny-model runs/demo/model --size demo",
        "--plugin trl_sft --config plugins/configs/demo_sft.yaml",
        "--plugin curiosity_grpo --config plugins/configs/demo_grpo.yaml",
        "--set H=0",
        "--set c_image=1.0",
        "--temperature 1.0",
    ):
        assert command in section, command
