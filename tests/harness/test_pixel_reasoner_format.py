"""``--data parquet:PATH``: Pixel-Reasoner eval parquets generated here in the released schema
(``qid``, ``question``, ``answer`` string or list, ``image`` list, ``is_video``; ``images/``
beside the file), mapped to each task, and the errors that name the file, row and field."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from harness.data import DataError, load_samples, open_media
from harness.plugins import Harness
from harness.run.evaluate import EvalConfig, evaluate
from harness_tasks import vstar


def _pr_parquet(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """``<bench>.parquet`` + ``images/`` as the released ``images.zip`` unpacks."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        for rel in row["image"]:
            if not (folder / rel).exists():
                Image.new("RGB", (80, 60), (200, 10, 10)).save(folder / rel)
    path = folder / f"{name}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


VSTAR_ROWS = [
    {
        "qid": "vstar-0",
        "question": "What is the color of the cup?\nchoices:\nA: red  \nB: blue  \nC: green  \nD: white",
        "answer": "A",
        "image": ["images/0.jpg"],
        "is_video": False,
    },
    {
        "qid": "vstar-1",
        "question": "Is the cup on the left or right side of the dog?\nchoices:\nA: left  \nB: right",
        "answer": "right",
        "image": ["images/1.jpg"],
        "is_video": False,
    },
]


def test_pixel_reasoner_parquets_map_to_each_task(tmp_path: Path, harness_instance: Harness) -> None:
    v = _pr_parquet(tmp_path / "v", "vstar", VSTAR_ROWS)
    frames = [f"images/f{k}.jpg" for k in range(16)]
    m = _pr_parquet(
        tmp_path / "m",
        "mvbench",
        [{"qid": "mvbench-action_count-3", "question": "How many?\nchoices:\nA: 2  \nB: 3", "answer": "(B) 3",
          "image": frames, "is_video": True}],
    )  # fmt: skip
    t = _pr_parquet(
        tmp_path / "t",
        "tallyqa_mini3200",
        [
            {
                "qid": "tallyqa-9",
                "question": "How many dogs?",
                "answer": "4",
                "image": ["images/9.jpg"],
                "is_video": False,
            }
        ],
    )
    i = _pr_parquet(
        tmp_path / "i",
        "infovqa",
        [
            {
                "qid": "infovqa-5",
                "question": "Share?",
                "answer": ["45%", "45"],
                "image": ["images/5.jpg"],
                "is_video": False,
            }
        ],
    )
    [va, vb] = load_samples(harness_instance.task("vstar"), f"parquet:{v}")
    assert (va.id, va.answer, va.options, va.category) == (
        "vstar-0",
        "A",
        ("red", "blue", "green", "white"),
        "direct_attributes",
    )
    assert (vb.answer, vb.category, vb.question) == (
        "B",
        "relative_position",
        "Is the cup on the left or right side of the dog?",
    )
    assert vstar.question(va) == VSTAR_ROWS[0]["question"]  # shown verbatim in vcot/notool
    assert "target_boxes" not in va.metadata  # not in the format: the oracle cannot zoom
    [mv] = load_samples(harness_instance.task("mvbench"), f"parquet:{m}")
    assert (mv.media_kind, len(mv.media), mv.answer, mv.category) == ("video", 16, "B", "action_count")
    assert len(open_media(mv)) == 16
    [tq] = load_samples(harness_instance.task("tallyqa"), f"parquet:{t}")
    assert (tq.answer, tq.category) == ("4", "unknown")
    [iv] = load_samples(harness_instance.task("infovqa"), f"parquet:{i}")
    assert iv.answers == ("45%", "45") and iv.metadata["pr_answer"] == ["45%", "45"]
    config = EvalConfig(tasks="vstar,mvbench", model="scripted:oracle", data=f"parquet:{v}", mode="notool")
    with pytest.raises(DataError, match="no row belongs to task mvbench"):
        evaluate(config, harness_instance, show_progress=False)
    result = evaluate(dataclasses.replace(config, tasks="vstar"), harness_instance, show_progress=False)
    assert result.results["vstar"].value == 1.0
    # the released rule compares with the row's own answer: "right" is not the letter the model gave
    released = evaluate(
        dataclasses.replace(config, tasks="vstar", scoring="pixel_reasoner"),
        harness_instance,
        show_progress=False,
    )
    assert released.results["vstar"].value == 0.5


def test_qid_prefix_selects_rows_when_the_file_name_does_not(
    tmp_path: Path, harness_instance: Harness
) -> None:
    rows = [
        *VSTAR_ROWS,
        {
            "qid": "tallyqa-1",
            "question": "How many?",
            "answer": "2",
            "image": ["images/2.jpg"],
            "is_video": False,
        },
    ]
    path = _pr_parquet(tmp_path, "mixed_eval", rows)
    assert [s.id for s in load_samples(harness_instance.task("vstar"), f"parquet:{path}")] == [
        "vstar-0",
        "vstar-1",
    ]
    assert [s.id for s in load_samples(harness_instance.task("tallyqa"), f"parquet:{path}")] == ["tallyqa-1"]
    with pytest.raises(
        DataError, match=r"no row belongs to task infovqa .*'mixed_eval'.*\['tallyqa', 'vstar'\]"
    ):
        load_samples(harness_instance.task("infovqa"), f"parquet:{path}")


def _bad(rows: list[dict[str, Any]], **change: Any) -> list[dict[str, Any]]:
    return [{**rows[0], **change}, rows[1]]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda rows: [{k: v for k, v in r.items() if k != "is_video"} for r in rows],
            r"vstar\.parquet: missing column\(s\) 'is_video'",
        ),
        (
            lambda rows: _bad(rows, answer=None),
            r"vstar\.parquet: row 0 \(qid 'vstar-0'\): field 'answer' is empty",
        ),
        (
            lambda rows: _bad(rows, answer="Z"),
            r"vstar\.parquet: row 0: qid 'vstar-0': field 'answer' 'Z' names no option",
        ),
        (
            lambda rows: _bad(rows, question="no options here"),
            r"vstar\.parquet: row 0: .*field 'question' has no 'choices:'",
        ),
        (
            lambda rows: _bad(rows, image=[]),
            r"vstar\.parquet: row 0 \(qid 'vstar-0'\): field 'image' must be a list",
        ),
    ],
)
def test_malformed_parquet_names_file_row_and_field(
    tmp_path: Path,
    harness_instance: Harness,
    mutate: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    match: str,
) -> None:
    path = _pr_parquet(tmp_path, "vstar", mutate([dict(r) for r in VSTAR_ROWS]))
    with pytest.raises(DataError, match=match):
        load_samples(harness_instance.task("vstar"), f"parquet:{path}")


def test_missing_or_unreadable_parquet_file(tmp_path: Path, harness_instance: Harness) -> None:
    with pytest.raises(DataError, match=r"nope\.parquet: no such file"):
        load_samples(harness_instance.task("vstar"), f"parquet:{tmp_path / 'nope.parquet'}")
    (tmp_path / "vstar.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"vstar\.parquet: not a readable parquet file"):
        load_samples(harness_instance.task("vstar"), f"parquet:{tmp_path / 'vstar.parquet'}")
