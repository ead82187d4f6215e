"""Rollout collection of ``curiosity_grpo``: the finished episodes of a step (:class:`Rollout`), the
per-turn sampling (:class:`Recorder`), the engine log-probabilities of every reply
(:class:`LogprobTap`, for :mod:`harness_plugins.grpo_importance`) and the training prompts,
through the harness's own rollout engine (:func:`harness.loop.rollout.run_jobs`)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.loop.policy import AsyncPolicy, Policy, Reply, Request, Sampling
from harness.records import Sample, SampleScore, Trajectory

if TYPE_CHECKING:
    from harness.loop.episode import Message
    from harness.loop.rollout import RolloutConfig
    from harness.plugins import Harness
    from harness.task import TaskSpec
    from harness.tools import ToolSpec


@dataclass
class Rollout:
    """One finished episode of a group: its record, final conversation and group id;
    ``old_logp``: its assistant tokens' log-probabilities under the collecting policy;
    ``engine_logprobs``: per assistant turn, the generating engine's (token id, log-probability)
    pairs when it gave them (vLLM, for the importance-sampling correction)."""

    spec: TaskSpec
    group: str
    sample: Sample
    trajectory: Trajectory
    score: SampleScore
    messages: list[Message]
    old_logp: Any = None
    encoded: Any = None
    local: bool = True  # False: collected on another process (data parallel), no conversation here
    engine_logprobs: list[tuple[tuple[int, float], ...] | None] | None = None
    engine_logp: Any = None  # engine_logprobs at the loss positions (grpo_importance.align)
    misaligned: int = 0  # assistant turns whose engine tokens did not line up


class Recorder:
    """A policy and the rollouts' per-turn sampling (temperature of the first and of later turns,
    top_p, top_k). The rollout engine applies the sampling (``RolloutConfig.sampling`` /
    ``sampling_later``: :meth:`rollout_config`) and hands back each episode's final conversation
    itself, so nothing wraps the policy; ``generate`` stays for callers that use it as a policy."""

    def __init__(
        self,
        inner: Policy,
        first: float | None = None,
        later: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        logprobs: bool = False,
    ) -> None:
        self.inner, self.first, self.later, self.top_p = inner, first, later, top_p
        self.top_k = top_k
        self.logprobs = logprobs  # keep the engine's log-probabilities of every reply (Rollout)
        self.name = inner.name

    def _turn(self, sampling: Sampling, temperature: float) -> Sampling:
        top_p = self.top_p if self.top_p is not None else sampling.top_p
        top_k = self.top_k if self.top_k is not None else sampling.top_k
        return dataclasses.replace(sampling, temperature=temperature, top_p=top_p, top_k=top_k)

    def rollout_config(self, config: RolloutConfig) -> RolloutConfig:
        """``config`` with this sampling: ``first`` for turn 0, ``later`` after (when both set)."""
        if self.first is None or self.later is None:
            return config
        first, later = self._turn(config.sampling, self.first), self._turn(config.sampling, self.later)
        return dataclasses.replace(config, sampling=first, sampling_later=later)

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        if self.first is None or self.later is None:
            return self.inner.generate(requests)
        temps = [self.first if r.turn == 0 else self.later for r in requests]
        return self.inner.generate(
            [
                dataclasses.replace(r, sampling=self._turn(r.sampling, t))
                for r, t in zip(requests, temps, strict=True)
            ]
        )


class LogprobTap:
    """A policy that hands requests to ``inner`` and keeps the engine log-probabilities of each
    reply until :meth:`take` collects them for a finished episode."""

    def __init__(self, inner: Policy) -> None:
        self.inner, self.name = inner, inner.name
        self._kept: dict[tuple[str, int, int, str], list[tuple[tuple[int, float], ...]]] = {}
        self._lock = threading.Lock()

    def keep(self, request: Request, reply: Reply) -> Reply:
        if reply.logprobs is not None:
            key = (request.sample.key, request.seed, request.turn, reply.text)
            with self._lock:
                self._kept.setdefault(key, []).append(reply.logprobs)
        return reply

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        replies = self.inner.generate(requests)
        return [self.keep(q, r) for q, r in zip(requests, replies, strict=True)]

    def take(self, key: str, seed: int, trajectory: Trajectory) -> list[tuple[tuple[int, float], ...] | None]:
        """The engine log-probabilities of each turn of a finished episode (``None`` for a turn
        without them); removed from the tap."""
        out: list[tuple[tuple[int, float], ...] | None] = []
        with self._lock:
            for turn in trajectory.turns:
                found = self._kept.get((key, seed, turn.index, turn.reply))
                out.append(found.pop(0) if found else None)
        return out


class AsyncLogprobTap(LogprobTap):
    """:class:`LogprobTap` for a policy with ``submit``: the numbers are kept before the future
    the rollout engine waits on completes."""

    def submit(self, request: Request) -> Future[Reply]:
        outer: Future[Reply] = Future()

        def done(inner: Future[Reply]) -> None:
            error = inner.exception()
            if error is not None:
                outer.set_exception(error)
            else:
                outer.set_result(self.keep(request, inner.result()))

        self.inner.submit(request).add_done_callback(done)  # type: ignore[attr-defined]
        return outer


def tap(policy: Policy) -> LogprobTap:
    return AsyncLogprobTap(policy) if isinstance(policy, AsyncPolicy) else LogprobTap(policy)


def collect(
    spec: TaskSpec,
    samples: Sequence[Sample],
    policy: Recorder,
    tools: Sequence[ToolSpec],
    config: RolloutConfig,
    generations: int,
) -> list[Rollout]:
    """``generations`` rollouts of every sample of one task (see :func:`collect_items`)."""
    return collect_items([(spec, s) for s in samples], policy, tools, config, generations)


def collect_items(
    items: Sequence[tuple[TaskSpec, Sample]],
    policy: Recorder,
    tools: Sequence[ToolSpec],
    config: RolloutConfig,
    generations: int,
) -> list[Rollout]:
    """``generations`` rollouts of every (task, sample) (run seeds ``config.seed + k``), each with
    its final conversation; group id = the sample key; in the order (generation, item).

    All ``generations x len(items)`` episodes ride the rollout engine at once
    (:func:`harness.loop.rollout.run_jobs`, the engine eval uses): each advances on its own and the
    policy gets whatever requests are ready (``submit``, or batches through the engine's
    batcher). Every request keeps its own seed, so the rollouts do not depend on the scheduling.
    """
    from harness.loop.rollout import Job, run_jobs, sample_seed

    jobs = [
        Job(spec, s, sample_seed(config.seed + k, s.key)) for k in range(generations) for spec, s in items
    ]
    rank: dict[tuple[str, int], list[int]] = {}
    for n, job in enumerate(jobs):
        rank.setdefault((job.sample.key, job.seed), []).append(n)
    run = dataclasses.replace(policy.rollout_config(config), batch_size=max(1, len(jobs)))
    tapped = tap(policy.inner) if policy.logprobs else None
    out: list[tuple[int, Rollout]] = []
    for done in run_jobs(jobs, tapped or policy.inner, tools, run):
        rec = done.record
        n = rank[(rec.sample.key, done.seed)].pop(0)
        if not rec.trajectory.turns:  # media error: nothing was generated
            continue
        spec = jobs[n].spec
        roll = Rollout(spec, rec.sample.key, rec.sample, rec.trajectory, rec.score, done.messages)
        if tapped is not None:
            roll.engine_logprobs = tapped.take(rec.sample.key, done.seed, rec.trajectory)
        out.append((n, roll))
    return [r for _, r in sorted(out, key=lambda x: x[0])]


def training_items(task: str, data: str, n: int | None, harness: Harness) -> list[tuple[TaskSpec, Sample]]:
    """The training prompts: ``pixel_reasoner_rl:PATH`` (the released RL set, mixed image and
    video, :mod:`harness_plugins.pr_data`) or any eval ``--data`` source of ``task``."""
    from harness.data import load_samples

    from .pr_data import RL_PREFIX, load_rl_data

    if data.startswith(RL_PREFIX):
        return load_rl_data(Path(data.removeprefix(RL_PREFIX)), n)
    spec = harness.task(task)
    return [(spec, s) for s in load_samples(spec, data, n)]
