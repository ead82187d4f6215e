"""The GRPO loss of ``curiosity_grpo``: token log-probabilities of a rollout's assistant turns,
the clipped surrogate and its aggregation over an update (:func:`grpo_loss`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .grpo_collect import Rollout
    from .grpo_importance import ISStats


def _encoded(processor: Any, roll: Rollout) -> Any:
    from .tokens import encode_with_mask

    if roll.encoded is None:
        roll.encoded = encode_with_mask(processor, roll.messages)
    return roll.encoded


def token_logps(model: Any, processor: Any, roll: Rollout) -> Any:
    """Log-probabilities of the rollout's assistant tokens under ``model`` (with grad if enabled)."""
    import torch

    e = _encoded(processor, roll)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in e.inputs.items()}
    logits = model(**inputs).logits[0, :-1].float()
    target = e.labels[1:].to(device)
    keep = target != -100
    return torch.log_softmax(logits[keep], dim=-1).gather(1, target[keep].unsqueeze(1)).squeeze(1)


def batch_logps(model: Any, processor: Any, rolls: Sequence[Rollout]) -> list[Any]:
    """:func:`token_logps` of several rollouts from one forward pass (right-padded together; the
    causal mask keeps every real token's logits those of its own forward, up to rounding).
    Conversations with inputs the collator does not know go one at a time."""
    import torch

    from .tokens import BATCHED_KEYS, collate

    if len(rolls) == 1:
        return [token_logps(model, processor, rolls[0])]
    rows = [_encoded(processor, r) for r in rolls]
    if any(set(r.inputs) - BATCHED_KEYS for r in rows):
        return [token_logps(model, processor, r) for r in rolls]
    tokenizer = getattr(processor, "tokenizer", processor)
    batch = collate(processor, tokenizer.pad_token_id or 0, rows)
    labels = batch.pop("labels")
    device = next(model.parameters()).device
    logits = model(**{k: v.to(device) for k, v in batch.items()}).logits[:, :-1]
    out = []
    for i in range(len(rolls)):
        target = labels[i, 1:].to(device)
        keep = target != -100
        row = torch.log_softmax(logits[i][keep].float(), dim=-1)
        out.append(row.gather(1, target[keep].unsqueeze(1)).squeeze(1))
    return out


def forward_groups(lengths: Sequence[int], size: int, by_length: bool) -> list[list[int]]:
    """Indices of the rollouts that share each forward pass: ``size`` at a time, in order, or,
    ``by_length``, the longest first so that similar lengths share a pass (less padding)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if by_length else list(range(len(lengths)))
    size = max(size, 1)
    return [order[k : k + size] for k in range(0, len(order), size)]


def _groups(processor: Any, rolls: Sequence[Rollout], size: int, by_length: bool) -> list[list[int]]:
    if size <= 1:
        return [[i] for i in range(len(rolls))]
    lengths = [int(_encoded(processor, r).inputs["input_ids"].shape[1]) for r in rolls]
    return forward_groups(lengths, size, by_length)


def padding_loss(model: Any, processor: Any, rolls: Sequence[Rollout]) -> Any:
    """A zero loss from one real forward pass (FSDP: a process with fewer passes than another
    runs these so that every process runs the same collectives): the first rollout's, or a
    two-token text when this process has none."""
    import torch

    if rolls:
        return token_logps(model, processor, rolls[0]).sum() * 0.0
    tokenizer = getattr(processor, "tokenizer", processor)
    ids = torch.full((1, 2), int(tokenizer.eos_token_id or 0), device=next(model.parameters()).device)
    return model(input_ids=ids).logits.float().sum() * 0.0


def record_old_logps(
    model: Any,
    processor: Any,
    rolls: Sequence[Rollout],
    forward_batch_size: int = 1,
    by_length: bool = True,
    accelerator: Any = None,
) -> None:
    """Store each rollout's token log-probabilities under the current (collecting) policy."""
    import torch

    from .grpo_parallel import pad_count

    todo = [r for r in rolls if r.old_logp is None and r.local]
    with torch.no_grad():
        groups = _groups(processor, todo, forward_batch_size, by_length)
        # FSDP: agree on the number of passes before any (each forward is a collective)
        for _ in range(pad_count(accelerator, len(groups))):
            padding_loss(model, processor, [r for r in rolls if r.local])
        for group in groups:
            for i, logp in zip(group, batch_logps(model, processor, [todo[i] for i in group]), strict=True):
                todo[i].old_logp = logp.detach()


def engine_logp(processor: Any, roll: Rollout) -> Any:
    """The engine's log-probabilities at the rollout's loss positions (NaN where none, or where
    a turn's tokens do not line up: counted in ``roll.misaligned``); ``None`` without any."""
    import torch

    from .grpo_importance import align

    if roll.engine_logprobs is None:
        return None
    if roll.engine_logp is None:
        e = _encoded(processor, roll)
        ids = e.inputs["input_ids"][0].tolist()
        values, roll.misaligned = align(ids, e.spans, roll.engine_logprobs)
        roll.engine_logp = torch.tensor(values, dtype=torch.float32)
    return roll.engine_logp


