"""``curiosity_grpo``: GRPO over the harness's own rollout, with the curiosity-driven reward.

Why not TRL's GRPOTrainer: with ``environment_factory`` TRL renders tool results as ``tool``-role
messages through the chat template's tool branch, while the eval protocol (REFERENCE section 2)
shows observations as *user* turns with the crop images; TRL 1.16.0 also rejects the stock
Qwen2.5-VL template and ``rollout_func`` cannot carry mid-trajectory images into the loss. The
training transcripts and token ids would differ from ``harness eval``'s. So this trainer is a small
loop (about 150 lines) around :func:`harness.rollout.rollout` itself, on ``accelerate``:

1. **Rollout** = ``harness.rollout.rollout`` verbatim (same Episode, tools, limits, per-sample
   seeds) with the model behind the hf eval backend, ``num_generations`` times per prompt
   (run seeds ``base + k``); a thin policy wrapper sets the published sampling (temperature 1.0 on
   the first turn, 0.9 later, top-p 0.95) and records each episode's final conversation.
2. **Reward** = the eval scorer (``score_trajectory``) + curiosity bonus + efficiency penalty
   (:mod:`harness_plugins.rewards`, paper or released form), groups keyed by the sample key.
3. **Advantage** = reward - group mean (no std division); zero-variance groups are dropped.
4. **Loss** = token-level clipped surrogate with asymmetric clipping (0.2 / 0.35), no KL term, on
   the assistant tokens of each conversation encoded exactly as eval encodes it (tokens.py).

Every step appends one JSON line to ``OUTPUT_DIR/train_log.jsonl``: reward parts, RaPR (rate of
pixel-space reasoning), ops per rollout, accuracy, groups kept/dropped, loss, learning rate.
The checkpoint (model + processor) loads with ``harness eval --model hf:OUTPUT_DIR``.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness import hookimpl
from harness.policy import Policy, Reply, Request
from harness.records import Sample, SampleScore, Trajectory
from harness.trainer import TrainerSpec

from .rewards import CuriosityConfig, RewardForm, group_advantages, outcome_of, rewards

if TYPE_CHECKING:
    from harness.episode import Message
    from harness.plugins import Harness
    from harness.rollout import RolloutConfig
    from harness.task import TaskSpec
    from harness.tools import ToolSpec

INSTALL_HINT = "curiosity_grpo needs the train extra: pip install 'pixel-harness[hf,train]'"


@dataclass
class GRPOTrainConfig:
    """Config keys of ``harness train --plugin curiosity_grpo``; defaults = the published settings."""

    model: str = "@tiny"  # hf path or hub id; @tiny = the embedded tiny model
    output_dir: str = "runs/curiosity_grpo"
    task: str = "vstar"
    data: str = "synthetic:2"  # training prompts (as --data); keep eval's samples out
    n_samples: int = 16
    limits: str = ""  # episode limits key=value,... (as eval's --limits; max_new_tokens bounds a turn)
    scoring: str = "official"  # the eval scoring mode used as the correctness term
    max_steps: int = 2
    prompts_per_step: int = 2
    num_generations: int = 8  # G
    learning_rate: float = 1e-6
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    clip_low: float = 0.2
    clip_high: float = 0.35
    temperature_first: float = 1.0
    temperature_later: float = 0.9
    top_p: float = 0.95
    reward_form: RewardForm = "paper"
    H: float = 0.3
    alpha: float = 0.5
    beta: float = 0.05
    N: int = 1
    c_image: float = 0.25 / 2.0
    c_video: float = 0.25 / 1.5
    freeze_vision: bool = True
    device: str = "auto"
    seed: int = 0

    def curiosity(self) -> CuriosityConfig:
        return CuriosityConfig(
            self.reward_form, self.H, self.alpha, self.beta, self.N, self.c_image, self.c_video
        )


@dataclass
class Rollout:
    """One finished episode of a group: its record, final conversation and group id."""

    spec: TaskSpec
    group: str
    sample: Sample
    trajectory: Trajectory
    score: SampleScore
    messages: list[Message]


class Recorder:
    """Wraps a policy: optional per-turn sampling, and each episode's last request + reply."""

    def __init__(
        self,
        inner: Policy,
        first: float | None = None,
        later: float | None = None,
        top_p: float | None = None,
    ) -> None:
        self.inner, self.first, self.later, self.top_p = inner, first, later, top_p
        self.name = inner.name
        self.last: dict[tuple[str, int], tuple[Request, Reply]] = {}

    def _sampling(self, r: Request) -> Request:
        if self.first is None or self.later is None:
            return r
        temperature = self.first if r.turn == 0 else self.later
        top_p = self.top_p if self.top_p is not None else r.sampling.top_p
        return dataclasses.replace(
            r, sampling=dataclasses.replace(r.sampling, temperature=temperature, top_p=top_p)
        )

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        requests = [self._sampling(r) for r in requests]
        replies = self.inner.generate(requests)
        for r, reply in zip(requests, replies, strict=False):
            self.last[(r.sample.key, r.seed)] = (r, reply)
        return replies

    def conversation(self, sample: Sample, seed: int) -> list[Message]:
        """The episode's final messages: its last request plus the reply that ended it."""
        request, reply = self.last[(sample.key, seed)]
        return [*request.messages, {"role": "assistant", "content": [{"type": "text", "text": reply.text}]}]


