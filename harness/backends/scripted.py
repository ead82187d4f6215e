"""Scripted policies: deterministic test doubles, never models.

- ``scripted:oracle`` reads the sample's annotation: it zooms on the annotated target box (or
  selects the annotated key frames) when tools are offered, then answers the gold answer in
  ``\\boxed{}``. It checks the pipeline end to end: it must score 1.0 on every task.
- ``scripted:random`` is a seeded chance baseline: it sometimes makes a random tool call, then
  answers uniformly from the task's answer space. Same seed, same replies, whatever the batching.
- ``scripted:replay:FILE`` replays recorded replies, from a ``samples.jsonl`` written by
  ``harness eval`` or from a JSON object ``{"task/sample_id": ["reply turn 0", ...]}``.

They are also the zero-cost policy used to measure the harness's own overhead.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.backends import BackendContext, BackendFactory
from harness.cli.suggest import suggestion
from harness.coerce import coerce, describe
from harness.errors import OptionError, UserError
from harness.loop.policy import Policy, Reply, Request, completed
from harness.records import Sample
from harness.task import TaskSpec


def _tools_offered(request: Request) -> bool:
    system = request.messages[0] if request.messages else {}
    if system.get("role") != "system":
        return False
    content = system.get("content")
    text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content or ())
    return "<tools>" in text


def tool_call_text(name: str, arguments: Mapping[str, Any], thought: str = "") -> str:
    body = json.dumps({"name": name, "arguments": dict(arguments)})
    return f"{thought}\n<tool_call>\n{body}\n</tool_call>".lstrip("\n")


def boxed(answer: str) -> str:
    return f"The answer is \\boxed{{{answer}}}."


def _image_size(sample: Sample) -> tuple[int, int] | None:
    size = sample.metadata.get("image_size")
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    if not sample.media:
        return None
    from PIL import Image  # lazy: only the oracle needs the header

    path = Path(sample.root, sample.media[0]) if sample.root else Path(sample.media[0])
    try:
        with Image.open(path) as im:
            return im.size
    except OSError:
        return None


def oracle_box(sample: Sample) -> list[float] | None:
    """The union of the sample's target boxes as fractions (< 1) of its first image."""
    boxes = sample.metadata.get("target_boxes") or []
    size = _image_size(sample) if boxes else None
    if not boxes or size is None:
        return None
    w, h = size
    x1 = min(b[0] for b in boxes) / w
    y1 = min(b[1] for b in boxes) / h
    x2 = max(b[0] + b[2] for b in boxes) / w
    y2 = max(b[1] + b[3] for b in boxes) / h
    return [round(min(max(v, 0.0), 0.999), 4) for v in (x1, y1, x2, y2)]


class OraclePolicy:
    """Zoom on the annotation, then answer the gold answer (a pipeline check)."""

    name = "scripted:oracle"

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return [self._one(r) for r in requests]

    def submit(self, request: Request) -> Future[Reply]:
        return completed(self._one(request))

    def _one(self, request: Request) -> Reply:
        sample = request.sample
        if request.turn == 0 and _tools_offered(request):
            if sample.media_kind == "video" and sample.metadata.get("key_frames"):
                frames = [int(f) for f in sample.metadata["key_frames"]]
                return Reply(
                    tool_call_text("select_frames", {"target_frames": frames}, "Let me look closer.")
                )
            box = oracle_box(sample)
            if box is not None:
                args = {"bbox_2d": box, "target_image": 1}
                return Reply(tool_call_text("crop_image_normalized", args, "Let me zoom in."))
        return Reply(boxed(sample.answer))


class RandomPolicy:
    """Seeded chance baseline: random tool use, then a uniformly random answer."""

    def __init__(self, tasks: Mapping[str, TaskSpec], tool_rate: float = 0.5) -> None:
        self.tasks = tasks
        self.tool_rate = tool_rate
        self.name = "scripted:random"

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return [self._one(r) for r in requests]

    def submit(self, request: Request) -> Future[Reply]:
        return completed(self._one(request))

    def _one(self, request: Request) -> Reply:
        rng = random.Random(f"{request.seed}:{request.turn}")
        sample = request.sample
        if request.turn == 0 and _tools_offered(request) and rng.random() < self.tool_rate:
            if sample.media_kind == "video":
                n = len(sample.media) or 16
                frames = sorted(rng.sample(range(1, n + 1), k=min(n, rng.randint(1, 4))))
                return Reply(tool_call_text("select_frames", {"target_frames": frames}))
            x1, y1 = rng.uniform(0, 0.7), rng.uniform(0, 0.7)
            box = [round(v, 3) for v in (x1, y1, x1 + rng.uniform(0.1, 0.29), y1 + rng.uniform(0.1, 0.29))]
            return Reply(tool_call_text("crop_image_normalized", {"bbox_2d": box, "target_image": 1}))
        spec = self.tasks.get(sample.task)
        answer = spec.random_answer(sample, rng) if spec is not None else ""
        return Reply(boxed(answer))