def clipped_surrogate(logp: Any, old_logp: Any, advantage: float, clip: tuple[float, float]) -> Any:
    """Per-token loss ``max(-ratio * A, -clamp(ratio, 1 - low, 1 + high) * A)`` (released PolicyLoss)."""
    import torch

    ratio = torch.exp(logp - old_logp)
    a = torch.tensor(advantage, device=logp.device, dtype=logp.dtype)
    return torch.maximum(-ratio * a, -torch.clamp(ratio, 1 - clip[0], 1 + clip[1]) * a)


@dataclass(frozen=True)
class LossSpec:
    """How token losses become the update's loss."""

    clip: tuple[float, float] = (0.2, 0.35)
    agg: Literal["constant", "token_mean"] = "constant"
    constant: float = 200.0
    micro_batch_size: int = 2
    is_cap: float | None = None  # vLLM importance-sampling correction: the weight's cap; None = off
    forward_batch_size: int = 1  # rollouts per loss forward pass (padded together)
    group_by_length: bool = True  # forward passes of similar lengths (forward_batch_size > 1)


def grpo_loss(
    model: Any,
    processor: Any,
    batch: Sequence[tuple[Rollout, float]],
    clip: tuple[float, float] | LossSpec,
    accelerator: Any = None,
    stats: ISStats | None = None,
) -> dict[str, float]:
    """Backpropagate one update's clipped surrogate; return its ``loss``, the fraction of tokens
    whose ratio lies outside the clip range (``clipped_fraction``) and the largest ``|ratio - 1|``
    (``ratio_max_dev``).

    ``constant``: each micro-batch of ``micro_batch_size`` rollouts contributes its token sum
    divided by ``constant``, averaged over micro-batches (gradient accumulation, as the released
    DeepSpeed run). ``token_mean``: the token-level mean over the whole update. The ratio is
    taken against ``Rollout.old_logp`` when recorded (several updates per collection), else
    against the detached current log-probabilities (ratio 1: the sampling policy is this one).
    Either way the loss is a sum of per-rollout terms over one denominator, so which rollouts
    share a forward pass (``forward_batch_size``, ``group_by_length``) does not change it.

    ``is_cap``: each token's loss is multiplied by the vLLM importance-sampling weight
    ``min(exp(old - engine), is_cap)`` (:mod:`harness_plugins.grpo_importance`; 1 for tokens
    without an engine log-probability), and ``stats`` collects the weights.

    With ``accelerator`` (data parallel, :mod:`harness_plugins.grpo_parallel`) only this
    process's rollouts (``local``) are computed, the gradients are then summed over processes
    (one all-reduce per update), and the returned metrics are the global ones.
    """
    from .grpo_importance import is_weights
    from .grpo_parallel import pad_count, reduce_max, reduce_sum, sum_gradients

    spec = clip if isinstance(clip, LossSpec) else LossSpec(clip, "token_mean")
    world = accelerator.num_processes if accelerator is not None else 1
    local = [(r, a) for r, a in batch if r.local]
    n_micro = -(-len(batch) // max(spec.micro_batch_size, 1))
    if spec.agg == "token_mean":
        mine = float(sum(int((_encoded(processor, r).labels != -100).sum()) for r, _ in local))
        denominator = reduce_sum(accelerator, [mine])[0] or 1.0
    else:
        denominator = spec.constant * n_micro
    total, clipped, tokens, dev = 0.0, 0, 0, 0.0
    rolls = [r for r, _ in local]
    groups = _groups(processor, rolls, spec.forward_batch_size, spec.group_by_length)
    for _ in range(pad_count(accelerator, len(groups))):  # FSDP: as many passes as every process
        padding_loss(model, processor, rolls).backward()
    for group in groups:
        logps = batch_logps(model, processor, [rolls[i] for i in group])
        loss: Any = 0.0
        for i, logp in zip(group, logps, strict=True):
            roll, advantage = local[i]
            old = roll.old_logp.to(logp.device) if roll.old_logp is not None else logp.detach()
            losses = clipped_surrogate(logp, old, advantage, spec.clip)
            engine = engine_logp(processor, roll) if spec.is_cap is not None else None
            if engine is not None and spec.is_cap is not None:  # the vLLM correction
                engine = engine.to(logp.device)
                weight = is_weights(old, engine, spec.is_cap)
                losses = losses * weight
                if stats is not None:
                    stats.add(weight, engine, spec.is_cap)
            loss = loss + losses.sum() / denominator
            ratio = (logp.detach() - old).exp()
            clipped += int(((ratio < 1 - spec.clip[0]) | (ratio > 1 + spec.clip[1])).sum())
            tokens += int(ratio.numel())
            dev = max(dev, float((ratio - 1).abs().max())) if ratio.numel() else dev
        loss.backward()
        total += float(loss.detach())
    if world > 1:  # the global gradient: every process's sum, one all-reduce per update
        sum_gradients([p for p in model.parameters() if p.requires_grad], accelerator)
    total, clipped_all, tokens_all = reduce_sum(accelerator, [total, clipped, tokens])
    return {
        "loss": total,
        "clipped_fraction": clipped_all / max(tokens_all, 1),
        "ratio_max_dev": reduce_max(accelerator, dev),
    }
