"""Drive many episodes through a policy with continuous scheduling.

Up to ``batch_size`` episodes are active at once. Each round sends one request per active
episode; an episode that needs another turn simply stays for the next round, and a finished one
leaves at once and its slot is refilled from the queue. No episode waits for a slow one to
finish all its turns (there is no global turn barrier), and memory stays bounded by the batch:
media are opened only when an episode is admitted.

Replies are deterministic for a given seed whatever the batching: each request carries a seed
derived from the run seed and the sample's key (``sample_seed``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .data import MediaError, open_media
from .episode import Episode
from .limits import Limits
from .policy import Policy, Request, Sampling
from .records import Sample, SampleScore, Trajectory
from .results import SampleRecord
from .scoring_modes import DEFAULT_MODE, ScoringMode, official, score_trajectory
from .task import PromptMode, TaskSpec
from .tools import ToolSpec


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

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


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


@dataclass
class _Slot:
    spec: TaskSpec
    sample: Sample
    episode: Episode
    seed: int
    turn: int = 0


def rollout(
    items: Iterable[tuple[TaskSpec, Sample]],
    policy: Policy,
    tools: Sequence[ToolSpec],
    config: RolloutConfig,
) -> Iterator[SampleRecord]:
    """Run every (task, sample) to the end, yielding each scored record as soon as it finishes.

    A sample whose media cannot be opened is yielded at once as an error record. An exception
    from the policy propagates (records already yielded are the caller's to keep).
    """
    queue = iter(items)
    active: list[_Slot] = []
    exhausted = False
    sampling = dataclasses.replace(config.sampling, max_new_tokens=config.limits.max_new_tokens)
    while True:
        while not exhausted and len(active) < config.batch_size:
            try:
                spec, sample = next(queue)
            except StopIteration:
                exhausted = True
                break
            try:
                episode = make_episode(spec, sample, tools, config)
            except Exception as exc:  # noqa: BLE001 (any preparation failure is this sample's error)
                traj = error_trajectory(spec, sample, config.mode, preparation_error(exc))
                yield SampleRecord(sample, traj, _score(config, spec, sample, traj))
                continue
            active.append(_Slot(spec, sample, episode, sample_seed(config.seed, sample.key)))
        if not active:
            return
        requests = [
            Request(
                messages=list(slot.episode.messages),
                sampling=dataclasses.replace(sampling, seed=slot.seed + slot.turn),
                sample=slot.sample,
                turn=slot.turn,
                seed=slot.seed,
            )
            for slot in active
        ]
        replies = policy.generate(requests)
        if len(replies) != len(requests):
            raise RuntimeError(
                f"policy {policy.name!r} returned {len(replies)} replies for {len(requests)} requests"
            )
        still: list[_Slot] = []
        for slot, reply in zip(active, replies, strict=True):
            slot.episode.step(reply)
            slot.turn += 1
            if slot.episode.done:
                traj = slot.episode.trajectory()
                yield SampleRecord(slot.sample, traj, _score(config, slot.spec, slot.sample, traj))
            else:
                still.append(slot)
        active = still
