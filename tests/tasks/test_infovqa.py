"""InfographicsVQA: schema of the synthetic files, answer boxes, prompts and ANLS scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.records import Sample
from harness_tasks import infovqa, measure

N = 10
COLUMNS = [
    "questionId",
    "question",
    "answers",
    "answer_type",
    "image",
    "image_url",
    "operation/reasoning",
    "ocr",
    "data_split",
    "evidence",
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    return infovqa.synthesize(N, 0, tmp_path_factory.mktemp("infovqa"))


def _sample(answers: tuple[str, ...] = ("Coca Cola", "Coca Cola Company"), **metadata: object) -> Sample:
    return Sample(
        task="infovqa",
        id="1",
        question="Which brand is shown?",
        answer=answers[0],
        media=("x.jpeg",),
        answers=answers,
        metadata=dict(metadata),
    )


def test_files_have_the_lmms_lab_columns(samples: list[Sample]) -> None:
    root = Path(samples[0].root)
    rows = [json.loads(line) for line in (root / infovqa.ROWS_FILE).read_text().splitlines()]
    assert len(rows) == N
    for row in rows:
        assert list(row) == COLUMNS
        assert isinstance(row["questionId"], str) and row["data_split"] == "val"
        for col in ("answers", "answer_type", "operation/reasoning", "evidence"):
            assert isinstance(row[col], list)
        assert row["answers"] and all(isinstance(a, str) and a for a in row["answers"])
        assert set(row["answer_type"]) <= set(infovqa.ANSWER_TYPES)
        assert set(row["evidence"]) <= {"Text", "Table/List", "Figure"}
        assert set(row["operation/reasoning"]) <= {"Comparison", "Arithmetic", "Counting"}
        assert (root / row["image"]).is_file()


def test_answer_types_follow_the_index(samples: list[Sample]) -> None:
    expected = ["single span"] * 5 + ["multi-span", "question span", "question span"] + ["non-extractive"] * 2
    assert [s.category for s in samples] == expected
    for s in samples:
        assert s.answer == s.answers[0]
        if s.category == "question span":  # the answer is one of the two names in the question
            assert s.answer in s.question
        if s.category == "non-extractive":
            assert s.answer.isdigit()


def test_images_are_tall_and_the_answer_needs_the_tool(samples: list[Sample]) -> None:
    """The boxes hold ink; at the model's budget the answer's text is under 0.4 patch tall,
    in the tight crop resized into the crop budget at least one patch tall."""
    for s in samples:
        img = Image.open(Path(s.root) / s.media[0]).convert("L")
        assert list(img.size) == s.metadata["image_size"]
        assert 1200 <= img.width <= 1600 and img.height >= 3.2 * img.width - 1
        view = measure.model_view(img)
        scale = view.height / img.height
        for x, y, w, h in s.metadata["target_boxes"]:
            ink = np.asarray(img.crop((x, y, x + w, y + h))) < 100
            assert ink.mean() > 0.1
            assert h * scale < 0.4 * measure.PATCH
            crop, _ = measure.tight_crop(img, (x, y, w, h))
            zoom = measure.model_view(crop, measure.CROP_MIN_PIXELS)
            assert h * zoom.height / crop.height >= measure.PATCH


def test_question_and_official_prompt_formats() -> None:
    s = _sample()
    assert infovqa.question(s) == "Which brand is shown?"
    assert (
        infovqa.official_prompt(s)
        == "Which brand is shown?\nAnswer the question using a single word or phrase."
    )


@pytest.mark.parametrize(
    ("reply", "extracted", "score"),
    [
        ("\\boxed{Coca cola}", "Coca cola", 1.0),
        ("The answer is Coca Cola Company.", "Coca Cola Company", 1.0),
        ("\\boxed{CocaCola}", "CocaCola", 0.89),
        ("\\boxed{The Coca}", "The Coca", 0.0),
        ("\\boxed{Cola}", "Cola", 0.0),
        ("Reasoning...\nCoca Cola", "Coca Cola", 1.0),
        ("", None, 0.0),
        (None, None, 0.0),
    ],
)
def test_anls_on_the_extracted_span(reply: str | None, extracted: str | None, score: float) -> None:
    got = infovqa.score(reply, _sample())
    assert got.extracted == extracted
    assert got.score == pytest.approx(score, abs=0.005)


def test_anls_boundary_uses_the_organisers_rule() -> None:
    assert infovqa.score("\\boxed{abxy}", _sample(("abcd",))).score == 0.5  # rrc_script keeps 0.5


def test_gold_in_a_box_scores_one_and_breakdown(samples: list[Sample]) -> None:
    for s in samples:
        for gold in s.answers:
            assert infovqa.score(f"\\boxed{{{gold}}}", s).score == 1.0
        b = infovqa.breakdown(s)
        assert list(b) == ["answer_type", "evidence", "operation"]
        assert b["answer_type"] == s.category and b["operation"] in {
            "none",
            "Comparison",
            "Arithmetic",
            "Counting",
        }
        pool = infovqa.chance_answers(s)
        assert len(pool) == len(set(pool)) >= 5
        assert pool[0] in {"What", "Which", "How"} and set(s.metadata["distractors"]) <= set(pool)


def test_breakdown_joins_multi_valued_fields() -> None:
    s = _sample(answer_type=["single span", "multi-span"], evidence=["Text", "Figure"], operation=[])
    assert infovqa.breakdown(s) == {
        "answer_type": "single span+multi-span",
        "evidence": "Text+Figure",
        "operation": "none",
    }


def test_spec_and_hook() -> None:
    spec = infovqa.SPEC
    assert (spec.name, spec.version, spec.media_kind, spec.metric) == ("infovqa", 1, "image", "anls")
    assert spec.scorer_params["tau"] == 0.5 and spec.scorer_params["rule"] == "rrc_script"
    assert infovqa.harness_register_tasks() == [spec]
