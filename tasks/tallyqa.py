"""TallyQA (arXiv 1810.12440): counting questions; "simple" ones need only detection ("How many
giraffes are there?"), "complex" ones an attribute or a relation as well.

Real layout, reproduced by :func:`synthesize` and read by :func:`load_local`::

    test.json            a JSON list of {"answer": int, "data_source", "image": "VG_100K_2/<n>.jpg",
                         "image_id", "issimple": bool, "question", "question_id"}
    VG_100K_2/<n>.jpg    the images
    synthetic_annotations/<question_id>.json   synthetic only: boxes of the counted objects

Synthetic images are 1800..2800 px wide with 0..9 counted shapes of 12..20 px among distractors
(other shapes; for complex questions also the same shape in other colours or outside the
frame), every object at least 24 px from the next. Simple: "How many triangles are there?";
complex: "How many red triangles are there?" or "How many triangles are inside the blue frame?".
Scoring: ``extract_count`` on the final reply, exact match with the gold count; the RMSE of the
counts is reported alongside (``rmse`` in results, with a bootstrap standard error).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw

from harness import hookimpl
from harness.data import DataError, row_errors
from harness.data.hub import HubError, HubOptions
from harness.records import Sample, SampleScore
from harness.scoring import count_accuracy, extract_count, rmse
from harness.task import CorpusMetric, Scored, TaskSpec

from . import pixel_reasoner
from . import synthetic as syn

NAME = "tallyqa"
HUB_KEY = "tallyqa"  # --data hub:tallyqa=DIR, this task's own hub option
VERSION = 1
SUBSETS = ("simple", "complex")
QUESTIONS_FILE = "test.json"
OBJECT_SIZE = (12, 20)
GAP = 24  # px between any two objects (and between objects and the frame's outline)
COUNT_WEIGHTS = (5, 12, 14, 13, 12, 11, 10, 9, 8, 6)  # counts 0..9
FRAME_LINE = 6


@dataclass(frozen=True)
class _Plan:
    issimple: bool
    form: str  # "simple" | "attribute" | "relation"
    size: tuple[int, int]
    shape: str
    color: str  # attribute colour, or the frame's colour for relations
    count: int
    frame: syn.Box | None
    question: str


def _plan(rng: random.Random, i: int) -> _Plan:
    issimple = i % 2 == 0
    form = "simple" if issimple else ("attribute", "relation")[(i // 2) % 2]
    width = rng.randint(1800, 2800)
    height = rng.randint(int(0.6 * width), min(2000, int(0.8 * width)))
    shape = rng.choice(syn.SHAPES)
    color = rng.choice(syn.COLORS)
    count = rng.choices(range(10), weights=COUNT_WEIGHTS)[0]
    frame = None
    plural = syn.PLURALS[shape]
    if form == "simple":
        question = rng.choice((f"How many {plural} are there?", f"How many {plural} are in the picture?"))
    elif form == "attribute":
        question = f"How many {color} {plural} are there?"
    else:
        fw, fh = rng.randint(width // 3, width // 2), rng.randint(height // 3, height // 2)
        frame = (rng.randint(60, width - fw - 60), rng.randint(60, height - fh - 60), fw, fh)
        question = f"How many {plural} are inside the {color} frame?"
    return _Plan(issimple, form, (width, height), shape, color, count, frame, question)


def _render(plan: _Plan, rng: random.Random) -> tuple[Image.Image, list[syn.Box], list[str]]:
    """Draw the image; return it and the boxes and colours of the counted objects."""
    width, height = plan.size
    img = syn.background(rng, width, height, rng.randint(5, 10))
    draw = ImageDraw.Draw(img)
    taken: list[syn.Box] = []
    inside: syn.Box | None = None
    if plan.frame is not None:
        x, y, w, h = plan.frame
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=syn.PALETTE[plan.color], width=FRAME_LINE)
        inside = (x + GAP, y + GAP, w - 2 * GAP, h - 2 * GAP)
        taken.append(plan.frame)  # objects outside keep GAP from the frame; inside ones get a region
    other_shapes = [s for s in syn.SHAPES if s != plan.shape]
    other_colors = [c for c in syn.COLORS if c != plan.color]

    def put(shape: str, color: str, region: syn.Box | None, avoid: list[syn.Box]) -> syn.Box | None:
        s = rng.randint(*OBJECT_SIZE)
        box = syn.place(rng, width, height, (s, s), avoid, margin=GAP, border=40, region=region)
        if box is not None:
            syn.draw_shape(draw, shape, box, syn.PALETTE[color])
            avoid.append(box)
        return box

    counted: list[syn.Box] = []
    counted_colors: list[str] = []
    inner: list[syn.Box] = []  # objects inside the frame only need to avoid each other
    for _ in range(100 * plan.count):
        if len(counted) == plan.count:
            break
        color = plan.color if plan.form == "attribute" else rng.choice(syn.COLORS)
        box = put(plan.shape, color, inside, inner if inside is not None else taken)
        if box is not None:
            counted.append(box)
            counted_colors.append(color)
    if len(counted) != plan.count:
        raise RuntimeError(f"could not place {plan.count} objects")  # never seen; guards a bad plan
    confusers = rng.randint(2, 6) if plan.form != "simple" else 0
    for _ in range(confusers):  # same shape, not counted: another colour, or outside the frame
        color = rng.choice(other_colors) if plan.form == "attribute" else rng.choice(syn.COLORS)
        put(plan.shape, color, None, taken)
    for _ in range(rng.randint(20, 50)):
        put(rng.choice(other_shapes), rng.choice(syn.COLORS), None, taken)
    if inside is not None:
        for _ in range(rng.randint(2, 8)):
            put(rng.choice(other_shapes), rng.choice(syn.COLORS), inside, inner)
    return img, counted, counted_colors


def load_local(root: Path, split: str = "test") -> list[Sample]:
    """Read ``{split}.json`` of a TallyQA folder into samples (``id`` = ``str(question_id)``,
    ``category`` = "simple" | "complex"; ``metadata`` has ``image_id``, ``data_source``,
    ``issimple`` and any synthetic sidecar, e.g. ``target_boxes``). A missing file or field is
    a ``DataError`` naming the file, row and field."""
    root = Path(root)
    path = root / f"{split}.json"
    if not path.is_file():
        raise DataError(f"{path}: no such file (a TallyQA folder has {split}.json and the VG image folders)")
    samples = []
    for row_no, row in enumerate(syn.read_rows(path, "json")):
        with row_errors(path, row_no):
            qid = str(row["question_id"])
            simple = bool(row["issimple"])
            samples.append(
                Sample(
                    task=NAME,
                    id=qid,
                    question=str(row["question"]),
                    answer=str(int(row["answer"])),
                    media=(str(row["image"]),),
                    media_kind="image",
                    category=SUBSETS[0] if simple else SUBSETS[1],
                    root=str(root),
                    metadata={
                        "image_id": row.get("image_id"),
                        "data_source": row.get("data_source"),
                        "issimple": simple,
                        **syn.read_sidecar(root, qid),
                    },
                )
            )
    return samples


def load_hub(options: HubOptions) -> list[Sample]:
    """TallyQA's test split from ``--data hub:tallyqa=DIR`` (its Visual Genome images are not
    on the Hugging Face Hub): ``DIR/test.json`` + ``DIR/VG_100K*/``."""
    return load_local(hub_root(options))


def hub_root(options: HubOptions) -> Path:
    """The folder of this task's own hub option ``tallyqa=DIR`` (:data:`HUB_KEY`)."""
    folder = options.option(HUB_KEY)
    if folder is None:
        raise HubError(
            "--data hub: TallyQA's Visual Genome images are not on the Hugging Face Hub; "
            "pass the folder with test.json and the VG images: --data hub:tallyqa=DIR"
        )
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise HubError(f"--data hub:tallyqa: no folder {root}")
    return root


def synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    """Write ``n`` TallyQA samples under ``out_dir`` (real layout) and load them back.

    Sample ``i`` depends only on ``(seed, i)``; existing images are kept; files are atomic.
    """
    root = Path(out_dir)
    rows, ids = [], []
    for i in range(n):
        rng = syn.rng_for(NAME, seed, i)
        plan = _plan(rng, i)
        image = f"VG_100K_2/{i}.jpg"
        side_key = str(i)
        if not (root / image).exists() or not syn.sidecar_path(root, side_key).exists():
            img, counted, colors = _render(plan, rng)
            side = {"target_boxes": [list(b) for b in counted], "target_colors": colors}
            side.update(form=plan.form, shape=plan.shape, color=None if plan.form == "simple" else plan.color)
            syn.write_sidecar(root, side_key, side)
            syn.save_image(img, root / image)
        rows.append(
            {
                "answer": plan.count,
                "data_source": "synthetic",
                "image": image,
                "image_id": i,
                "issimple": plan.issimple,
                "question": plan.question,
                "question_id": i,
            }
        )
        ids.append(str(i))
    return syn.write_and_load(
        lambda: syn.ensure_rows(root / QUESTIONS_FILE, rows, "json"), lambda: load_local(root), ids
    )


# --------------------------------------------------------------------------- task functions


