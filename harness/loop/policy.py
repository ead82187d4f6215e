"""The one interface every model backend implements.

A policy receives a batch of requests (one per episode that needs a turn) and returns one reply per
request, in order. Messages are chat messages in the transformers format: ``{"role": ...,
"content": [{"type": "text", "text": ...}, {"type": "image", "image": PIL.Image},
{"type": "video", "video": [PIL.Image, ...]}]}``. Images are already resized to what the model
should see (the episode owns the pixel budget), so backends must not resize them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from harness.records import Sample

FinishReason = Literal["stop", "length", "error"]
DEFAULT_STOP: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")
#: Tokens one reply may have, unless a request says otherwise (also ``Limits.max_new_tokens``'s default).
DEFAULT_MAX_NEW_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class Sampling:
    """Decoding parameters of one request; greedy by default as for the published evaluation.

    ``max_new_tokens`` and ``seed`` are this request's: in an episode the rollout sets them at
    request time (:meth:`harness.loop.rollout.RolloutConfig.request_sampling`) from the one stored
    budget, ``Limits.max_new_tokens``, and from the episode's seed plus the turn, so a
    ``RolloutConfig.sampling`` holds only the decoding choices (temperature, top_p, top_k, stop).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off (every token); the released GRPO sampled with 40
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    stop: tuple[str, ...] = DEFAULT_STOP
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """What an episode asks of the policy for its next turn.

    ``sample`` is given so that scripted test doubles can act on the annotation; real backends
    must ignore it. ``turn`` is 0-based; ``seed`` is derived from the run seed and the sample, so
    a reply never depends on which batch the request landed in.

    ``seed`` and ``sampling.seed`` are two values: ``seed`` is the episode's (the same on every
    turn; scripted policies and GRPO's bookkeeping key on it with ``turn``), ``sampling.seed`` is
    what a backend seeds its random draws with, ``seed + turn`` in an episode (so each turn draws
    afresh) and equal to ``seed`` in the single-turn requests of ``harness serve`` and the lm-eval
    bridge. Both stay: ``Sampling`` is used alone (backends, serve), without a ``Request``.
    """

    messages: list[dict[str, Any]]
    sampling: Sampling
    sample: Sample
    turn: int
    seed: int


@dataclass(frozen=True, slots=True)
class Reply:
    """One generated assistant message (stop strings removed; ``</tool_call>`` is not a stop by
    default, as released, so any text the model wrote after it is part of the reply).

    ``logprobs``: the sampled tokens as (token id, log-probability under the engine), in order,
    when the backend was asked for them (the vllm backend's ``logprobs=true``, which GRPO's
    importance-sampling correction sets); ``None`` otherwise."""

    text: str
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    logprobs: tuple[tuple[int, float], ...] | None = None


@runtime_checkable
class Policy(Protocol):
    """A model backend (or a scripted test double)."""

    name: str

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        """Return one reply per request, in the same order."""
        ...


@runtime_checkable
class AsyncPolicy(Policy, Protocol):
    """A policy that also takes requests one at a time (the asynchronous rollout engine's way).

    ``submit`` must not block on generation: it returns a future that completes with the reply
    (or fails with the exception ``generate`` would have raised). A policy with only
    ``generate(batch)`` is adapted by :class:`harness.backends.batcher.Batcher`.
    """

    def submit(self, request: Request) -> Future[Reply]:
        """Start generating the reply to ``request``; return its future."""
        ...


def completed(reply: Reply) -> Future[Reply]:
    """A future that already holds ``reply`` (for policies that answer immediately)."""
    future: Future[Reply] = Future()
    future.set_result(reply)
    return future
