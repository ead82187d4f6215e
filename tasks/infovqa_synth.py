"""Drawing of the synthetic InfographicsVQA images (see :mod:`harness_tasks.infovqa`): a title band,
then rows of one to three blocks (a paragraph, a list or a bar chart) whose headings are large
and whose facts are written in 11..13 px text, and a question of the answer type a sample calls
for, with its golds and evidence boxes. Pure drawing: the task module writes the files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from . import synthetic as syn

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
class Question:
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


def render(rng: random.Random) -> tuple[Image.Image, list[_Block]]:
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


def question(rng: random.Random, i: int, blocks: list[_Block]) -> Question:
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
        return Question(q, [fact.value], "single span", evidence, [], [fact.value_box])
    block = rng.choice(lists)
    evidence = "Table/List" if block.kind == "list" else "Figure"
    a, b = block.facts[:2] if slot == 5 else rng.sample(block.facts, 2)
    if slot == 5:
        q = f'Which are the first two items listed in "{block.heading}"?'
        answers = [f"{a.label}, {b.label}", f"{a.label} and {b.label}"]
        return Question(q, answers, "multi-span", evidence, [], [a.label_box or [], b.label_box or []])
    boxes = [a.value_box, b.value_box]
    if slot in (6, 7):
        q = f'Which is higher in "{block.heading}", {a.label} or {b.label}?'
        winner = a if int(a.value) > int(b.value) else b
        return Question(q, [winner.label], "question span", evidence, ["Comparison"], boxes)
    if slot == 8:
        q = f'What is the sum of the values for {a.label} and {b.label} in "{block.heading}"?'
        total = str(int(a.value) + int(b.value))
        return Question(q, [total], "non-extractive", evidence, ["Arithmetic"], boxes)
    q = f'How many items are shown in "{block.heading}"?'
    boxes = [f.label_box or [] for f in block.facts]
    return Question(q, [str(len(block.facts))], "non-extractive", evidence, ["Counting"], boxes)
