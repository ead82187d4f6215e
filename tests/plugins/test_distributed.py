"""Distributed training: the shipped accelerate configs, a real 2-process CPU (gloo) SFT run.

The DeepSpeed / FSDP configs are validated by parsing only (accelerate's own ``ClusterConfig``
reader, and every nested key must be an ``accelerate launch`` option): DeepSpeed is not installed
here and there is no GPU, so none of them is launched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_support import SMALL_LIMITS, free_port, needs_train

from harness.cli import main
from harness.trainer import accelerate_configs

CONFIGS = Path(__file__).resolve().parents[2] / "plugins" / "configs"
SHIPPED = {"deepspeed_zero2", "deepspeed_zero3", "fsdp", "multi_gpu"}
HAVE_ACCELERATE = all(importlib.util.find_spec(m) is not None for m in ("accelerate", "yaml"))
needs_accelerate = pytest.mark.skipif(not HAVE_ACCELERATE, reason="needs accelerate and PyYAML")


def test_shipped_configs_are_listed_by_train_help(capsys: pytest.CaptureFixture[str]) -> None:
    configs = accelerate_configs()
    assert set(configs) == SHIPPED and all(p.is_file() for p in configs.values())
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name, path in configs.items():
        assert f"{name}" in out and str(path) in out
    assert main(["train", "--accelerate-config", "fsdp"]) == 0
    assert capsys.readouterr().out.strip() == str(configs["fsdp"])
    assert main(["train", "--accelerate-config", "zero9"]) == 2
    assert "shipped: deepspeed_zero2, deepspeed_zero3, fsdp, multi_gpu" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "--plugin is required" in capsys.readouterr().err


@needs_accelerate
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_parses_with_accelerate(name: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    config = ClusterConfig.from_yaml_file(str(accelerate_configs()[name]))  # unknown top-level keys raise
    expected = {"deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP"}
    assert config.distributed_type.value == expected.get(name, "MULTI_GPU")
    options = {action.dest for action in launch_command_parser()._actions}
    nested = {**(config.deepspeed_config or {}), **(config.fsdp_config or {})}
    assert not [key for key in nested if key not in options]  # accelerate launch sets them as options
    if name.startswith("deepspeed"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


@needs_train
@pytest.mark.slow
def test_two_process_cpu_sft_writes_one_checkpoint(tmp_path: Path, tiny_model: Path) -> None:
    """``accelerate launch --multi_gpu --num_processes 2`` on CPU (gloo): 2 steps, one checkpoint."""
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("needs accelerate")
    ckpt = tmp_path / "ckpt"
    launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", str(free_port())]
    sets = [f"model={tiny_model}", f"output_dir={ckpt}", f"limits={SMALL_LIMITS}", "learning_rate=1e-2"]
    sets += ["n_samples=4", "max_steps=2"]
    harness_args = [
        "-m",
        "harness",
        "train",
        "--plugin",
        "trl_sft",
        "--config",
        str(CONFIGS / "trl_sft.yaml"),
    ]
    harness_args += [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", *launch, *harness_args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((ckpt / "harness_train.json").read_text())
    assert info["num_processes"] == 2  # really two processes (not accelerate's 1-process fallback)
    # exactly one checkpoint: the final save in output_dir, no intermediate checkpoint-* folders
    assert [p.name for p in tmp_path.rglob("*.safetensors")] == ["model.safetensors"]
    assert not list(ckpt.glob("checkpoint-*"))
    log = [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2]
    out = tmp_path / "eval"
    argv = ["eval", "--tasks", "vstar", "--model", f"hf:{ckpt}", "--limit", "1", "--limits", SMALL_LIMITS]
    assert main([*argv, "--output_path", str(out), "--no_progress"]) == 0
    assert json.loads((out / "results.json").read_text())["results"]["vstar"]["n"] == 1


# curiosity_grpo under accelerate launch (2 CPU processes) equals the single-process run:
# tests/plugins/test_grpo_distributed.py
