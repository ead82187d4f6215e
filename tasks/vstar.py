"""V* Bench (SEAL, arXiv 2312.14135; data ``craigwu/vstar_bench``): find a small object in a
high-resolution image and answer a multiple-choice question about it.

Real layout, reproduced by :func:`synthesize` and read by :func:`load_local`::

    test_questions.jsonl            {"image", "text", "category", "question_id", "label"} per line
    direct_attributes/<name>.jpg    the photo
    direct_attributes/<name>.json   {"target_object": [...], "bbox": [[x, y, w, h], ...],
                                     "question": ..., "options": [correct first, ...]}
    relative_position/...           the same for the second category
    synthetic_annotations/<category>/<name>.json   synthetic only: the targets' colours

``text`` holds the question, the options as ``(A) ...`` lines and the instruction
"Answer with the option's letter from the given choices directly."; ``label`` is the letter.

Synthetic images are 2240..3800 px wide with one or two target shapes of 12..18 px among larger
and smaller distractors of other shapes; no distractor comes within 64 px of a target. At the
model's pixel budget a target covers well under one 28x28 patch, so its colour dominates no
patch; in a tight crop it spans many (tested in ``tests/tasks/test_vstar.py``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from harness import hookimpl
from harness.data import DataError, row_errors
from harness.data.confine import PathEscape, confined
from harness.data.hub import HubOptions
from harness.records import Sample
from harness.task import TaskSpec

from . import choice, pixel_reasoner
from . import synthetic as syn

NAME = "vstar"
VERSION = 1
CATEGORIES = ("direct_attributes", "relative_position")
INSTRUCTION = "Answer with the option's letter from the given choices directly."
QUESTIONS_FILE = "test_questions.jsonl"
HUB_ID = "craigwu/vstar_bench"
TARGET_SIZE = (12, 18)  # px, side of a target's box in the original image
CLEARANCE = 64  # px between a target box and any distractor
_OPTION_LINE = re.compile(r"^\(([A-Z])\) (.*)$")


# --------------------------------------------------------------------------- data


def format_text(question_text: str, options: Sequence[str]) -> str:
    """The ``text`` field of ``test_questions.jsonl`` (the official prompt)."""
    return f"{question_text}\n{syn.paren_options(options)}\n{INSTRUCTION}"


def parse_text(text: str) -> tuple[str, tuple[str, ...]]:
    """Split a ``text`` field into the question and its options (lines ``(A) ...``)."""
    question_lines: list[str] = []
    options: list[str] = []
    for line in text.split("\n"):
        m = _OPTION_LINE.match(line)
        if m is not None and m.group(1) == syn.letters(len(options) + 1)[-1]:
            options.append(m.group(2).strip())
        elif options:
            break  # the instruction line
        else:
            question_lines.append(line)
    return "\n".join(question_lines).strip(), tuple(options)


def load_local(root: Path) -> list[Sample]:
    """Read a V* folder (``test_questions.jsonl`` + per-image json) into samples.

    ``id`` is ``str(question_id)``; ``metadata`` holds ``target_boxes`` ([x, y, w, h] pixels),
    ``target_object``, ``image_size`` [w, h] (absent when the image cannot be opened: the
    rollout then records that sample's media error), the official ``text``, and any synthetic
    sidecar. A missing file or field is a ``DataError`` naming the file, row and field.
    """
    root = Path(root)
    path = root / QUESTIONS_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file (a V* folder has {QUESTIONS_FILE} and the category folders)")
    samples = []
    for row_no, row in enumerate(syn.read_jsonl(path)):
        with row_errors(path, row_no):
            samples.append(_sample(root, row))
    return samples


def _sample(root: Path, row: dict[str, Any]) -> Sample:
    question_text, options = parse_text(row["text"])
    if len(options) < 2:
        raise ValueError(f"question_id {row['question_id']}: field 'text' has no (A)/(B) options")
    image = str(row["image"])
    image_path: Path | None
    ann_path: Path | None
    try:  # the row names files under the data root; a name that leads out of it reads nothing here
        image_path = confined(root, image)  # (open_media refuses it as the sample's error)
        ann_path = confined(root, Path(image).with_suffix(".json"))
    except PathEscape:
        image_path = ann_path = None
    ann = syn.read_json(ann_path) if ann_path is not None and ann_path.is_file() else {}
    metadata: dict[str, Any] = {
        "target_boxes": [list(b) for b in ann.get("bbox", [])],
        "target_object": list(ann.get("target_object", [])),
        "text": row["text"],
        **syn.read_sidecar(root, str(Path(image).with_suffix("").as_posix())),
    }
    try:
        if image_path is not None:
            with Image.open(image_path) as im:
                metadata["image_size"] = [im.width, im.height]
    except (OSError, ValueError):
        pass
    return Sample(
        task=NAME,
        id=str(row["question_id"]),
        question=question_text,
        answer=str(row["label"]),
        media=(image,),
        media_kind="image",
        options=options,
        category=str(row["category"]),
        root=str(root),
        metadata=metadata,
    )


def load_hub(options: HubOptions) -> list[Sample]:
    """``craigwu/vstar_bench`` (``test_questions.jsonl`` + category folders) via the hub."""
    return load_local(options.repo_dir(HUB_ID))


def _pr_category(qid: str, n_options: int) -> str:
    """Not in the Pixel-Reasoner format: inferred from the option count (V* asks colour and
    material questions with 4 options, left/right questions with 2)."""
    return {4: CATEGORIES[0], 2: CATEGORIES[1]}.get(n_options, "unknown")


@dataclass(frozen=True)
class _Plan:
    """Every random decision of one sample but its distractors (drawn while rendering)."""

    category: str
    size: tuple[int, int]
    shapes: tuple[str, ...]
    colors: tuple[str, ...]
    boxes: tuple[syn.Box, ...]
    question: str
    options_correct_first: tuple[str, ...]
    options: tuple[str, ...]
    label: str


def _plan(rng: random.Random, i: int) -> _Plan:
    category = CATEGORIES[0] if i % 5 in (0, 2, 4) else CATEGORIES[1]  # 60% / 40%, both early
    width = rng.randint(2240, 3800)
    height = rng.randint(max(1500, int(0.55 * width)), min(2100, int(0.75 * width)))
    n_targets = 1 if category == CATEGORIES[0] else 2
    shapes = tuple(rng.sample(syn.SHAPES, n_targets))
    colors = tuple(rng.choice(syn.COLORS) for _ in shapes)
    boxes: list[syn.Box] = []
    while len(boxes) < n_targets:
        s = rng.randint(*TARGET_SIZE)
        box = syn.place(rng, width, height, (s, s), boxes, margin=2 * CLEARANCE, border=120)
        if box is None:
            continue
        if boxes and abs(box[0] - boxes[0][0]) < 0.15 * width:
            continue  # relative_position: keep the two targets clearly apart horizontally
        boxes.append(box)
    if category == CATEGORIES[0]:
        question_text = f"What is the color of the {shapes[0]}?"
        correct = colors[0]
        options = [correct, *rng.sample([c for c in syn.COLORS if c != correct], 3)]
    else:
        question_text = f"Is the {shapes[0]} on the left or right side of the {shapes[1]}?"
        correct = "left" if boxes[0][0] < boxes[1][0] else "right"
        options = [correct, "right" if correct == "left" else "left"]
    shown = options[:]
    rng.shuffle(shown)
    return _Plan(
        category=category,
        size=(width, height),
        shapes=shapes,
        colors=colors,
        boxes=tuple(boxes),
        question=question_text,
        options_correct_first=tuple(options),
        options=tuple(shown),
        label=syn.letters(len(shown))[shown.index(correct)],
    )


def _render(plan: _Plan, rng: random.Random) -> Image.Image:
    width, height = plan.size
    img = syn.background(rng, width, height, rng.randint(6, 12))
    draw = ImageDraw.Draw(img)
    others = [s for s in syn.SHAPES if s not in plan.shapes]
    for lo, hi, count in ((60, 320, rng.randint(8, 16)), (10, 24, rng.randint(30, 60))):
        for _ in range(count):
            s = rng.randint(lo, hi)
            box = syn.place(rng, width, height, (s, s), plan.boxes, margin=CLEARANCE)
            if box is not None:
                syn.draw_shape(draw, rng.choice(others), box, syn.PALETTE[rng.choice(syn.COLORS)])
    for shape, color, box in zip(plan.shapes, plan.colors, plan.boxes, strict=True):
        syn.draw_shape(draw, shape, box, syn.PALETTE[color])
    return img


def synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    """Write ``n`` V* samples under ``out_dir`` (real layout) and load them back.

    Sample ``i`` depends only on ``(seed, i)``; existing images are kept; files are atomic.
    """
    root = Path(out_dir)
    rows, ids = [], []
    for i in range(n):
        rng = syn.rng_for(NAME, seed, i)
        plan = _plan(rng, i)
        stem = f"{plan.category}/sa_{i:05d}"
        image_path = root / f"{stem}.jpg"
        if not image_path.exists():
            syn.save_image(_render(plan, rng), image_path)
        annotation = {
            "target_object": list(plan.shapes),
            "bbox": [list(b) for b in plan.boxes],
            "question": plan.question,
            "options": list(plan.options_correct_first),
        }
        syn.ensure_json(root / f"{stem}.json", annotation)
        syn.write_sidecar(root, stem, {"target_colors": list(plan.colors)})
        rows.append(
            {
                "image": f"{stem}.jpg",
                "text": format_text(plan.question, plan.options),
                "category": plan.category,
                "question_id": i,
                "label": plan.label,
            }
        )
        ids.append(str(i))
    return syn.write_and_load(
        lambda: syn.ensure_rows(root / QUESTIONS_FILE, rows, "jsonl"), lambda: load_local(root), ids
    )


# --------------------------------------------------------------------------- task functions


def question(sample: Sample) -> str:
    """Pixel-Reasoner format: the question, then ``choices:`` and ``A: opt`` lines (a
    Pixel-Reasoner row's own text verbatim)."""
    return pixel_reasoner.released_question(sample) or syn.pr_choices(sample.question, sample.options)


def official_prompt(sample: Sample) -> str:
    """The official V* prompt: the jsonl ``text`` when known, else rebuilt identically."""
    text = sample.metadata.get("text")
    return str(text) if text else format_text(sample.question, sample.options)


def breakdown(sample: Sample) -> dict[str, str]:
    """``{"category": "direct_attributes" | "relative_position"}``."""
    return {"category": sample.category}


SPEC = TaskSpec(
    name=NAME,
    version=VERSION,
    description="V* Bench: a small object in a high-resolution image; colour (4 options) or "
    "left/right relation (2 options); accuracy.",
    media_kind="image",
    metric="accuracy",
    subsets=CATEGORIES,
    synthesize=synthesize,
    question=question,
    official_prompt=official_prompt,
    score=choice.score,
    breakdown=breakdown,
    chance_answers=choice.chance_answers,
    scorer_params={"extractor": "extract_choice", "empty_answer": "wrong"},
    load_hub=load_hub,
    sources={
        "parquet": pixel_reasoner.source(
            NAME, ("vstar",), partial(pixel_reasoner.choice_sample, task=NAME, category=_pr_category)
        )
    },
)


@hookimpl
def harness_register_tasks() -> list[TaskSpec]:
    return [SPEC]
