"""InfographicsVQA (arXiv 2104.12756; ``lmms-lab/DocVQA`` config ``InfographicVQA``): questions on
tall, text-dense infographics; free-text answers scored by ANLS (tau 0.5).

Layout written by :func:`synthesize` and read by :func:`load_local` (the lmms-lab columns, as
JSON lines instead of parquet, ``image`` a path relative to the data root instead of bytes, plus
``evidence`` from the original release)::

    InfographicVQA/validation.jsonl    {"questionId": str, "question", "answers": [...],
                                        "answer_type": [...], "image", "image_url",
                                        "operation/reasoning": [...], "ocr", "data_split",
                                        "evidence": [...]}
    InfographicVQA/images/<questionId>.jpeg
    synthetic_annotations/<questionId>.json   synthetic only: answer boxes, distractor strings

Synthetic infographics are 1200..1600 px wide and 3.2..3.8 times as tall: a title band, then
rows of one to three blocks (a paragraph, a list or a bar chart) whose headings are large and
whose facts are written in 11..13 px text. Answer types: "single span" (half), "multi-span",
"question span" (a comparison), "non-extractive" (a sum or a count).

Scoring mode ``anls_paper`` (``--scoring``, registered here): ANLS with the paper's rule (Biten
et al. 2019; exactly 0.5 is 0) instead of the organisers' script. InfoVQA only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw

from harness import hookimpl
from harness.data import DataError, row_errors
from harness.records import Sample, Trajectory
from harness.scoring import AnlsRule, anls, extract_answer_span
from harness.scoring.modes import ScoringMode
from harness.task import Scored, TaskSpec

from . import formats, pixel_reasoner
from . import synthetic as syn

NAME = "infovqa"
VERSION = 1
ANSWER_TYPES = ("single span", "multi-span", "question span", "non-extractive")
ROWS_FILE = "InfographicVQA/validation.jsonl"
HUB_ID = "lmms-lab/DocVQA"
TAU = 0.5
RULE: AnlsRule = "rrc_script"
INK: syn.RGB = (30, 30, 40)
SMALL = (11, 13)  # font sizes of the facts

GROUPS = (
    "adults", "teenagers", "students", "nurses", "farmers", "teachers", "retirees", "parents",
    "engineers", "drivers"
)  # fmt: skip
ACTIVITIES = (
    "use social media daily", "work from home", "exercise weekly", "recycle plastic",
    "own a smartphone", "read the news online", "shop online", "cycle to work",
    "drink coffee daily", "volunteer locally",
)  # fmt: skip
LABELS = (
    "Canada", "Brazil", "Kenya", "Norway", "Japan", "Mexico", "Chile", "Egypt", "India", "Spain",
    "Peru", "Ghana", "Italy", "Nepal", "Fiji", "Oslo", "Lima", "Cairo", "Quito", "Dakar", "Perth",
    "Hanoi", "Lagos", "Turin", "Bern", "Apples", "Pears", "Plums", "Mangoes", "Kiwis", "Tennis",
    "Rowing", "Hockey", "Cricket", "Judo", "Chess", "Poker", "Sailing", "Karate", "Rugby", "Bakers",
    "Pilots", "Tailors", "Masons", "Chemists", "Potters", "Welders", "Miners", "Florists", "Barbers"
)  # fmt: skip
TOPICS = ("Health", "Travel", "Energy", "Food", "Work", "Money", "Sport", "Water", "Housing", "Media")
LIST_HEADS = ("Members per {}", "Visitors in {}", "Sales by {}", "Jobs per {}", "Votes by {}")
KINDS = ("region", "group", "branch", "club", "team")
PASTELS: tuple[syn.RGB, ...] = (
    (236, 243, 250), (250, 240, 228), (234, 248, 236), (248, 236, 246), (245, 245, 230),
)  # fmt: skip


@dataclass(frozen=True)
class _Fact:
    label: str  # for paragraph facts "group|activity|year"
    value: str
    value_box: list[int]
    label_box: list[int] | None = None


@dataclass
class _Block:
    kind: str  # "text" | "list" | "figure"
    heading: str
    facts: list[_Fact] = field(default_factory=list)


@dataclass(frozen=True)
class _Question:
    text: str
    answers: list[str]
    answer_type: str
    evidence: str
    operation: list[str]
    boxes: list[list[int]]


def _wrap(words: list[str], size: int, width: int) -> list[str]:
    lines, cur = [], ""
    for w in words:
        trial = f"{cur} {w}".strip()
        if cur and syn.text_width(trial, size) > width:
            lines.append(cur)
            cur = w
        else:
            cur = trial
    return [*lines, cur] if cur else lines


def _heading(rng: random.Random, kind: str, used: set[str]) -> str:
    while True:
        if kind == "text":
            heading = f"{rng.choice(TOPICS)} in {rng.randint(2015, 2023)}"
        else:
            heading = f"{rng.choice(LIST_HEADS).format(rng.choice(KINDS))}, {rng.randint(2015, 2023)}"
        if f"H:{heading}" not in used:
            used.add(f"H:{heading}")
            return heading


def _xywh(box: tuple[float, float, float, float]) -> list[int]:
    return [int(box[0]), int(box[1]), int(box[2] - box[0]), int(box[3] - box[1])]


def _draw_block(draw: ImageDraw.ImageDraw, rng: random.Random, box: syn.Box, used: set[str]) -> _Block:
    """Draw one block (heading + facts) inside ``box``; record its facts and their ink boxes.

    Headings and (group, activity) pairs are unique within an image (``used``), labels within
    a block; every question names the block's heading or a unique pair."""
    x, y, w, h = box
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=rng.choice(PASTELS))
    kind = rng.choice(("text", "list", "list", "figure"))
    size = rng.randint(*SMALL)
    pad, line_h = 14, size + 7
    block = _Block(kind, _heading(rng, kind, used))
    syn.draw_text(draw, (x + pad, y + pad), block.heading, rng.randint(20, 26), INK)
    ty = y + pad + 40
    if kind == "text":
        pairs = rng.sample([(g, a) for g in GROUPS for a in ACTIVITIES if f"{g}|{a}" not in used], 3)
        for group, activity in pairs:
            used.add(f"{group}|{activity}")
            year, pct = rng.randint(2015, 2023), rng.randint(3, 97)
            prefix, value = f"In {year}, ", f"{pct}%"
            words = f"{prefix}{value} of {group} {activity}.".split()
            for k, text in enumerate(_wrap(words, size, w - 2 * pad)):
                if ty + line_h > y + h - pad:
                    break
                draw.text((x + pad, ty), text, font=syn.font(size), fill=INK)
                if k == 0:  # the value is on the first line
                    vx = x + pad + syn.text_width(prefix, size)
                    vbox = _xywh(draw.textbbox((vx, ty), value, font=syn.font(size)))
                    block.facts.append(_Fact(f"{group}|{activity}|{year}", value, vbox))
                ty += line_h
            ty += 6
        return block
    step = line_h + (8 if kind == "figure" else 2)
    n = min(rng.randint(3, 6), (h - 60 - 2 * pad) // step)
    labels = rng.sample(LABELS, n)  # unique within the block; questions name the block's heading
    values = rng.sample(range(12, 980), n)
    bar_x = x + pad + 110
    for label, number in zip(labels, values, strict=True):
        lbox = syn.draw_text(draw, (x + pad, ty), label, size, INK)
        value = str(number)
        if kind == "list":
            vx = x + pad + min(w - 2 * pad, 320) - syn.text_width(value, size)  # a compact table
        else:
            bar_w = int((w - 2 * pad - 170) * number / 1000)
            bar_color = syn.PALETTE[rng.choice(syn.COLORS[:8])]
            draw.rectangle((bar_x, ty, bar_x + bar_w, ty + size), fill=bar_color)
            vx = bar_x + bar_w + 8
        value_box = syn.draw_text(draw, (vx, ty), value, size, INK)
        block.facts.append(_Fact(label, value, list(value_box), list(lbox)))
        ty += step
    return block


def _render(rng: random.Random) -> tuple[Image.Image, list[_Block]]:
    width = rng.randint(1200, 1600)
    height = int(width * rng.uniform(3.2, 3.8))
    img = Image.new("RGB", (width, height), (252, 252, 250))
    draw = ImageDraw.Draw(img)
    band = rng.randint(160, 220)
    draw.rectangle((0, 0, width, band), fill=(40, 60, 110))
    title = f"The State of {rng.choice(TOPICS)} {rng.randint(2018, 2024)}"
    draw.text((40, band // 3), title, font=syn.font(48), fill=(250, 250, 250))
    blocks: list[_Block] = []
    used: set[str] = set()
    y, margin = band + 30, 24
    while y < height - 260:
        k = rng.choice((1, 2, 2, 3, 3))
        h = min(rng.randint(190, 300), height - 60 - y)
        w = (width - (k + 1) * margin) // k
        for j in range(k):
            blocks.append(_draw_block(draw, rng, (margin + j * (w + margin), y, w, h), used))
        y += h + margin
    draw.text((margin, height - 40), "Sources: synthetic survey data", font=syn.font(11), fill=INK)
    return img, [b for b in blocks if b.facts]


def _question(rng: random.Random, i: int, blocks: list[_Block]) -> _Question:
    """A question of the answer type sample ``i`` calls for (by ``i % 10``: 0-4 single span,
    5 multi-span, 6-7 question span, 8 sum, 9 count), its golds and its evidence boxes."""
    slot = i % 10
    lists = [b for b in blocks if b.kind != "text" and len(b.facts) >= 2]
    if slot >= 5 and not lists:
        slot = 0
    if slot < 5:
        block = rng.choice(blocks)
        fact = rng.choice(block.facts)
        if block.kind == "text":
            group, activity, year = fact.label.split("|")
            q = f"What percentage of {group} {activity} in {year}?"
        elif block.kind == "list":
            q = f'What value is listed for {fact.label} under "{block.heading}"?'
        else:
            q = f'What value does the chart "{block.heading}" show for {fact.label}?'
        evidence = {"text": "Text", "list": "Table/List", "figure": "Figure"}[block.kind]
        return _Question(q, [fact.value], "single span", evidence, [], [fact.value_box])
    block = rng.choice(lists)
    evidence = "Table/List" if block.kind == "list" else "Figure"
    a, b = block.facts[:2] if slot == 5 else rng.sample(block.facts, 2)
    if slot == 5:
        q = f'Which are the first two items listed in "{block.heading}"?'
        answers = [f"{a.label}, {b.label}", f"{a.label} and {b.label}"]
        return _Question(q, answers, "multi-span", evidence, [], [a.label_box or [], b.label_box or []])
    boxes = [a.value_box, b.value_box]
    if slot in (6, 7):
        q = f'Which is higher in "{block.heading}", {a.label} or {b.label}?'
        winner = a if int(a.value) > int(b.value) else b
        return _Question(q, [winner.label], "question span", evidence, ["Comparison"], boxes)
    if slot == 8:
        q = f'What is the sum of the values for {a.label} and {b.label} in "{block.heading}"?'
        total = str(int(a.value) + int(b.value))
        return _Question(q, [total], "non-extractive", evidence, ["Arithmetic"], boxes)
    q = f'How many items are shown in "{block.heading}"?'
    boxes = [f.label_box or [] for f in block.facts]
    return _Question(q, [str(len(block.facts))], "non-extractive", evidence, ["Counting"], boxes)


def load_local(root: Path, rows_file: str = ROWS_FILE) -> list[Sample]:
    """Read the rows into samples: ``id`` = ``questionId``, ``answer`` = ``answers[0]``,
    ``answers`` all golds, ``category`` = the first answer type; ``metadata`` has the list
    columns ``answer_type``, ``evidence``, ``operation`` and any synthetic sidecar. A missing
    file or field is a ``DataError`` naming the file, row and field."""
    root, path = Path(root), Path(root) / rows_file
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    samples = []
    for row_no, row in enumerate(syn.read_jsonl(path)):
        with row_errors(path, row_no):
            qid = str(row["questionId"])
            answers = tuple(str(a) for a in row["answers"])
            types = [str(t) for t in _as_list(row.get("answer_type"))]
            samples.append(
                Sample(
                    task=NAME,
                    id=qid,
                    question=str(row["question"]),
                    answer=answers[0] if answers else "",
                    media=(str(row["image"]),),
                    media_kind="image",
                    answers=answers,
                    category=types[0] if types else "",
                    root=str(root),
                    metadata={
                        "answer_type": types,
                        "evidence": [str(e) for e in _as_list(row.get("evidence"))],
                        "operation": [str(o) for o in _as_list(row.get("operation/reasoning"))],
                        **syn.read_sidecar(root, qid),
                    },
                )
            )
    return samples


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    """Write ``n`` InfoVQA samples under ``out_dir`` and load them back.

    Sample ``i`` depends only on ``(seed, i)``; files are atomic. Drawing decides the question,
    so a sample whose image, sidecar and row already exist is reused without drawing.
    """
    root = Path(out_dir)
    existing: dict[str, dict[str, object]] = {}
    if (root / ROWS_FILE).is_file():
        try:
            existing = {str(r["questionId"]): r for r in syn.read_jsonl(root / ROWS_FILE)}
        except (OSError, ValueError, KeyError):
            existing = {}
    rows, ids = [], []
    for i in range(n):
        qid = str(i)
        image = f"InfographicVQA/images/{qid}.jpeg"
        old = existing.get(qid)
        if old is not None and (root / image).exists() and syn.sidecar_path(root, qid).exists():
            rows.append(old)
            ids.append(qid)
            continue
        rng = syn.rng_for(NAME, seed, i)
        img, blocks = _render(rng)
        spec = _question(rng, i, blocks)
        strings = {s for b in blocks for f in b.facts for s in (f.label, f.value) if "|" not in s}
        side = {"target_boxes": spec.boxes, "distractors": sorted(strings - set(spec.answers))}
        syn.write_sidecar(root, qid, {**side, "image_size": list(img.size)})
        if not (root / image).exists():
            syn.save_image(img, root / image)
        rows.append(
            {
                "questionId": qid,
                "question": spec.text,
                "answers": spec.answers,
                "answer_type": [spec.answer_type],
                "image": image,
                "image_url": "",
                "operation/reasoning": spec.operation,
                "ocr": "",
                "data_split": "val",
                "evidence": [spec.evidence],
            }
        )
        ids.append(qid)
    return syn.write_and_load(
        lambda: syn.ensure_rows(root / ROWS_FILE, rows, "jsonl"), lambda: load_local(root), ids
    )


# --------------------------------------------------------------------------- task functions


def question(sample: Sample) -> str:
    """The question alone (free-text answer; a Pixel-Reasoner row's own text verbatim)."""
    return pixel_reasoner.released_question(sample) or sample.question


def official_prompt(sample: Sample) -> str:
    """The question + the single word or phrase instruction (lmms-eval's InfoVQA prompt)."""
    return f"{sample.question}\nAnswer the question using a single word or phrase."


def score(reply: str | None, sample: Sample) -> Scored:
    """ANLS (tau 0.5, the organisers' ``rrc_script`` rule) of the answer span read by
    ``extract_answer_span`` (last boxed content, else the "answer is" line, else the last line),
    max over all gold answers. No answer (empty reply, ``None``) scores 0.0."""
    span = extract_answer_span(reply)
    return Scored(score=anls(span, sample.golds, tau=TAU, rule=RULE), extracted=span)


def anls_paper(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    """ANLS (tau 0.5) with the paper's rule on the extracted answer span."""
    if spec.name != NAME:
        raise ValueError(f"scoring mode anls_paper applies to {NAME} only, not to task {spec.name!r}")
    span = extract_answer_span(trajectory.final_reply)
    return Scored(score=anls(span, sample.golds, rule="paper"), extracted=span)


def _joined(values: object) -> str:
    items = [str(v) for v in _as_list(values)]
    return "+".join(items) if items else "none"


def breakdown(sample: Sample) -> dict[str, str]:
    """``answer_type``, ``evidence`` and ``operation``; multi-valued ones joined with "+" in
    their given order (e.g. "Text+Figure"), an empty list is "none"."""
    md = sample.metadata
    return {
        "answer_type": _joined(md.get("answer_type") or sample.category),
        "evidence": _joined(md.get("evidence")),
        "operation": _joined(md.get("operation")),
    }


def chance_answers(sample: Sample) -> list[str]:
    """Words of the question plus the image's other strings (``metadata["distractors"]``)."""
    words = [w for w in re.findall(r"[\w%]+", sample.question)]
    pool = [*words, *(str(d) for d in sample.metadata.get("distractors", []))]
    return list(dict.fromkeys(pool))


SPEC = TaskSpec(
    name=NAME,
    version=VERSION,
    description="InfographicsVQA: read small text in tall infographics; free-text answers, "
    "ANLS (tau 0.5, rrc_script rule).",
    media_kind="image",
    metric="anls",
    subsets=ANSWER_TYPES,
    synthesize=synthesize,
    question=question,
    official_prompt=official_prompt,
    score=score,
    breakdown=breakdown,
    chance_answers=chance_answers,
    scorer_params={"extractor": "extract_answer_span", "tau": TAU, "rule": RULE},
    load_hub=partial(
        formats.image_parquet_hub, HUB_ID, "InfographicVQA", "validation", ROWS_FILE, load_local
    ),
    sources={
        "parquet": pixel_reasoner.source(
            NAME,
            ("infovqa", "infographicvqa", "infographicsvqa"),
            partial(pixel_reasoner.text_sample, task=NAME),
        )
    },
)


@hookimpl
def harness_register_tasks() -> list[TaskSpec]:
    return [SPEC]


@hookimpl
def harness_register_scoring_modes() -> dict[str, ScoringMode]:
    return {"anls_paper": anls_paper}