def collect(
    spec: TaskSpec,
    samples: Sequence[Sample],
    policy: Recorder,
    tools: Sequence[ToolSpec],
    config: RolloutConfig,
    generations: int,
) -> list[Rollout]:
    """``generations`` rollouts of every sample through ``harness.rollout.rollout`` (run seeds
    ``config.seed + k``), each with its final conversation; group id = the sample key."""
    from harness.rollout import rollout, sample_seed

    out = []
    for k in range(generations):
        run = dataclasses.replace(config, seed=config.seed + k)
        for rec in rollout([(spec, s) for s in samples], policy, tools, run):
            if not rec.trajectory.turns:  # media error: nothing was generated
                continue
            messages = policy.conversation(rec.sample, sample_seed(run.seed, rec.sample.key))
            out.append(Rollout(spec, rec.sample.key, rec.sample, rec.trajectory, rec.score, messages))
    return out


def grpo_loss(
    model: Any, processor: Any, batch: Sequence[tuple[Rollout, float]], clip: tuple[float, float]
) -> float:
    """Backpropagate the clipped surrogate (token-level mean over the batch); return its value."""
    import torch

    from .tokens import encode_with_mask

    encoded = [(encode_with_mask(processor, r.messages), a) for r, a in batch]
    n_tokens = sum(int((e.labels != -100).sum()) for e, _ in encoded) or 1
    total = 0.0
    device = next(model.parameters()).device
    for e, advantage in encoded:
        inputs = {k: v.to(device) for k, v in e.inputs.items()}
        logits = model(**inputs).logits[0, :-1].float()
        target = e.labels[1:].to(device)
        keep = target != -100
        logp = torch.log_softmax(logits[keep], dim=-1).gather(1, target[keep].unsqueeze(1)).squeeze(1)
        ratio = torch.exp(logp - logp.detach())  # one update per batch: the sampling policy is this one
        a = torch.tensor(advantage, device=device)
        surrogate = torch.minimum(ratio * a, torch.clamp(ratio, 1 - clip[0], 1 + clip[1]) * a)
        loss = -surrogate.sum() / n_tokens
        loss.backward()  # type: ignore[no-untyped-call]
        total += float(loss.detach())
    return total


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


def optimise(
    model: Any,
    processor: Any,
    optimizer: Any,
    scheduler: Any,
    rolls: Sequence[Rollout],
    config: GRPOTrainConfig,
    step: int,
    scoring: Any = None,
) -> dict[str, Any]:
    """One optimiser step on finished rollouts: rewards, group advantages, clipped loss; its log."""
    from harness.scoring_modes import official

    outcomes = [
        outcome_of(r.spec, r.sample, r.trajectory, r.group, scoring or official, config.scoring)
        for r in rolls
    ]
    parts = rewards(outcomes, config.curiosity())
    advantages = group_advantages([p.total for p in parts], [o.group for o in outcomes])
    kept = [(r, a) for r, a in zip(rolls, advantages, strict=True) if a is not None]
    model.train()
    optimizer.zero_grad()
    loss = grpo_loss(model, processor, kept, (config.clip_low, config.clip_high)) if kept else 0.0
    optimizer.step()
    scheduler.step()
    model.eval()
    entry = step_log(step, rolls, parts, advantages)
    entry.update(loss=loss, lr=scheduler.get_last_lr()[0], reward_form=config.reward_form)
    return entry


def train(config: GRPOTrainConfig, harness: Harness) -> Path:
    """Run ``max_steps`` GRPO steps and save model + processor to ``output_dir``."""
    try:
        import torch
        from accelerate import Accelerator
        from transformers import get_scheduler
    except ImportError as exc:
        raise ValueError(INSTALL_HINT) from exc
    from harness.backends.hf import HFOptions, HFPolicy
    from harness.data import load_samples
    from harness.limits import Limits
    from harness.rollout import RolloutConfig

    from .trl_sft import freeze_vision_tower

    if config.num_generations < 2:
        raise ValueError("curiosity_grpo: num_generations must be >= 2 (a group needs variance)")
    torch.manual_seed(config.seed)
    spec = harness.task(config.task)
    samples = load_samples(spec, config.data, config.n_samples)
    policy = HFPolicy(config.model, HFOptions(device=config.device, dtype="float32"))
    model, processor = policy.model, policy.processor
    if config.freeze_vision:
        freeze_vision_tower(model)
    accelerator = Accelerator(cpu=policy.device.type == "cpu")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    scheduler = get_scheduler(
        config.lr_schedule, optimizer, num_warmup_steps=0, num_training_steps=config.max_steps
    )
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    recorder = Recorder(policy, config.temperature_first, config.temperature_later, config.top_p)
    rollout_config = RolloutConfig(
        limits=Limits.parse(config.limits),
        batch_size=config.prompts_per_step,
        scoring=harness.scoring_mode(config.scoring),
        scoring_name=config.scoring,
    )
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train_log.jsonl"
    log_path.write_text("", encoding="utf-8")
    order = list(samples)
    random.Random(config.seed).shuffle(order)
    for step in range(config.max_steps):
        start = (step * config.prompts_per_step) % len(order)
        batch = (order + order)[start : start + config.prompts_per_step]
        model.eval()
        run = dataclasses.replace(
            rollout_config, seed=config.seed * 1_000_003 + step * config.num_generations
        )
        rolls = collect(spec, batch, recorder, harness.tools, run, config.num_generations)
        recorder.last.clear()
        entry = optimise(model, processor, optimizer, scheduler, rolls, config, step, rollout_config.scoring)
        with log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        print(json.dumps(entry))
    model.eval()
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    (out / "harness_train.json").write_text(
        json.dumps({"trainer": "curiosity_grpo", "config": asdict(config)}, indent=2), encoding="utf-8"
    )
    return out


@hookimpl
def harness_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "curiosity_grpo",
            GRPOTrainConfig,
            train,
            "GRPO over the harness rollout with the curiosity reward",
        )
    ]
