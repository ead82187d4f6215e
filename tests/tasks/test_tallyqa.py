"""TallyQA: schema of the synthetic files, counted objects, prompts and count scoring."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from harness.records import Sample
from harness.task import Scored
from harness_tasks import measure, tallyqa
from harness_tasks import synthetic as syn

N = 16


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    return tallyqa.synthesize(N, 0, tmp_path_factory.mktemp("tallyqa"))


def _sample(answer: str = "4", category: str = "complex") -> Sample:
    return Sample(
        task="tallyqa",
        id="1",
        question="How many red triangles are there?",
        answer=answer,
        media=("x.jpg",),
        category=category,
    )


def test_files_have_the_real_schema(samples: list[Sample]) -> None:
    root = Path(samples[0].root)
    rows = json.loads((root / "test.json").read_text())
    assert isinstance(rows, list) and len(rows) == N
    for row in rows:
        assert sorted(row) == [
            "answer",
            "data_source",
            "image",
            "image_id",
            "issimple",
            "question",
            "question_id",
        ]
        assert isinstance(row["answer"], int) and isinstance(row["issimple"], bool)
        assert row["image"] == f"VG_100K_2/{row['image_id']}.jpg" and (root / row["image"]).is_file()
        assert isinstance(row["question_id"], int) and isinstance(row["image_id"], int)


def test_questions_counts_and_boxes(samples: list[Sample]) -> None:
    assert [s.category for s in samples[:4]] == ["simple", "complex", "simple", "complex"]
    counts = {int(s.answer) for s in samples}
    assert counts <= set(range(10)) and len(counts) >= 4
    for s in samples:
        side = s.metadata
        plural = syn.PLURALS[side["shape"]]
        if s.category == "simple":
            assert re.fullmatch(rf"How many {plural} are (there|in the picture)\?", s.question)
        elif side["form"] == "attribute":
            assert s.question == f"How many {side['color']} {plural} are there?"
            assert set(side["target_colors"]) <= {side["color"]}
        else:
            assert s.question == f"How many {plural} are inside the {side['color']} frame?"
        assert len(side["target_boxes"]) == int(s.answer) == len(side["target_colors"])
        for a in side["target_boxes"]:  # counted objects never touch each other
            assert sum(syn.overlaps(tuple(a), tuple(b), tallyqa.GAP - 1) for b in side["target_boxes"]) == 1


def test_needs_the_tool(samples: list[Sample]) -> None:
    """Each counted object: its colour dominates no 28x28 patch at the model's budget, but
    four or more patches of its tight crop (resized into the crop budget)."""
    for s in samples[:8]:
        img = Image.open(Path(s.root) / s.media[0]).convert("RGB")
        view = measure.model_view(img)
        scale = (view.width / img.width, view.height / img.height)
        for box, color in zip(s.metadata["target_boxes"], s.metadata["target_colors"], strict=True):
            rgb = syn.PALETTE[color]
            assert measure.box_share(view, tuple(box), rgb, scale).max() < 0.5
            crop, _ = measure.tight_crop(img, tuple(box))
            assert (
                measure.color_share(measure.model_view(crop, measure.CROP_MIN_PIXELS), rgb) >= 0.5
            ).sum() >= 4


def test_question_and_official_prompt_formats() -> None:
    s = _sample()
    assert tallyqa.question(s) == "How many red triangles are there?"
    assert tallyqa.official_prompt(s) == "How many red triangles are there?\nAnswer with a single number."


@pytest.mark.parametrize(
    ("reply", "extracted", "score"),
    [
        ("\\boxed{4}", "4", 1.0),
        ("\\boxed{four}", "4", 1.0),
        ("There are 4 red triangles.", "4", 1.0),
        ("I count 3, no wait, \\boxed{4}", "4", 1.0),
        ("four", "4", 1.0),
        ("\\boxed{5}", "5", 0.0),
        ("\\boxed{}", None, 0.0),
        ("", None, 0.0),
        (None, None, 0.0),
        ("many", None, 0.0),
    ],
)
def test_score_tricky_replies(reply: str | None, extracted: str | None, score: float) -> None:
    assert tallyqa.score(reply, _sample()) == Scored(score, extracted)


def test_zero_is_a_count() -> None:
    assert tallyqa.score("\\boxed{0}", _sample("0")) == Scored(1.0, "0")
    assert tallyqa.score("There are none.", _sample("0")) == Scored(1.0, "0")


def test_gold_in_a_box_scores_one_and_breakdown(samples: list[Sample]) -> None:
    for s in samples:
        assert tallyqa.score(f"\\boxed{{{s.answer}}}", s).score == 1.0
        assert tallyqa.breakdown(s) == {"subset": s.category} and s.category in tallyqa.SUBSETS
        assert s.metadata["issimple"] == (s.category == "simple")
        assert s.answer in tallyqa.chance_answers(s)


def test_spec_and_hook() -> None:
    spec = tallyqa.SPEC
    assert (spec.name, spec.version, spec.media_kind, spec.metric) == ("tallyqa", 1, "image", "accuracy")
    assert spec.subsets == ("simple", "complex")
    assert tallyqa.harness_register_tasks() == [spec]
