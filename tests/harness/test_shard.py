"""Shard membership (hashed stable key), ``--shard`` parsing and the run fingerprint."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.loop.limits import Limits
from harness.records import Sample
from harness.run.evaluate import EvalConfig
from harness.run.shard import (
    Shard,
    canonical_order,
    data_revision,
    fingerprint,
    fingerprint_difference,
    natural_key,
    shard_of,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0/2", Shard(0, 2)), ("1/2", Shard(1, 2)), (" 2 / 3 ", Shard(2, 3)), ("0/1", Shard(0, 1))],
)
def test_parse(text: str, expected: Shard) -> None:
    assert Shard.parse(text) == expected
    assert str(expected) == f"{expected.index}/{expected.count}"


@pytest.mark.parametrize("text", ["2/2", "3/2", "0/0", "1", "a/b", "-1/2", "1/2/3", ""])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--shard") as info:
        Shard.parse(text)
    assert "\n" not in str(info.value)


def sample(task: str, sid: str) -> Sample:
    return Sample(task=task, id=sid, question="q", answer="a", media=("x.png",))


KEYS = [(task, str(i)) for task in ("vstar", "tallyqa", "infovqa") for i in range(300)] + [
    ("mvbench", f"action_count_{i:04d}") for i in range(100)
]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_samples(count: int) -> None:
    samples = [sample(t, i) for t, i in KEYS]
    parts = [Shard(k, count).select(samples) for k in range(count)]
    keys = [s.key for part in parts for s in part]
    assert sorted(keys) == sorted(s.key for s in samples)  # every sample once
    assert all(len(part) > len(samples) / count / 2 for part in parts)  # roughly balanced


def test_membership_depends_only_on_the_key() -> None:
    samples = [sample(t, i) for t, i in KEYS]
    shuffled = samples[:]
    random.Random(0).shuffle(shuffled)
    shard = Shard(1, 3)
    assert {s.key for s in shard.select(samples)} == {s.key for s in shard.select(shuffled)}
    # a prefix (--limit) keeps exactly the prefix's members: membership never depends on the limit
    assert shard.select(samples[:50]) == [s for s in shard.select(samples) if s in samples[:50]]


# Pinned: a change of the hash would silently re-partition shards already stored on disk.
@pytest.mark.parametrize(
    ("task", "ids", "count", "expected"),
    [
        ("vstar", [str(i) for i in range(12)], 2, [1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0]),
        ("mvbench", [f"action_count_{i:04d}" for i in range(8)], 3, [0, 2, 0, 2, 2, 1, 2, 1]),
    ],
)
def test_membership_is_pinned(task: str, ids: list[str], count: int, expected: list[int]) -> None:
    assert [shard_of(task, i, count) for i in ids] == expected


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["10", "2", "1"], ["1", "2", "10"]),
        (["a_10", "a_9", "b_1"], ["a_9", "a_10", "b_1"]),
        (["x", "10", "2"], ["2", "10", "x"]),
    ],
)
def test_natural_order(ids: list[str], expected: list[str]) -> None:
    assert sorted(ids, key=natural_key) == expected


def test_canonical_order_follows_the_task_order() -> None:
    items = [sample("vstar", "2"), sample("tallyqa", "10"), sample("vstar", "10"), sample("tallyqa", "9")]
    ordered = canonical_order(items, lambda s: s.task, lambda s: s.id, ["vstar", "tallyqa"])
    assert [s.key for s in ordered] == ["vstar/2", "vstar/10", "tallyqa/9", "tallyqa/10"]


def config(**changes: Any) -> dict[str, Any]:
    return EvalConfig(**{"tasks": "vstar", "model": "scripted:random", **changes}).to_dict()


VERSIONS = {"vstar": 1}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seed": 1}, "seed"),
        ({"model": "scripted:oracle"}, "model"),
        ({"model_args": {"tool_rate": "0.9"}}, "model_args.tool_rate"),
        ({"mode": "notool"}, "prompt_mode"),
        ({"limit": 7}, "limit"),
        ({"limits": Limits(max_ops=2)}, "limits.max_ops"),
        ({"data": "synthetic:3"}, "data.seed"),
        ({"temperature": 0.7}, "sampling.temperature"),
        ({"scoring": "pixel_reasoner"}, "scoring"),
    ],
)
def test_fingerprint_names_the_differing_field(changes: dict[str, Any], field: str) -> None:
    base = fingerprint(config(), VERSIONS)
    other = fingerprint(config(**changes), VERSIONS)
    assert base["sha256"] != other["sha256"]
    assert fingerprint_difference(base, other) == field


@pytest.mark.parametrize(
    "changes",
    [
        {"batch_size": 1},
        {"output_path": "/elsewhere"},
        {"shard": "1/2"},
        {"resume": True},
        {"log_crops": True},
    ],
)
def test_fingerprint_ignores_what_does_not_change_results(changes: dict[str, Any]) -> None:
    assert fingerprint(config(**changes), VERSIONS) == fingerprint(config(), VERSIONS)


def test_fingerprint_includes_task_versions() -> None:
    a, b = fingerprint(config(), {"vstar": 1}), fingerprint(config(), {"vstar": 2})
    assert fingerprint_difference(a, b) == "tasks.vstar"


def test_data_revision_of_files_is_their_content(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "data.jsonl", tmp_path / "b" / "copy.jsonl"
    for path in (one, two):
        path.parent.mkdir()
        path.write_text(json.dumps({"task": "vstar"}) + "\n")
    assert data_revision(f"jsonl:{one}") == data_revision(f"jsonl:{two}")  # same bytes, other machine/path
    two.write_text("changed\n")
    assert data_revision(f"jsonl:{one}") != data_revision(f"jsonl:{two}")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("synthetic", {"source": "synthetic", "seed": 0}),
        ("synthetic:5", {"source": "synthetic", "seed": 5}),
        ("hub", {"source": "hub", "revision": "unpinned"}),
        ("hub:mirror=/m,revision=abc", {"source": "hub", "revision": "abc"}),
        ("hub:cache_dir=/x,tallyqa=/y", {"source": "hub", "revision": "unpinned"}),
        ("synthetic:", {"source": "synthetic", "seed": 0}),
        ("hub:", {"source": "hub", "revision": "unpinned"}),
        ("hub:revision=v1.0,tallyqa=/t", {"source": "hub", "revision": "v1.0"}),
        ("jsonl:/nonexistent/x.jsonl", {"source": "jsonl", "revision": "missing:x.jsonl"}),
        ("parquet:/nonexistent/y.parquet", {"source": "parquet", "revision": "missing:y.parquet"}),
        ("lmms:foo", {"source": "lmms", "revision": "foo"}),
        ("synthetic:x", {"source": "synthetic", "revision": "x"}),  # refused by every run
    ],
)
def test_data_revision(data: str, expected: dict[str, Any]) -> None:
    assert data_revision(data) == expected


@pytest.mark.parametrize(
    ("data", "digest"),
    [  # computed by the code before --data was parsed by DataSource (commit 4f4a984)
        ("hub:mirror=/m,revision=abc", "315fdd69ad1c7b027422a4424bb47f59a9a8b363bc535d572871d8182e235575"),
        ("synthetic:3", "7a9f9c43fd7f07947ab641826204aa8022a827b5215d9a01f2f5033b71297fd6"),
    ],
)
def test_fingerprints_of_older_run_folders_are_unchanged(data: str, digest: str) -> None:
    """merge and --resume compare stored fingerprints with recomputed ones: a run folder written
    before must keep its digest."""
    stored = {"model": "hf:@tiny", "model_args": {}, "mode": "tool", "limit": 4, "limits": {}, "seed": 0}
    stored |= {"temperature": 0.0, "top_p": 1.0, "scoring": "official", "data": data}
    assert fingerprint(stored, {"vstar": 1})["sha256"] == digest
