"""Frozen, JSON round-trippable records: the nouns every other module speaks.

Each record has ``to_dict()`` (plain JSON types only) and ``from_dict()``; tuples become lists in
JSON and come back as tuples, so ``Record.from_dict(json.loads(json.dumps(r.to_dict()))) == r``.

Records hold text from models and data files, and every record must be writable whatever that text
is (``docs/reliability.md``). So:

- a record never holds a lone UTF-16 surrogate (``"\\ud83d"`` from a JSON escape, or from a server
  that splits an emoji): construction replaces each with U+FFFD (:func:`clean_text`; a valid pair
  becomes its character). A :class:`Turn` whose reply was changed keeps the exact reply in
  ``raw_reply``, a JSON string literal (``json.loads(turn.raw_reply)`` gives it back);
- ``to_dict`` writes a non-finite float as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``
  (the tokens Python and JavaScript print), so the output is strict JSON; ``from_dict`` reads those
  strings back as floats in every field typed ``float`` (scores, stderrs, seconds, boxes). In
  free-form fields (``ToolCall.arguments``, ``Sample.metadata``, configurations) they stay strings;
- ``from_dict`` refuses a string where a list is expected (``"media": "a.jpg"`` is not five
  one-character paths) and names the field in every error.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from harness.json_safe import clean, from_dict, to_json
from harness.json_safe import clean_text as clean_text  # re-exported: records clean their text with it

T = TypeVar("T")

MediaKind = Literal["image", "video"]
#: How an episode ended: ``answer`` (a final reply the task's extractor got an answer from),
#: ``no_answer`` (a final reply it got nothing from), a limit, or an error. Runs written before
#: ``no_answer`` existed recorded both as ``answer``; they load unchanged.
EndReason = Literal["answer", "no_answer", "max_ops", "max_images", "context", "error"]
ObservationKind = Literal["crop", "frames", "error"]


class _Record:
    """Mixin giving ``to_dict`` / ``from_dict`` to the frozen dataclasses below."""

    __slots__ = ()

    def __post_init__(self) -> None:
        # No lone surrogates in any record (see the module docstring): a field whose text needs
        # cleaning is replaced; clean fields (nearly always all of them) are left as they are.
        for f in dataclasses.fields(typing.cast(Any, self)):
            value = getattr(self, f.name)
            try:
                cleaned = clean(value)
            except RecursionError:  # circular or absurdly deep data: the writer records it as an error
                continue
            if cleaned is not value:
                object.__setattr__(self, f.name, cleaned)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class Sample(_Record):
    """One benchmark question.

    ``media`` are paths (absolute, or relative to ``root``) of the image(s), or of a video's
    ordered frames / video file when ``media_kind == "video"``. ``answer`` is the gold answer:
    a letter for multiple choice, an integer string for counts, and for InfoVQA the first of
    ``answers`` (all accepted answers). ``metadata`` carries task extras (target boxes as
    ``[x, y, w, h]`` pixels of the original image, key frames, answer types...).
    """

    task: str
    id: str
    question: str
    answer: str
    media: tuple[str, ...]
    media_kind: MediaKind = "image"
    options: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    category: str = ""
    root: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable identity of the sample across runs: ``task/id``."""
        return f"{self.task}/{self.id}"

    @property
    def golds(self) -> tuple[str, ...]:
        """Every accepted answer: ``answers``, or ``(answer,)`` when the task has one gold."""
        return self.answers or (self.answer,)


@dataclass(frozen=True, slots=True)
class ToolCall(_Record):
    """A parsed ``<tool_call>`` block: ``name`` and ``arguments`` as the model wrote them."""

    name: str
    arguments: dict[str, Any]
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Observation(_Record):
    """What a tool call produced.

    ``box`` is the crop in pixels of the image it was cut from (as the model saw it);
    ``box_norm`` the same box as fractions of that image, and ``box_in_original`` as fractions of
    the sample's first image when the crop chain leads back to it (used for IoU with targets).
    ``images`` are the 1-based indices the new images got in the conversation; ``saved`` their
    file names when crops are logged. ``size`` is the size the tool reports in its text;
    ``shown_sizes`` the (width, height) of each new image as the model was shown it, after the
    engine's pixel bounds (empty in records written before it existed).
    """

    kind: ObservationKind
    tool: str
    text: str
    source_image: int | None = None
    box: tuple[int, int, int, int] | None = None
    box_norm: tuple[float, float, float, float] | None = None
    box_in_original: tuple[float, float, float, float] | None = None
    frames: tuple[int, ...] = ()
    size: tuple[int, int] | None = None
    images: tuple[int, ...] = ()
    saved: tuple[str, ...] = ()
    error: str | None = None
    shown_sizes: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Turn(_Record):
    """One model step: its reply, the call it made (if any) and what the harness answered.

    ``raw_reply`` is set only when ``reply`` held lone UTF-16 surrogates (shown in ``reply`` as
    U+FFFD): the exact reply as a JSON string literal, so ``json.loads(raw_reply)`` gives it back.
    """

    index: int
    reply: str
    finish_reason: str = "stop"
    tool_call: ToolCall | None = None
    observation: Observation | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    raw_reply: str | None = None

    def __post_init__(self) -> None:
        if self.raw_reply is None and isinstance(self.reply, str) and clean_text(self.reply) != self.reply:
            object.__setattr__(self, "raw_reply", json.dumps(self.reply))  # ASCII: \ud83d escapes
        _Record.__post_init__(self)


