"""V* Bench: schema of the synthetic files, the "needs the tool" property, prompts and scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.loop.limits import Limits
from harness.records import Sample
from harness.task import Scored
from harness.tools import crop_image_normalized, resize_to_budget
from harness_tasks import measure, vstar
from harness_tasks import synthetic as syn

N = 10


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    return vstar.synthesize(N, 0, tmp_path_factory.mktemp("vstar"))


def _sample(options: tuple[str, ...] = ("red", "green", "blue", "yellow"), answer: str = "B") -> Sample:
    return Sample(
        task="vstar",
        id="0",
        question="What is the color of the cup?",
        answer=answer,
        media=("x.jpg",),
        options=options,
    )


def test_files_have_the_real_schema(samples: list[Sample]) -> None:
    root = Path(samples[0].root)
    rows = [json.loads(line) for line in (root / "test_questions.jsonl").read_text().splitlines()]
    assert len(rows) == N
    for row in rows:
        assert list(row) == ["image", "text", "category", "question_id", "label"]
        assert row["image"].startswith(row["category"] + "/sa_") and row["image"].endswith(".jpg")
        assert row["text"].endswith("\nAnswer with the option's letter from the given choices directly.")
        ann = json.loads((root / row["image"]).with_suffix(".json").read_text())
        assert list(ann) == ["target_object", "bbox", "question", "options"]
        assert all(len(b) == 4 for b in ann["bbox"]) and len(ann["bbox"]) == len(ann["target_object"])
        _, options = vstar.parse_text(row["text"])
        assert options[ord(row["label"]) - ord("A")] == ann["options"][0]  # V* lists the correct option first


def test_categories_options_and_sizes(samples: list[Sample]) -> None:
    cats = [s.category for s in samples]
    assert cats[:5] == [
        "direct_attributes",
        "relative_position",
        "direct_attributes",
        "relative_position",
        "direct_attributes",
    ]
    for s in samples:
        w, h = s.metadata["image_size"]
        assert 2240 <= w <= 3800 and 1500 <= h <= 2100
        if s.category == "direct_attributes":
            assert len(s.options) == 4 and s.question.startswith("What is the color of the ")
            assert s.options[ord(s.answer) - 65] == s.metadata["target_colors"][0]
            assert len(s.metadata["target_boxes"]) == 1
        else:
            assert set(s.options) == {"left", "right"} and " on the left or right side of the " in s.question
            (ax, _, _, _), (bx, _, _, _) = s.metadata["target_boxes"]
            assert s.options[ord(s.answer) - 65] == ("left" if ax < bx else "right")
        assert s.media == (f"{s.category}/sa_{int(s.id):05d}.jpg",) and s.media_kind == "image"


Target = tuple[Image.Image, Image.Image, syn.Box, syn.RGB]


@pytest.fixture(scope="module")
def targets(samples: list[Sample]) -> list[Target]:
    """(image, model view, target box, target colour) of every target, each view computed once."""
    out: list[Target] = []
    for s in samples:
        img = Image.open(Path(s.root) / s.media[0]).convert("RGB")
        view = measure.model_view(img)
        for (x, y, w, h), color in zip(s.metadata["target_boxes"], s.metadata["target_colors"], strict=True):
            out.append((img, view, (x, y, w, h), syn.PALETTE[color]))
    return out


def test_needs_the_tool(targets: list[Target]) -> None:
    """At the model's budget (<= 5120*28*28 px, 28x28 patches) no patch over a target is mostly
    the target's colour; in the target box padded by its size on each side, resized into
    256*28*28.. px, at least four patches are."""
    for img, view, box, rgb in targets:
        x, y, w, h = box
        box_pixels = img.crop((x, y, x + w, y + h)).resize((28, 28))
        assert measure.color_share(box_pixels, rgb).item() > 0.3  # the annotated box holds the target
        scale = (view.width / img.width, view.height / img.height)
        assert measure.box_share(view, box, rgb, scale).max() < 0.5
        crop, _ = measure.tight_crop(img, box)
        zoom = measure.model_view(crop, measure.CROP_MIN_PIXELS)
        assert (measure.color_share(zoom, rgb) >= 0.5).sum() >= 4


def test_released_crop_tool_needs_two_nested_crops(targets: list[Target]) -> None:
    """With the released tool (crop cut from the input bounded to 256..8000 patches, box padded
    by 0.1 of the image, crop resized into 256..5120 patches, then shown by the engine at
    512..5120 patches) one crop leaves targets below one patch; a crop of that crop makes most
    of them dominate a patch."""
    after: dict[int, list[float]] = {1: [], 2: []}
    lim = Limits()
    for img, _view, box, rgb in targets:
        cur = resize_to_budget(img, lim.source_min_pixels, lim.source_max_pixels)
        x, y, w, h = box
        x1, y1, x2, y2 = x / img.width, y / img.height, (x + w) / img.width, (y + h) / img.height
        for depth in (1, 2):  # crop the target's box (as fractions of the current image)
            crop, _, (bx1, by1, bx2, by2) = crop_image_normalized(cur, [x1, y1, x2, y2])
            cur = resize_to_budget(crop, lim.crop_min_pixels, lim.crop_max_pixels)
            shown = resize_to_budget(cur, lim.min_pixels, lim.max_pixels)
            x1, x2 = ((v - bx1) / (bx2 - bx1) for v in (x1, x2))
            y1, y2 = ((v - by1) / (by2 - by1) for v in (y1, y2))
            in_shown = (
                x1 * shown.width,
                y1 * shown.height,
                (x2 - x1) * shown.width,
                (y2 - y1) * shown.height,
            )
            after[depth].append(float(measure.box_share(shown, in_shown, rgb).max()))
    n = len(after[1])
    assert sum(v < 0.5 for v in after[1]) >= 0.8 * n
    assert sum(v >= 0.5 for v in after[2]) >= 0.8 * n


def test_question_and_official_prompt_formats(samples: list[Sample]) -> None:
    s = _sample()
    assert (
        vstar.question(s)
        == "What is the color of the cup?\nchoices:\nA: red  \nB: green  \nC: blue  \nD: yellow"
    )
    assert vstar.official_prompt(s) == (
        "What is the color of the cup?\n(A) red\n(B) green\n(C) blue\n(D) yellow\n"
        "Answer with the option's letter from the given choices directly."
    )
    root = Path(samples[0].root)
    texts = [json.loads(line)["text"] for line in (root / "test_questions.jsonl").read_text().splitlines()]
    for s, text in zip(samples, texts, strict=True):
        assert vstar.official_prompt(s) == text
        assert vstar.official_prompt(Sample(**{**s.to_dict(), "metadata": {}, "options": s.options})) == text
        assert vstar.parse_text(text) == (s.question, s.options)


@pytest.mark.parametrize(
    ("reply", "extracted", "score"),
    [
        ("\\boxed{B}", "B", 1.0),
        ("The cup is green. \\boxed{B}", "B", 1.0),
        ("Answer: C", "C", 0.0),
        ("Based on the image, the answer is C.", "C", 0.0),
        ("Based on the image, the answer is B.", "B", 1.0),
        ("\\boxed{green}", "B", 1.0),
        ("(B) green", "B", 1.0),
        ("AREA.", None, 0.0),
        ("", None, 0.0),
        (None, None, 0.0),
        ("\\boxed{E}", None, 0.0),
    ],
)
def test_score_tricky_replies(reply: str | None, extracted: str | None, score: float) -> None:
    assert vstar.SPEC.score(reply, _sample()) == Scored(score, extracted)


def test_gold_in_a_box_scores_one_and_breakdown(samples: list[Sample]) -> None:
    for s in samples:
        assert vstar.SPEC.score(f"\\boxed{{{s.answer}}}", s).score == 1.0
        assert vstar.breakdown(s) == {"category": s.category}
        assert vstar.SPEC.chance_answers(s) == list("ABCD"[: len(s.options)])


def test_spec_and_hook() -> None:
    spec = vstar.SPEC
    assert (spec.name, spec.version, spec.media_kind, spec.metric) == ("vstar", 1, "image", "accuracy")
    assert spec.subsets == ("direct_attributes", "relative_position")
    assert vstar.harness_register_tasks() == [spec]


# -- released-evaluation acceptance through the real CLI (issue 12) ------------------------------

CROP_CALL = (
    "Let me zoom in.\n<tool_call>\n"
    '{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.45, 0.45, 0.5, 0.5], "target_image": 1}}'
    "\n</tool_call>"
)


def _run_replay(
    tmp_path: Path, replies: dict[str, list[str]], *extra: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write a 3840x2160 V* sample per reply key, replay the replies with ``harness eval``, and
    return (samples.jsonl rows, results.json)."""
    from harness.cli import main

    Image.new("RGB", (3840, 2160), (120, 80, 40)).save(tmp_path / "big.png")
    with (tmp_path / "samples.jsonl").open("w") as fh:
        for key in replies:
            s = Sample(
                task="vstar",
                id=key.split("/", 1)[1],
                question="What is the color of the cup?",
                answer="A",
                media=("big.png",),
                options=("red", "green", "blue", "yellow"),
                category="direct_attributes",
            )
            fh.write(json.dumps(s.to_dict()) + "\n")
    (tmp_path / "replies.json").write_text(json.dumps(replies))
    out = tmp_path / "run"
    argv = ["eval", "--tasks", "vstar", "--model", f"scripted:replay:{tmp_path / 'replies.json'}"]
    argv += [
        "--data",
        f"jsonl:{tmp_path / 'samples.jsonl'}",
        "--output_path",
        str(out),
        "--no_progress",
        *extra,
    ]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "results.json").read_text())


