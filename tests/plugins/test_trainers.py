"""Both trainers take real optimiser steps on the CPU with the tiny model; checkpoints load in eval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from train_support import SMALL_LIMITS

from harness.cli import main
from harness.data import load_samples
from harness.loop.limits import Limits
from harness.loop.policy import Policy
from harness.loop.rollout import RolloutConfig
from harness.plugins import Harness
from harness_plugins.curiosity_grpo import GRPOTrainConfig, Recorder, collect, optimise

CONFIGS = Path(__file__).resolve().parents[2] / "plugins" / "configs"


def _weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(next(path.glob("*.safetensors"))))


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in before if not bool((before[k] == after[k]).all())}


def _eval(tmp_path: Path, ckpt: Path) -> None:
    out = tmp_path / f"eval-{ckpt.name}"
    argv = ["eval", "--tasks", "vstar", "--model", f"hf:{ckpt}", "--limit", "1", "--limits", SMALL_LIMITS]
    assert main([*argv, "--output_path", str(out), "--no_progress"]) == 0
    assert (out / "results.json").is_file()


@pytest.mark.parametrize("plugin", ["trl_sft", "curiosity_grpo"])
def test_train_cli_two_steps_then_eval(tmp_path: Path, tiny_model: Path, plugin: str) -> None:
    ckpt = tmp_path / plugin
    sets = [f"model={tiny_model}", f"output_dir={ckpt}", f"limits={SMALL_LIMITS}", "learning_rate=1e-2"]
    if plugin == "trl_sft":
        sets += ["n_samples=2", "max_steps=2"]
    else:
        sets += ["n_samples=2", "max_steps=2", "prompts_per_step=1", "num_generations=2"]
    argv = ["train", "--plugin", plugin, "--config", str(CONFIGS / f"{plugin}.yaml")]
    assert main(argv + [x for s in sets for x in ("--set", s)]) == 0
    log = (ckpt / "train_log.jsonl").read_text().splitlines()
    assert len([line for line in log if '"loss"' in line]) >= 2
    if plugin == "trl_sft":  # SFT always has a gradient: the weights moved (vision tower frozen)
        changed = _changed(_weights(tiny_model), _weights(ckpt))
        assert changed and not any("visual" in k for k in changed)
    _eval(tmp_path, ckpt)


@pytest.fixture
def grpo_setup(tiny_model: Path) -> Any:
    import torch
    from transformers import get_scheduler

    from harness.backends.hf import HFOptions, HFPolicy

    policy = HFPolicy(str(tiny_model), HFOptions(device="cpu", dtype="float32"))
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    return policy, optimizer, get_scheduler("constant", optimizer)


def _rollouts(harness: Harness, policies: list[Policy]) -> list[Any]:
    spec = harness.task("vstar")
    samples = load_samples(spec, "synthetic", 2)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS))
    return [r for p in policies for r in collect(spec, samples, Recorder(p), harness.tools, config, 1)]


def test_grpo_two_optimiser_steps_move_the_weights(
    grpo_setup: Any, harness_instance: Harness, scripted_policy: Callable[[str], Policy]
) -> None:
    policy, optimizer, scheduler = grpo_setup
    # oracle (correct, one zoom) and a no-tool wrong answerer share each group: rewards differ
    rolls = _rollouts(harness_instance, [scripted_policy("oracle"), scripted_policy("random")])
    before = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
    config = GRPOTrainConfig()
    logs = [
        optimise(policy.model, policy.processor, optimizer, scheduler, rolls, config, s) for s in range(2)
    ]
    assert _changed(before, policy.model.state_dict())
    for entry in logs:
        assert entry["rollouts"] == 4 and entry["groups"] == 2
        assert entry["accuracy"] == pytest.approx(sum(r.score.score for r in rolls) / 4)
        assert entry["pixel_reasoning_rate"] == sum(r.trajectory.n_ops > 0 for r in rolls) / 4
        assert {"reward_correctness", "reward_curiosity", "reward_efficiency", "ops_per_rollout"} <= set(
            entry
        )


def test_grpo_zero_variance_groups_give_no_update(
    grpo_setup: Any, harness_instance: Harness, scripted_policy: Callable[[str], Policy]
) -> None:
    policy, optimizer, scheduler = grpo_setup
    rolls = _rollouts(harness_instance, [scripted_policy("oracle"), scripted_policy("oracle")])
    before = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
    entry = optimise(policy.model, policy.processor, optimizer, scheduler, rolls, GRPOTrainConfig(), 0)
    assert entry["groups_dropped"] == entry["groups"] == 2
    assert entry["loss"] == 0.0
    assert not _changed(before, policy.model.state_dict())