@dataclass(frozen=True, slots=True)
class Trajectory(_Record):
    """A finished episode: the prompt as sent, every turn, and why it ended.

    ``shown_sizes`` is the (width, height) of each image of the first user turn as the model was
    shown it (for a video, each frame); later images are in their turn's ``Observation``.
    """

    task: str
    sample_id: str
    prompt_mode: str
    system: str
    prompt: str
    turns: tuple[Turn, ...]
    end_reason: EndReason
    final_reply: str | None = None
    n_ops: int = 0
    n_errors: int = 0
    last_op_failed: bool = False
    error: str | None = None
    shown_sizes: tuple[tuple[int, int], ...] = ()

    @property
    def used_tools(self) -> bool:
        return self.n_ops > 0


@dataclass(frozen=True, slots=True)
class SampleScore(_Record):
    """The score of one trajectory: what was extracted and how it compares with the gold."""

    task: str
    sample_id: str
    metric: str
    score: float
    extracted: str | None
    gold: tuple[str, ...]
    breakdown: dict[str, str] = field(default_factory=dict)
    scoring: str = "official"


@dataclass(frozen=True, slots=True)
class MetricValue(_Record):
    value: float
    stderr: float
    n: int


@dataclass(frozen=True, slots=True)
class TaskResult(_Record):
    """Aggregate of one task: headline metric, per-category breakdowns and tool-use statistics."""

    task: str
    version: int
    metric: str
    value: float
    stderr: float
    n: int
    breakdown: dict[str, dict[str, MetricValue]] = field(default_factory=dict)
    tool_stats: dict[str, float] = field(default_factory=dict)
    scorer: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)


# Keys results.json carries for lm-eval's readers (derived from the fields; dropped on reading).
LM_EVAL_TOP_KEYS = ("configs", "n-samples", "higher_is_better")
LM_EVAL_TASK_KEYS = ("alias", "name", "sample_len")


def lm_eval_view(result: RunResult) -> dict[str, Any]:
    """lm-eval's ``results.json`` keys for ``result``: per task ``"alias"``, ``"name"``,
    ``"sample_len"``, ``"<metric>,none"``
    and ``"<metric>_stderr,none"`` (headline and corpus metrics, filter ``none``), plus
    ``configs``, ``n-samples`` and ``higher_is_better`` (``versions`` and ``config`` are shared)."""
    per_task: dict[str, dict[str, Any]] = {}
    configs: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    better: dict[str, dict[str, bool]] = {}
    for name, tr in result.results.items():
        values = {tr.metric: MetricValue(tr.value, tr.stderr, tr.n), **tr.metrics}
        per_task[name] = {"name": name, "alias": name, "sample_len": tr.n}
        for metric, mv in values.items():
            per_task[name][f"{metric},none"] = mv.value
            per_task[name][f"{metric}_stderr,none"] = mv.stderr
        better[name] = {m: tr.higher_is_better.get(m, True) for m in values}
        configs[name] = {
            "task": name,
            "output_type": "generate_until",
            "metric_list": [
                {
                    "metric": m,
                    "aggregation": "mean" if m == tr.metric else m,
                    "higher_is_better": better[name][m],
                }
                for m in values
            ],
            "metadata": {"version": tr.version, "prompt_mode": result.config.get("mode"), **tr.scorer},
        }
        n_samples[name] = {"original": result.n_samples.get(name, tr.n), "effective": tr.n}
    return {"results": per_task, "configs": configs, "n-samples": n_samples, "higher_is_better": better}


@dataclass(frozen=True, slots=True)
class RunResult(_Record):
    """Everything ``results.json`` holds about one run.

    ``to_dict`` adds lm-eval's keys (:func:`lm_eval_view`) so lm-eval tooling can read the file;
    ``from_dict`` ignores them, so files written before they existed read the same.
    """

    results: dict[str, TaskResult]
    config: dict[str, Any]
    versions: dict[str, int]
    packages: dict[str, str]
    seed: int
    model: str
    wall_seconds: float
    created: str
    git: str | None = None
    n_samples: dict[str, int] = field(default_factory=dict)
    # Scale-out (harness/run/shard.py, harness/run/merge.py): "I/N" for a shard's own results; the
    # run's configuration fingerprint; for a merged run, where it came from and whether shards
    # or samples were missing (--allow-partial).
    shard: str | None = None
    fingerprint: dict[str, Any] | None = None
    partial: bool = False
    merged: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        view = lm_eval_view(self)
        for name, keys in view.pop("results").items():
            out["results"][name].update(keys)
        out.update(view)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        data = {k: v for k, v in data.items() if k not in LM_EVAL_TOP_KEYS}
        if isinstance(data.get("results"), dict):
            data["results"] = {
                name: {k: v for k, v in row.items() if k not in LM_EVAL_TASK_KEYS and "," not in k}
                if isinstance(row, dict)
                else row
                for name, row in data["results"].items()
            }
        return from_dict(cls, data)


_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One finished sample as a run folder keeps it (one line of samples.jsonl): the sample, its
    trajectory and its score."""

    sample: Sample
    trajectory: Trajectory
    score: SampleScore

    @property
    def key(self) -> str:
        return self.sample.key

    def to_json(self) -> str:
        row = {
            "key": self.key,
            "sample": self.sample.to_dict(),
            "trajectory": self.trajectory.to_dict(),
            "score": self.score.to_dict(),
        }
        line = json.dumps(row, ensure_ascii=False, allow_nan=False, default=str)
        # One record, one line for every reader: str.splitlines() (and JavaScript) also break at
        # U+0085, U+2028 and U+2029, which json.dumps leaves raw; they only occur inside strings.
        return line.translate(_LINE_BREAKS) if not line.isascii() else line

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> SampleRecord:
        return cls(
            sample=Sample.from_dict(row["sample"]),
            trajectory=Trajectory.from_dict(row["trajectory"]),
            score=SampleScore.from_dict(row["score"]),
        )
