"""Shards of an evaluation (``--shard I/N``) and the fingerprint that says which shards combine.

Membership: sample ``(task, id)`` belongs to shard ``int(sha256("task/id")[:8]) % N``. It depends
on that stable key alone, never on ``--limit`` order, process count, batch size or dict order,
so shards run on different machines or days partition the same sample set exactly. ``--limit``
is applied first (the first N samples of each task, as in an unsharded run), then each shard
keeps its part of them: the N shards together are the unsharded run's samples, each once.

Fingerprint: the fields of a run's configuration that change its results, with a digest:
model and ``--model_args``, tasks with their versions, prompt mode, ``--limit`` and episode
``--limits``, seed, decoding, scoring mode, and the data source with its revision (see
:func:`data_revision`). Batch size, output folder, crop logging and the shard itself are not
part of it. ``harness merge`` combines only shards whose fingerprints are equal, and names the
first field that differs otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.data.source import DataSource
from harness.errors import UserError
from harness.records import Sample
from harness.scoring.aggregate import natural_key

SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# Sources whose argument is a local file: hashed, so the same file on another machine matches.
FILE_SOURCES = ("jsonl", "parquet")
HASH_CHUNK = 1 << 20

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): written ``I/N`` on the command line and in results."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"--shard: expected I/N with 0 <= I < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"1/4"`` -> ``Shard(1, 4)``; anything else is a one-line ``ValueError``."""
        match = SHARD_RE.match(text)
        if not match:
            raise ValueError(f"--shard: expected I/N (e.g. 0/2), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def folder_name(self) -> str:
        """``shard-I-of-N``: the folder one process of an ``accelerate launch`` run writes."""
        return f"shard-{self.index}-of-{self.count}"

    def owns(self, task: str, sample_id: str) -> bool:
        return shard_of(task, sample_id, self.count) == self.index

    def select(self, samples: Iterable[Sample]) -> list[Sample]:
        """This shard's samples, in their original order."""
        return [s for s in samples if self.owns(s.task, s.id)]


def shard_of(task: str, sample_id: str, count: int) -> int:
    """The shard (of ``count``) that sample ``task/sample_id`` belongs to."""
    digest = hashlib.sha256(f"{task}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def canonical_order(
    items: Iterable[S], task_of: Callable[[S], str], id_of: Callable[[S], str], tasks: Sequence[str] = ()
) -> list[S]:
    """``items`` sorted by task (the order of ``tasks``, then by name) and natural sample id."""
    rank = {name: i for i, name in enumerate(tasks)}
    return sorted(items, key=lambda x: (rank.get(task_of(x), len(rank)), task_of(x), natural_key(id_of(x))))


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's contents."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def data_revision(data: str) -> dict[str, Any]:
    """The identity of a ``--data`` source, independent of the machine it is read on.

    - ``synthetic[:SEED]``: the generator seed (the generators are deterministic per task
      version, and task versions are in the fingerprint).
    - ``jsonl:PATH`` / ``parquet:PATH``: the file's content hash (``sha256``), not its path, so
      copies of one file on different machines match. A parquet's ``images/`` folder is not hashed.
    - ``hub[:...]``: ``revision=REV`` when given, else ``"unpinned"`` (the Hub's current files:
      pin a revision to make shards from different days provably comparable). Options naming
      local folders (``mirror=DIR``, ``cache_dir=DIR``, ...) are not part of it.
    """
    try:
        source = DataSource.parse(data)
    except UserError:  # a text no run accepts (never stored by one): it identifies itself
        kind, _, arg = data.partition(":")
        return {"source": kind, "revision": arg}
    if source.kind == "synthetic":
        return {"source": "synthetic", "seed": source.seed}
    if source.kind in FILE_SOURCES:
        path = source.path.expanduser()
        return {
            "source": source.kind,
            "revision": file_digest(path) if path.is_file() else f"missing:{path.name}",
        }
    if source.kind == "hub":
        return {"source": "hub", "revision": source.hub_options().revision or "unpinned"}
    return {"source": source.kind, "revision": source.text}


def fingerprint(config: Mapping[str, Any], versions: Mapping[str, int]) -> dict[str, Any]:
    """The fingerprint of a run: ``{"sha256": digest, "fields": {...}}``.

    ``config`` is ``EvalConfig.to_dict()`` (as in ``run_config.json``); ``versions`` the resolved
    tasks with their versions.
    """
    fields: dict[str, Any] = {
        "model": config.get("model"),
        "model_args": dict(sorted(dict(config.get("model_args") or {}).items())),
        "tasks": {name: versions[name] for name in sorted(versions)},
        "prompt_mode": config.get("mode"),
        "limit": config.get("limit"),
        "limits": dict(config.get("limits") or {}),
        "seed": config.get("seed"),
        "sampling": {"temperature": config.get("temperature"), "top_p": config.get("top_p")},
        "scoring": config.get("scoring"),
        "protocol": config.get("protocol", "crop_image_normalized"),
        "data": data_revision(str(config.get("data", "synthetic"))),
    }
    text = json.dumps(fields, sort_keys=True, ensure_ascii=True, default=str)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "fields": fields}


def fingerprint_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first field (dotted path, e.g. ``model_args.dtype``) where two fingerprints differ."""
    if a.get("sha256") == b.get("sha256"):
        return None
    fa, fb = dict(a.get("fields") or {}), dict(b.get("fields") or {})
    return _first_difference(fa, fb, "") or "sha256"


def _first_difference(a: Any, b: Any, prefix: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return prefix.rstrip(".") if a != b else None


def field_value(fp: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` of a fingerprint's fields (``None`` when absent)."""
    value: Any = fp.get("fields") or {}
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