def load_replay(path: Path) -> dict[str, list[str]]:
    """Read recorded replies keyed by ``task/sample_id`` from samples.jsonl or a JSON mapping."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected an object mapping 'task/sample_id' to a list of replies")
        return {str(k): [str(x) for x in v] for k, v in data.items()}
    out: dict[str, list[str]] = {}
    # "\n" only: str.splitlines() would also break at U+2028/U+0085, which older files kept raw.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            traj = json.loads(line)["trajectory"]
            out[f"{traj['task']}/{traj['sample_id']}"] = [_recorded_reply(t) for t in traj["turns"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{lineno}: not a samples.jsonl line ({exc})") from exc
    return out


def _recorded_reply(turn: Mapping[str, Any]) -> str:
    """The reply exactly as the model wrote it: ``raw_reply`` (a JSON string literal, set when the
    recorded ``reply`` had lone surrogates replaced) or else ``reply``."""
    raw = turn.get("raw_reply")
    return str(json.loads(raw)) if raw else str(turn["reply"])


class ReplayPolicy:
    """Replay recorded replies turn by turn; a missing reply ends that episode with an error."""

    def __init__(self, path: Path) -> None:
        self.replies = load_replay(path)
        self.name = f"scripted:replay:{path}"

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return [self._one(r) for r in requests]

    def submit(self, request: Request) -> Future[Reply]:
        return completed(self._one(request))

    def _one(self, r: Request) -> Reply:
        recorded = self.replies.get(r.sample.key, [])
        if r.turn < len(recorded):
            return Reply(recorded[r.turn])
        return Reply(f"replay: no recorded reply for {r.sample.key} turn {r.turn}", "error")


class Delayed:
    """Wrap a policy with a fixed latency per request batch (``--model_args delay=SECONDS``),
    to simulate a model's time in tests and demos (batch-only: the rollout engine batches its
    requests through :class:`~harness.backends.batcher.Batcher`)."""

    def __init__(self, inner: Policy, delay: float) -> None:
        self.inner, self.delay, self.name = inner, delay, inner.name

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        time.sleep(self.delay)
        return self.inner.generate(requests)


def _number(ctx: BackendContext, key: str, default: float) -> float:
    raw = ctx.model_args.get(key)
    if raw is None:
        return default
    try:
        value: float = coerce(raw, float)
    except ValueError:
        raise OptionError(f"scripted: --model_args {key} needs {describe(float)}, got {raw!r}") from None
    return value


def _make(rest: str, ctx: BackendContext) -> Policy:
    kind, _, arg = rest.partition(":")
    known = {"tool_rate", "delay"}
    unknown = set(ctx.model_args) - known
    if unknown:
        raise OptionError(f"scripted: unknown --model_args {sorted(unknown)}; valid: {sorted(known)}")
    policy: Policy
    if kind == "oracle":
        policy = OraclePolicy()
    elif kind == "random":
        policy = RandomPolicy(ctx.tasks, _number(ctx, "tool_rate", 0.5))
    elif kind == "replay":
        if not arg:
            raise UserError("scripted:replay needs a file: --model scripted:replay:PATH")
        if not Path(arg).is_file():
            raise FileNotFoundError(f"scripted:replay: no such file {arg!r}")
        policy = ReplayPolicy(Path(arg))
    else:
        raise UserError(
            f"unknown scripted policy {kind!r}{suggestion(kind, ('oracle', 'random', 'replay'))}; "
            "valid: scripted:oracle, scripted:random, scripted:replay:FILE"
        )
    delay = _number(ctx, "delay", 0.0)
    return Delayed(policy, delay) if delay > 0 else policy


FACTORIES: dict[str, Callable[[str, BackendContext], Any]] = {"scripted": _make}


@hookimpl
def harness_register_backends() -> dict[str, BackendFactory]:
    return dict(FACTORIES)