def question(sample: Sample) -> str:
    """The question alone (no options; a Pixel-Reasoner row's own text verbatim)."""
    return pixel_reasoner.released_question(sample) or sample.question


def official_prompt(sample: Sample) -> str:
    """TallyQA has no prompt of its own: the question and the answer format, a single number."""
    return f"{sample.question}\nAnswer with a single number."


def score(reply: str | None, sample: Sample) -> Scored:
    """Exact match of ``extract_count`` (last number of the boxed content or answer span; number
    words count) with the gold count. No number found (empty reply, ``None``, "\\boxed{}") is
    wrong; ``extracted`` is the count as a string."""
    count = extract_count(reply)
    return Scored(
        score=count_accuracy(count, int(sample.answer)),
        extracted=None if count is None else str(count),
    )


def breakdown(sample: Sample) -> dict[str, str]:
    """``{"subset": "simple" | "complex"}`` ("unknown" for Pixel-Reasoner rows)."""
    return {"subset": sample.category}


def count_rmse(scores: Sequence[SampleScore]) -> float:
    """RMSE of the extracted counts against the golds (no count = 0, as ``rmse`` does)."""
    preds = [int(s.extracted) if s.extracted is not None else None for s in scores]
    return rmse(preds, [int(s.gold[0]) for s in scores])


def chance_answers(sample: Sample) -> list[str]:
    """Counts "0".."9" (the synthetic range; real TallyQA answers are mostly below 10)."""
    return [str(k) for k in range(10)]


SPEC = TaskSpec(
    name=NAME,
    version=VERSION,
    description="TallyQA: count small objects (simple: by class; complex: with an attribute or "
    "relation); exact-match accuracy.",
    media_kind="image",
    metric="accuracy",
    subsets=SUBSETS,
    synthesize=synthesize,
    question=question,
    official_prompt=official_prompt,
    score=score,
    breakdown=breakdown,
    chance_answers=chance_answers,
    scorer_params={"extractor": "extract_count", "match": "exact"},
    load_hub=load_hub,
    hub_keys=(HUB_KEY,),
    sources={
        "parquet": pixel_reasoner.source(NAME, ("tallyqa",), partial(pixel_reasoner.count_sample, task=NAME))
    },
    corpus_metrics=(CorpusMetric("rmse", count_rmse, higher_is_better=False),),
)


@hookimpl
def harness_register_tasks() -> list[TaskSpec]:
    return [SPEC]