def test_released_crop_source_and_shown_sizes_through_the_cli(tmp_path: Path) -> None:
    """Released: crop cut from the 3332x1876 copy (256..8000*28*28), "Image Size: 840x476"
    (256..5120), shown by the engine at 868x504 (512..5120); the input shown at 2660x1484."""
    rows, results = _run_replay(tmp_path, {"vstar/big": [CROP_CALL, "So the answer is \\boxed{A}."]})
    assert (
        results["config"]["protocol"]
        == results["fingerprint"]["fields"]["protocol"]
        == "crop_image_normalized"
    )
    (row,) = rows
    traj = row["trajectory"]
    obs = traj["turns"][0]["observation"]
    assert obs["text"] == "\nHere is the cropped image (Image Size: 840x476):"
    assert obs["box"] == [1166, 657, 1999, 1126] and obs["size"] == [840, 476]
    assert obs["shown_sizes"] == [[868, 504]] and traj["shown_sizes"] == [[2660, 1484]]
    assert traj["n_ops"] == 1 and row["score"]["score"] == 1.0


def test_text_after_tool_call_is_a_final_answer_through_the_cli(tmp_path: Path) -> None:
    reply = CROP_CALL + "\nSo the answer is \\boxed{A}"
    rows, _ = _run_replay(tmp_path, {"vstar/after": [reply]})
    (row,) = rows
    traj = row["trajectory"]
    assert (traj["end_reason"], traj["n_ops"], traj["final_reply"]) == ("answer", 0, reply)
    assert traj["turns"][0]["observation"] is None and traj["turns"][0]["tool_call"] is None
    assert row["score"]["score"] == 1.0 and row["score"]["extracted"] == "A"


def test_protocol_crop_image_is_advertised_and_recorded(tmp_path: Path) -> None:
    call = CROP_CALL.replace("crop_image_normalized", "crop_image")
    rows, results = _run_replay(tmp_path, {"vstar/old": [call, "\\boxed{A}"]}, "--protocol", "crop_image")
    traj = rows[0]["trajectory"]
    assert (
        '"name": "crop_image", "description": "Zoom in on the image based on the bounding box coordinates."'
        in traj["system"]
    )
    assert "maximum value is the width/height of the image." in traj["system"]
    assert "crop_image_normalized" not in traj["system"]
    assert traj["turns"][0]["observation"]["tool"] == "crop_image"
    assert traj["turns"][0]["observation"]["text"].endswith("(Image Size: 840x476):")
    assert results["config"]["protocol"] == "crop_image"
    assert results["fingerprint"]["fields"]["protocol"] == "crop_image"
