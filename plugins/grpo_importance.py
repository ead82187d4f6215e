"""vLLM truncated importance-sampling correction of ``curiosity_grpo`` (TRL's
``vllm_importance_sampling_correction``, its ``token_truncate`` form).

vLLM samples with its own kernels (and often another dtype), so the probability it gave a sampled
token is not exactly the trainer's. Each token's loss is multiplied by the weight
``min(exp(old_logp - engine_logp), cap)`` (no gradient), where ``old_logp`` is the trainer's
log-probability under the collecting policy and ``engine_logp`` the engine's.

How the engine's numbers reach the loss:

1. The vllm backend is asked for them (``logprobs=true``: ``SamplingParams(logprobs=0)``) and puts
   every sampled token's (id, log-probability) in :attr:`harness.loop.policy.Reply.logprobs`.
2. :class:`~harness_plugins.grpo_collect.LogprobTap` sits between the rollout engine and the
   policy and keeps each reply's numbers under (sample key, episode seed, turn, reply text); when
   the episode is finished they are matched to its assistant turns.
3. The trainer re-encodes the conversation (:mod:`harness_plugins.tokens`); for each assistant turn
   the engine's token ids must be the first tokens of the turn's span (the span also holds the
   template's end-of-turn tokens, which were not sampled: weight 1). A turn whose ids do not line
   up (the reply text re-tokenises differently, or was edited) gets no correction and is counted
   (``is_turns_misaligned`` in the step's log, with a warning) rather than misaligned.

Both sides are the model's untempered log-probabilities: the trainer's loss uses the raw logits
(as the released PolicyLoss) and vLLM's default ``logprobs_mode`` is ``raw_logprobs``, so the
weight measures the engine/trainer mismatch only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

TurnLogprobs = tuple[tuple[int, float], ...] | None  # one assistant turn's (token id, logprob)s


def align(
    ids: Sequence[int], spans: Sequence[tuple[int, int]], turns: Sequence[TurnLogprobs] | None
) -> tuple[list[float], int]:
    """The engine's log-probability at every loss position of an encoded conversation (the
    concatenated assistant spans, the order :func:`~harness_plugins.grpo_loss.token_logps` gives),
    NaN where there is none; and the number of turns whose token ids do not line up."""
    out: list[float] = []
    bad = 0
    if turns is not None and len(turns) != len(spans):
        turns, bad = None, len(spans)
    for k, (start, end) in enumerate(spans):
        values = [math.nan] * (end - start)
        sampled = turns[k] if turns is not None else None
        if sampled:
            n = len(sampled)
            if n <= end - start and [t for t, _ in sampled] == list(ids[start : start + n]):
                values[:n] = [lp for _, lp in sampled]
            else:
                bad += 1
        out += values
    return out, bad


def is_weights(old_logp: Any, engine_logp: Any, cap: float) -> Any:
    """``min(exp(old_logp - engine_logp), cap)`` per token; 1 where ``engine_logp`` is NaN."""
    import torch

    weight = torch.exp(old_logp - engine_logp).clamp(max=cap)
    return torch.where(torch.isnan(engine_logp), torch.ones_like(weight), weight)


class ISStats:
    """Running statistics of the weights over the corrected tokens of one update or step."""

    def __init__(self) -> None:
        self.total, self.tokens, self.truncated = 0.0, 0, 0
        self.low, self.high = math.inf, -math.inf

    def add(self, weight: Any, engine_logp: Any, cap: float) -> None:
        corrected = ~engine_logp.isnan()
        w = weight[corrected]
        if not w.numel():
            return
        self.total += float(w.sum())
        self.tokens += int(w.numel())
        self.truncated += int((w >= cap).sum())
        self.low, self.high = min(self.low, float(w.min())), max(self.high, float(w.max()))

    def log(self, accelerator: Any = None) -> dict[str, Any]:
        """``is_weight_mean/min/max``, ``is_truncated_fraction``, ``is_tokens`` (over processes)."""
        from .grpo_parallel import reduce_max, reduce_sum

        total, tokens, truncated = reduce_sum(accelerator, [self.total, self.tokens, self.truncated])
        out: dict[str, Any] = {"is_tokens": int(tokens)}
        if tokens:
            out.update(
                is_weight_mean=total / tokens,
                is_weight_min=-reduce_max(accelerator, -self.low),
                is_weight_max=reduce_max(accelerator, self.high),
                is_truncated_fraction=truncated / tokens,
            )
        return out
