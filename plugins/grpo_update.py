"""One collection's updates in ``curiosity_grpo`` (:func:`optimise`): rewards, group advantages,
the group filter and refill, then the optimiser steps of the clipped loss; and the step's log."""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .grpo_importance import ISStats
from .grpo_loss import LossSpec, grpo_loss, record_old_logps
from .rewards import group_advantages, outcome_of, refill_order, rewards

if TYPE_CHECKING:
    from .grpo_collect import Rollout
    from .grpo_config import GRPOTrainConfig


def step_log(
    step: int, rolls: Sequence[Rollout], parts: Sequence[Any], advantages: Sequence[float | None]
) -> dict[str, Any]:
    """The per-step metrics written to train_log.jsonl."""
    n = max(len(rolls), 1)
    groups = {r.group for r in rolls}
    kept = {r.group for r, a in zip(rolls, advantages, strict=True) if a is not None}
    return {
        "step": step,
        "rollouts": len(rolls),
        "reward": sum(p.total for p in parts) / n,
        "reward_correctness": sum(p.correctness for p in parts) / n,
        "reward_curiosity": sum(p.curiosity for p in parts) / n,
        "reward_efficiency": sum(p.efficiency for p in parts) / n,
        "accuracy": sum(r.score.score for r in rolls) / n,
        "pixel_reasoning_rate": sum(r.trajectory.n_ops > 0 for r in rolls) / n,
        "ops_per_rollout": sum(r.trajectory.n_ops for r in rolls) / n,
        "groups": len(groups),
        "groups_dropped": len(groups - kept),
    }


def importance_cap(config: GRPOTrainConfig) -> float | None:
    """The vLLM importance-sampling weight's cap, or ``None`` when the correction is off (hf
    generation, or ``vllm_importance_sampling_correction: false``)."""
    if config.use_vllm and config.vllm_importance_sampling_correction:
        return config.vllm_importance_sampling_cap
    return None


def importance_log(
    stats: ISStats, rolls: Sequence[Rollout], step: int, accelerator: Any = None
) -> dict[str, Any]:
    """The step's importance-sampling metrics, with the count of assistant turns left without
    the correction because their tokens did not line up with the engine's (and a warning)."""
    from .grpo_parallel import reduce_sum

    out = stats.log(accelerator)
    (bad,) = reduce_sum(accelerator, [sum(r.misaligned for r in rolls if r.local)])
    out["is_turns_misaligned"] = int(bad)
    for r in rolls:
        r.misaligned = 0
    if bad and (accelerator is None or accelerator.is_main_process):
        warnings.warn(
            f"curiosity_grpo: step {step}: {int(bad)} assistant turn(s) re-encode to tokens other than "
            "the engine sampled: no vLLM importance-sampling correction on them",
            stacklevel=2,
        )
    return out


def plan_updates(n_rollouts: int, update_batch_size: int) -> int:
    """Optimiser updates per collection of ``n_rollouts`` (after the refill)."""
    if update_batch_size <= 0:
        return 1
    return max(1, -(-n_rollouts // update_batch_size))


def optimise(
    model: Any,
    processor: Any,
    optimizer: Any,
    scheduler: Any,
    rolls: Sequence[Rollout],
    config: GRPOTrainConfig,
    step: int,
    scoring: Any = None,
    accelerator: Any = None,
) -> dict[str, Any]:
    """One collection's updates on finished rollouts: rewards, group advantages, the group
    filter and refill, then ``plan_updates`` optimiser steps of the clipped loss; its log."""
    import torch

    from harness.scoring.modes import official

    outcomes = [
        outcome_of(
            r.spec, r.sample, r.trajectory, r.group, scoring or official, config.scoring, config.correctness
        )
        for r in rolls
    ]
    parts = rewards(outcomes, config.curiosity())
    advantages = group_advantages([p.total for p in parts], [o.group for o in outcomes], config.filter())
    kept = [(r, a) for r, a in zip(rolls, advantages, strict=True) if a is not None]
    seed = config.seed * 1_000_003 + step
    if kept and config.refill:
        kept = [kept[i] for i in refill_order(len(kept), len(rolls), seed)]
    n_updates = plan_updates(len(kept) or len(rolls), config.update_batch_size)
    size = -(-len(kept) // n_updates) if kept else 0
    unique = list({id(r): r for r, _ in kept}.values())
    if kept and n_updates > 1:
        model.eval()
        record_old_logps(
            model, processor, unique, config.forward_batch_size, config.group_by_length, accelerator
        )
        random.Random(seed).shuffle(kept)  # the released replay-buffer DataLoader shuffles
    spec = LossSpec(
        (config.clip_low, config.clip_high),
        config.loss_agg,
        config.loss_constant,
        config.micro_batch_size,
        is_cap=importance_cap(config),
        forward_batch_size=config.forward_batch_size,
        group_by_length=config.group_by_length,
    )
    stats = ISStats()
    # the optimiser's parameters: under FSDP, model.parameters() after a forward without a
    # backward (record_old_logps) are the root module's unsharded tensors, which get no .grad
    params = [p for group in optimizer.param_groups for p in group["params"]]
    updates = []
    for k in range(n_updates):
        batch = kept[k * size : (k + 1) * size]
        update: dict[str, Any] = {"rollouts": len(batch), "lr": scheduler.get_last_lr()[0]}
        if batch:
            model.train()
            optimizer.zero_grad()
            metrics = grpo_loss(model, processor, batch, spec, accelerator, stats)
            max_norm = config.max_grad_norm if config.max_grad_norm > 0 else float("inf")
            if accelerator is not None:
                norm = accelerator.clip_grad_norm_(params, max_norm)
            else:
                norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            optimizer.step()
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP: a DTensor
            update.update(loss=metrics["loss"], grad_norm=float(norm))
            update.update(
                clipped_fraction=metrics["clipped_fraction"], ratio_max_dev=metrics["ratio_max_dev"]
            )
        with warnings.catch_warnings():  # no optimiser step when every group was dropped
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            scheduler.step()
        updates.append(update)
    model.eval()
    entry = step_log(step, rolls, parts, advantages)
    if spec.is_cap is not None:
        entry.update(importance_log(stats, unique, step, accelerator))
    for r in rolls:
        r.old_logp = r.encoded = r.engine_logp = None
    losses = [u["loss"] for u in updates if "loss" in u]
    entry.update(
        loss=sum(losses) / len(losses) if losses else 0.0,
        lr=scheduler.get_last_lr()[0],
        reward_form=config.reward_form,
        correctness=config.correctness,
        rollouts_trained=len(kept),
        updates=updates,
    )
    if not kept:
        entry["warning"] = "every group was dropped (no reward variance): no update this step"
    return entry
