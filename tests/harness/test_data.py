from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.data import DataError, MediaError, load_jsonl, load_samples, open_media
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
