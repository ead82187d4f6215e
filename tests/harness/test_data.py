from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.data import DataError, MediaError, load_jsonl, load_samples, open_media
from harness.data.hub import HubError
from harness.data.source import DataSource
from harness.plugins import Harness
from harness.records import Sample
from harness.run.evaluate import EvalConfig, evaluate


def test_jsonl_source_round_trips_and_evaluates(
    tmp_path: Path, harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    samples = make_samples("vstar", 3) + make_samples("tallyqa", 2)
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in samples))
    assert load_jsonl(path) == samples
    assert load_samples(harness_instance.task("tallyqa"), f"jsonl:{path}") == samples[3:]
    result = evaluate(
        EvalConfig(tasks="vstar,tallyqa", model="scripted:oracle", data=f"jsonl:{path}"),
        harness_instance,
        show_progress=False,
    )
    assert {k: (r.value, r.n) for k, r in result.results.items()} == {"vstar": (1.0, 3), "tallyqa": (1.0, 2)}


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (
            '{"task": "vstar", "id": "1", "question": "q", "answer": "A"}',
            r"data.jsonl:1: missing field 'media'",
        ),
        ("{not json", r"data.jsonl:1:"),
        ('{"task": "vstar", "id": "1", "question": "q", "answer": "A", "media": [], "colour": 1}', "colour"),
    ],
)
def test_malformed_jsonl_names_file_line_and_field(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DataError, match=match):
        load_jsonl(path)


def test_unknown_source_and_bad_seed(harness_instance: Harness) -> None:
    with pytest.raises(DataError, match="unknown --data source"):
        load_samples(harness_instance.task("vstar"), "parquet-ish:x")
    with pytest.raises(DataError, match="integer seed"):
        load_samples(harness_instance.task("vstar"), "synthetic:abc")


def test_corrupt_and_missing_images_name_the_sample_and_field(
    tmp_path: Path, make_samples: Callable[..., list[Sample]]
) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    base = dataclasses.replace(make_samples("vstar", 1)[0], root=str(tmp_path))
    with pytest.raises(MediaError, match=r"vstar/.*: media\[0\]: cannot decode"):
        open_media(dataclasses.replace(base, media=("bad.jpg",)))
    with pytest.raises(MediaError, match=r"media\[0\]: file not found"):
        open_media(dataclasses.replace(base, media=("gone.jpg",)))
    with pytest.raises(MediaError, match="escapes the data root"):
        open_media(dataclasses.replace(base, media=(str(tmp_path.parent / "x.jpg"),)))


@pytest.mark.parametrize(
    ("text", "kind", "arg"),
    [
        ("synthetic", "synthetic", None),
        ("synthetic:", "synthetic", ""),
        ("synthetic:7", "synthetic", "7"),
        ("hub:mirror=/m,revision=v1", "hub", "mirror=/m,revision=v1"),
        ("parquet:/a:b.parquet", "parquet", "/a:b.parquet"),
        ("jsonl:x.jsonl", "jsonl", "x.jsonl"),
        ("mine", "mine", None),
    ],
)
def test_data_source_parses_once_and_keeps_its_spelling(text: str, kind: str, arg: str | None) -> None:
    source = DataSource.parse(text)
    assert (source.kind, source.arg) == (kind, arg)
    assert str(source) == text  # what run folders store, so a resume compares equal
    assert DataSource.of(source) is source and DataSource.of(text) == source


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("synthetic:abc", DataError, "--data synthetic:SEED needs an integer seed, got 'abc'"),
        ("hub:mirror", HubError, "--data hub: bad option 'mirror'; expected KEY=VALUE"),
    ],
)
def test_bad_data_is_refused_when_parsed(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DataSource.parse(text)


def test_eval_config_parses_data_text_once() -> None:
    config = EvalConfig(tasks="vstar", model="scripted:oracle", data="synthetic:3")
    assert config.source == DataSource("synthetic", "3") and config.source.seed == 3
    assert config.to_dict()["data"] == "synthetic:3"
    with pytest.raises(DataError, match="integer seed"):
        EvalConfig(tasks="vstar", model="scripted:oracle", data="synthetic:x")
