"""Data-parallel curiosity_grpo under ``accelerate launch`` on the CPU (2 gloo processes): the
same rollouts, train log and parameters as the single-process run with the same global batch,
and checkpoints written (the acceptance command of issue 13)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_ops import _install_parity_scoring
from train_support import SMALL_LIMITS, free_port, needs_train, train_log

pytestmark = [needs_train, pytest.mark.slow]


def test_two_process_grpo_equals_one_process(tmp_path: Path, tiny_model: Path) -> None:
    import torch
    from safetensors.torch import load_file

    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("needs accelerate")
    site = tmp_path / "site"
    _install_parity_scoring(site)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("HARNESS_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])

    def harness_args(out: Path) -> list[str]:
        sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "learning_rate=1e-2"]
        sets += ["n_samples=4", "prompts_per_step=2", "num_generations=2", "max_steps=2", "save_every=1"]
        sets += [
            "correctness=binary",
            "scoring=parity",
            "progress=false",
            "device=cpu",
            "loss_agg=token_mean",
            "update_batch_size=2",  # 2 updates per collection: uneven splits, collection-time log-probs
        ]
        return [
            "-m",
            "harness",
            "train",
            "--plugin",
            "curiosity_grpo",
            *[x for s in sets for x in ("--set", s)],
        ]

    one = tmp_path / "one"
    proc = subprocess.run(
        [sys.executable, *harness_args(one)],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = tmp_path / "two"
    launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", str(free_port())]
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.accelerate_cli",
        "launch",
        *launch,
        *harness_args(two),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=500, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((two / "harness_train.json").read_text())["num_processes"] == 2
    assert (two / "checkpoints" / "step-1" / "random_states_1.pkl").is_file()  # both processes' RNG

    a, b = train_log(one), train_log(two)
    exact = ["step", "rollouts", "reward", "accuracy", "groups", "groups_dropped", "ops_per_rollout", "lr"]
    assert [[e[k] for k in exact] for e in a] == [[e[k] for k in exact] for e in b]  # the same rollouts
    assert any(e["loss"] != 0.0 for e in a)
    for x, y in zip(a, b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-4, abs=1e-7)
    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-5
    assert any(not torch.equal(wa[k], load_file(str(tiny_model / "model.safetensors"))[k]) for k in wa)
