"""Drive many episodes through a policy with per-episode asynchronous scheduling.

Up to ``batch_size`` episodes are in flight at once, and each advances on its own: its next
request goes to the policy as soon as its reply is back and its tool has run (no round barrier:
an episode never waits for another's reply), and a finished one is replaced at once. Policies
that take requests one at a time (``submit``, :class:`~harness.loop.policy.AsyncPolicy`) get them
that way; a policy with only ``generate(batch)`` gets whatever requests are waiting whenever it
is free (:class:`~harness.backends.batcher.Batcher`). Media are opened, decoded and resized, and
tools run, on a pool of worker threads (``workers``), the next samples prepared ahead of need
and bounded so memory stays flat.

Replies are deterministic for a given seed whatever the batching: each request carries a seed
derived from the run seed and the sample's key (``sample_seed``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from harness.backends.batcher import Batcher
from harness.data import MediaError, open_media
from harness.data.media_pool import default_workers, worker_pool
from harness.errors import OptionError
from harness.loop.episode import Episode, Message
from harness.loop.limits import Limits
from harness.loop.policy import AsyncPolicy, Policy, Reply, Request, Sampling
from harness.records import Sample, SampleRecord, SampleScore, Trajectory
from harness.scoring.modes import DEFAULT_MODE, ScoringMode, official, score_trajectory
from harness.task import PromptMode, TaskSpec
from harness.tools import ToolSpec


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """How episodes are run: prompt mode, limits, decoding, batch size, seed, crop logging, scoring."""

    mode: PromptMode = "vcot"
    limits: Limits = Limits()
    sampling: Sampling = Sampling()
    batch_size: int = 8
    seed: int = 0
    crop_dir: Path | None = None
    scoring: ScoringMode = official
    scoring_name: str = DEFAULT_MODE
    workers: int | None = None  # media/tool worker threads (None: harness.data.media_pool.default_workers)
    sampling_later: Sampling | None = None  # decoding of turns after the first (None: ``sampling``)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise OptionError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 1:
            raise OptionError(f"workers must be >= 1, got {self.workers}")

    def request_sampling(self, turn: int, seed: int) -> Sampling:
        """The ``Sampling`` of an episode's request: the decoding choices of ``sampling`` (turn 0)
        or ``sampling_later``, with the budget ``limits.max_new_tokens`` (the one stored value:
        ``max_new_tokens`` and ``seed`` of ``sampling`` / ``sampling_later`` are not read) and
        the seed ``seed + turn`` (``seed``: the episode's, :func:`sample_seed`)."""
        decoding = self.sampling if turn == 0 or self.sampling_later is None else self.sampling_later
        return dataclasses.replace(decoding, max_new_tokens=self.limits.max_new_tokens, seed=seed + turn)


def sample_seed(run_seed: int, key: str) -> int:
    """A 63-bit seed that depends only on the run seed and the sample key."""
    digest = hashlib.sha256(f"{run_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def question_for(spec: TaskSpec, sample: Sample, mode: PromptMode) -> str:
    return spec.official_prompt(sample) if mode == "official" else spec.question(sample)


def make_episode(spec: TaskSpec, sample: Sample, tools: Sequence[ToolSpec], config: RolloutConfig) -> Episode:
    """Open the sample's media and start its episode (raises MediaError on broken media, or whatever
    resizing or prompt building raises; ``rollout`` records either as the sample's error)."""
    return Episode(
        sample,
        open_media(sample),
        mode=config.mode,
        question=question_for(spec, sample, config.mode),
        tools=tools,
        limits=config.limits,
        crop_dir=config.crop_dir,
        extract=lambda text: spec.score(text, sample).extracted,  # a reply without one ends no_answer
    )


def preparation_error(exc: BaseException) -> str:
    """The recorded reason for a sample that could not be prepared (media, resize, prompt)."""
    if isinstance(exc, MediaError):
        return str(exc)
    return f"could not prepare sample: {type(exc).__name__}: {exc}"


def error_trajectory(spec: TaskSpec, sample: Sample, mode: PromptMode, reason: str) -> Trajectory:
    """The record of a sample that could not be run at all (e.g. a corrupt image)."""
    return Trajectory(
        task=sample.task,
        sample_id=sample.id,
        prompt_mode=mode,
        system="",
        prompt=question_for(spec, sample, mode) if sample.question else "",
        turns=(),
        end_reason="error",
        error=reason,
    )


def _score(config: RolloutConfig, spec: TaskSpec, sample: Sample, traj: Trajectory) -> SampleScore:
    return score_trajectory(spec, sample, traj, config.scoring, config.scoring_name)


@dataclass(frozen=True, slots=True)
class Job:
    """One episode to run: a sample of a task and the seed its requests derive from."""

    spec: TaskSpec
    sample: Sample
    seed: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A finished episode: its scored record, its seed and its final conversation (every message
    sent to the policy, then the reply that ended it; empty when the sample could not be prepared)."""

    record: SampleRecord
    seed: int
    messages: list[Message]


def submitter(policy: Policy, max_batch: int) -> tuple[Callable[[Request], Future[Reply]], Batcher | None]:
    """``policy.submit`` when it has one, else a :class:`Batcher` over ``policy.generate`` (which
    the caller must close)."""
    if isinstance(policy, AsyncPolicy):
        return policy.submit, None
    batcher = Batcher(policy, max_batch=max_batch)
    return batcher.submit, batcher


@dataclass
class _Slot:
    job: Job
    index: int  # position in the input: episodes start in this order
    episode: Episode | None = None
    turn: int = 0


_PREPARED, _REPLIED, _STEPPED = "prepared", "replied", "stepped"


def run_jobs(
    jobs: Iterable[Job], policy: Policy, tools: Sequence[ToolSpec], config: RolloutConfig
) -> Iterator[Finished]:
    """Run every job to the end with per-episode asynchronous scheduling; yield each as it finishes.

    Every episode advances on its own: its next request is submitted as soon as its reply has
    arrived and its tool has run, never waiting for other episodes. At most ``batch_size``
    episodes are in flight; a finished one is replaced at once, episodes starting in input order
    (with ``batch_size=1`` they run one after another, in order). Media preparation (open, decode,
    resize, prompt) and each turn's tool run happen on a pool of ``workers`` threads, and the next
    samples' media are prepared ahead (at most ``batch_size + workers`` episodes hold media at
    any time, so memory is flat in the number of samples).

    A sample that cannot be prepared is yielded as an error record. An exception from the
    policy (or a bug in a tool runner) propagates; finished episodes already yielded are the
    caller's to keep.
    """
    queue_: Iterator[Job] = iter(jobs)
    submit, batcher = submitter(policy, config.batch_size)
    workers = config.workers if config.workers is not None else default_workers()
    pool = worker_pool(workers)
    events: SimpleQueue[tuple[str, _Slot, Future[Any]]] = SimpleQueue()
    ahead = config.batch_size + workers  # episodes holding media, at most
    preparing = active = taken = admitted = 0
    ready: dict[int, _Slot | None] = {}  # prepared, by input position (None: failed, yielded)
    exhausted = False

    def notify(kind: str, slot: _Slot) -> Callable[[Future[Any]], None]:
        return lambda future: events.put((kind, slot, future))

    def send(slot: _Slot) -> None:
        assert slot.episode is not None
        request = Request(
            messages=list(slot.episode.messages),
            sampling=config.request_sampling(slot.turn, slot.job.seed),
            sample=slot.job.sample,
            turn=slot.turn,
            seed=slot.job.seed,
        )
        submit(request).add_done_callback(notify(_REPLIED, slot))

    def finished(slot: _Slot, traj: Trajectory, messages: list[Message]) -> Finished:
        spec, sample = slot.job.spec, slot.job.sample
        record = SampleRecord(sample, traj, _score(config, spec, sample, traj))
        return Finished(record, slot.job.seed, messages)

    try:
        while True:
            admitting = True
            while admitting:  # admitting frees room to prepare more: fill again until nothing moves
                while not exhausted and preparing + len(ready) + active < ahead:
                    try:
                        job = next(queue_)
                    except StopIteration:
                        exhausted = True
                        break
                    slot = _Slot(job, taken)
                    taken += 1
                    preparing += 1
                    pool.submit(make_episode, job.spec, job.sample, tools, config).add_done_callback(
                        notify(_PREPARED, slot)
                    )
                admitting = False
                while admitted in ready and (ready[admitted] is None or active < config.batch_size):
                    next_slot = ready.pop(admitted)
                    admitted += 1
                    admitting = True
                    if next_slot is not None:
                        active += 1
                        send(next_slot)
            if exhausted and preparing == 0 and active == 0 and not ready:
                return
            kind, slot, future = events.get()
            if kind == _PREPARED:
                preparing -= 1
                exc = future.exception()
                if exc is not None:
                    ready[slot.index] = None
                    reason = preparation_error(exc)
                    traj = error_trajectory(slot.job.spec, slot.job.sample, config.mode, reason)
                    yield finished(slot, traj, [])
                    continue
                slot.episode = future.result()
                ready[slot.index] = slot
            elif kind == _REPLIED:
                reply = future.result()  # a policy exception propagates from here
                assert slot.episode is not None
                pool.submit(slot.episode.step, reply).add_done_callback(notify(_STEPPED, slot))
            else:
                future.result()  # a bug in step() propagates
                episode = slot.episode
                assert episode is not None
                slot.turn += 1
                if episode.done:
                    active -= 1
                    yield finished(slot, episode.trajectory(), list(episode.messages))
                else:
                    send(slot)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if batcher is not None:
            batcher.close()


def rollout(
    items: Iterable[tuple[TaskSpec, Sample]],
    policy: Policy,
    tools: Sequence[ToolSpec],
    config: RolloutConfig,
) -> Iterator[SampleRecord]:
    """Run every (task, sample) to the end, yielding each scored record as soon as it finishes.

    A thin wrapper of :func:`run_jobs` (per-episode asynchronous scheduling) with each sample's
    seed derived from ``config.seed`` (:func:`sample_seed`). A sample whose media cannot be
    opened is yielded as an error record. An exception from the policy propagates (records
    already yielded are the caller's to keep).
    """
    jobs = (Job(spec, sample, sample_seed(config.seed, sample.key)) for spec, sample in items)
    for done in run_jobs(jobs, policy, tools, config):
        yield done.record
