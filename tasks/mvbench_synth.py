"""Synthetic MVBench videos (see :mod:`harness_tasks.mvbench`): 32 frames of 512x288 px with
moving distractor shapes; the answer (a caption, a coloured shape, an arrow, a few dots ...) is
drawn in only one or two of the 16 sampled frames, in a small box no distractor enters. The task
module writes the rows and reads them back; the questions keep each task's name and spirit but ask about
what is drawn: plumbing and tool-use tests, not MVBench.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageDraw

from . import synthetic as syn

NUM_FRAMES = 32
FRAME_SIZE = (512, 288)

ACTIONS = (
    "Opened the window.", "Took the towel.", "Sat on the sofa.", "Closed the laptop.",
    "Put down the cup.", "Threw the pillow.", "Washed the dish.", "Held the phone.",
)  # fmt: skip
OBJECTS = ("The cup.", "The towel.", "The book.", "The blanket.", "The shoe.", "The bag.", "The box.")
EVENTS = (
    "The chair collapses.", "The cat jumps onto the table.", "The ball bounces back.",
    "The door opens by itself.", "The cake falls over.", "The dog steals the hat.",
)  # fmt: skip
SCENES = (
    "From the kitchen to the garden.", "From the street to the shop.", "From the beach to the city.",
    "From the office to the park.", "From the forest to the lake.",
)  # fmt: skip
TIMES = ("At the beginning of the video.", "In the middle of the video.", "At the end of the video.")
SLOTS = tuple(f"Under the {nth} cup from the left." for nth in ("first", "second", "third"))
DIRECTIONS = ("up", "down", "left", "right")
NAVIGATION = ("Move forward.", "Turn around.", "Turn left.", "Turn right.")
CAPTION = "the caption that appears briefly"  # fmt: skip

# task -> (kind, question, candidate pool, number of candidates). Kinds: caption (the answer
# text on a small sign), arrow, dots (that many dots), slot (a ball under one of three cups),
# time (a shape shown at that time), exist, color, state (a grey square turns a colour), object.
TEMPLATES: dict[str, tuple[str, str, tuple[str, ...], int]] = {
    "action_sequence": (
        "caption", f"What did the person do after entering the room, according to {CAPTION}?", ACTIONS, 4),
    "action_prediction": ("caption", f"What will the person do next, according to {CAPTION}?", ACTIONS, 4),
    "action_antonym": ("caption", f"Which action does {CAPTION} name?",
                       ("Pushing something left.", "Pulling something left.", "Lifting something up."), 3),
    "fine_grained_action": ("caption", f"Which activity does {CAPTION} name?",
                            ("juggling", "skipping", "rowing", "sweeping", "kneading", "welding"), 4),
    "unexpected_action": ("caption", f"What unexpected event does {CAPTION} describe?", EVENTS, 4),
    "object_existence": ("exist", "Is there a {color} {shape} in the video?", ("yes", "no", "not sure"), 3),
    "object_interaction": (
        "caption", f"Which object did the person take, according to {CAPTION}?", OBJECTS, 4),
    "object_shuffle": ("slot", "Under which cup is the ball when it is briefly revealed?", SLOTS, 3),
    "moving_direction": ("arrow", "Which way does the arrow that appears briefly point?", DIRECTIONS, 4),
    "action_localization": ("time", "When does the small {color} {shape} appear in the video?", TIMES, 3),
    "scene_transition": ("caption", f"How does the scene change, according to {CAPTION}?", SCENES, 4),
    "action_count": ("dots", "How many {color} dots appear together for a moment?",
                     ("2", "3", "4", "5", "6"), 3),
    "moving_count": ("dots", "How many {color} dots flash up at the same time?",
                     ("1", "2", "3", "4", "5", "6"), 4),
    "moving_attribute": (
        "color", "What is the color of the small {shape} that appears briefly?", syn.COLORS, 4),
    "state_change": ("state", "What color does the grey square turn for a moment?", syn.COLORS, 4),
    "fine_grained_pose": ("caption", f"Which pose does {CAPTION} name?",
                          ("sit down", "stand up", "jump up", "squat down", "kneel down"), 4),
    "character_order": ("caption", "Which letters are written on the card that appears briefly?", (), 4),
    "egocentric_navigation": (
        "arrow", "Which way does the arrow that appears briefly tell the agent to go?", NAVIGATION, 4),
    "episodic_reasoning": (
        "caption", "What does the subtitle that appears briefly say the speaker will bring?",
        ("the cake", "the keys", "the map", "the flowers", "the camera", "the tickets"), 5),
    "counterfactual_inference": ("object", "Which object appears for a moment in the video?", (), 5),
}  # fmt: skip
CAPTION_FONT = 12


@dataclass(frozen=True)
class Plan:
    kind: str
    question: str
    candidates: tuple[str, ...]
    answer: str
    shape: str
    color: str
    key_positions: tuple[int, ...]  # 0-based among the 16 sampled frames
    box: syn.Box


def plan(rng: random.Random, task: str, segments: int) -> Plan:
    """The sample of ``task`` drawn from ``rng``: question, candidates, answer, key frames (0-based
    among ``segments`` sampled frames) and the answer's box."""
    kind, q, pool, n = TEMPLATES[task]
    shape, color = rng.choice(syn.SHAPES), rng.choice([c for c in syn.COLORS if c != "white"])
    if task == "character_order":
        pool = tuple("".join(p) for p in itertools.permutations(rng.sample("BCDFGHJKLMNPRSTVWXZ", 3)))
    elif kind == "object":
        pool = tuple(f"the {c} {s}" for c in syn.COLORS for s in syn.SHAPES)
    candidates = tuple(rng.sample(pool, n))
    answer = rng.choice(("yes", "no") if kind == "exist" else candidates)
    if kind == "object":
        color, shape = answer.split()[1:]
    if kind == "time":
        lo, hi = ((0, 4), (6, 9), (11, 15))[TIMES.index(answer)]
        first = rng.randint(lo, hi - 1)
    else:
        first = rng.randint(0, segments - 2)
    positions = (first,) if rng.random() < 0.5 else (first, first + 1)
    if kind == "caption":
        w, h = syn.caption_size(answer, CAPTION_FONT)
    elif kind == "dots":
        w, h = 12 * int(answer) + 4, 16
    elif kind == "slot":
        w, h = 3 * 44 + 2 * 12, 56
    else:
        w, h = 18, 18
    fw, fh = FRAME_SIZE
    box = (rng.randint(16, fw - w - 16), rng.randint(16, fh - h - 16), w, h)
    return Plan(kind, q.format(color=color, shape=shape), candidates, answer, shape, color, positions, box)


def _draw_static(draw: ImageDraw.ImageDraw, plan: Plan) -> None:
    """What the answer box shows in every frame (cups, the grey square), if anything."""
    x, y, _, _ = plan.box
    if plan.kind == "slot":
        for j in range(3):
            draw.rectangle((x + 56 * j, y, x + 56 * j + 43, y + 33), fill=(60, 40, 30))
    elif plan.kind == "state":
        draw.rectangle((x, y, x + 17, y + 17), fill=(128, 128, 128), outline=(0, 0, 0))


def _draw_answer(draw: ImageDraw.ImageDraw, plan: Plan) -> None:
    """What only the key frames show."""
    x, y, w, h = plan.box
    kind, answer = plan.kind, plan.answer
    if kind == "caption":
        syn.draw_caption(draw, plan.box, answer, CAPTION_FONT)
    elif kind == "arrow":
        direction = DIRECTIONS[(NAVIGATION if answer in NAVIGATION else DIRECTIONS).index(answer)]
        syn.draw_arrow(draw, plan.box, direction, syn.PALETTE["white"])
    elif kind == "dots":
        for j in range(int(answer)):
            draw.ellipse((x + 4 + 12 * j, y + 4, x + 12 + 12 * j, y + 12), fill=syn.PALETTE[plan.color])
    elif kind == "slot":
        j = SLOTS.index(answer)
        draw.ellipse((x + 56 * j + 16, y + 40, x + 56 * j + 27, y + 51), fill=syn.PALETTE["yellow"])
    elif kind == "state":
        draw.rectangle((x, y, x + 17, y + 17), fill=syn.PALETTE[answer], outline=(0, 0, 0))
    else:  # time, exist, color, object: one small shape
        color = answer if kind == "color" else plan.color
        if kind == "exist" and answer != "yes":
            color = "white"  # the asked shape in another colour: the answer is "no"
        syn.draw_shape(draw, plan.shape, plan.box, syn.PALETTE[color])


def render(plan: Plan, rng: random.Random, folder: Path, answer_frames: set[int]) -> None:
    """Write the frame folder: rendered into a private temporary folder that is renamed into
    place, so a frame folder is either absent or complete (a concurrent run keeps its own)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        _render_frames(plan, rng, tmp, answer_frames)
        os.rename(tmp, folder)
    except OSError:
        if not folder.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _render_frames(plan: Plan, rng: random.Random, folder: Path, answer_frames: set[int]) -> None:
    fw, fh = FRAME_SIZE
    base = syn.background(rng, fw, fh, rng.randint(2, 4))
    _draw_static(ImageDraw.Draw(base), plan)
    movers = []
    last = NUM_FRAMES - 1
    # movers never look like the asked object (a "purple circle" must not drift through the video)
    banned = plan.shape if plan.kind in ("time", "exist", "color", "object") else ""
    banned = "circle" if plan.kind == "dots" else banned
    shapes = [s for s in syn.SHAPES if s != banned]
    for _ in range(rng.randint(3, 5)):
        s = rng.randint(18, 36)
        for _try in range(200):
            (ax, ay), (bx, by) = ((rng.randint(0, fw - s), rng.randint(0, fh - s)) for _ in range(2))
            path = [
                (round(ax + (bx - ax) * t / last), round(ay + (by - ay) * t / last))
                for t in range(NUM_FRAMES)
            ]
            if not any(syn.overlaps((px, py, s, s), plan.box, 12) for px, py in path):
                movers.append((rng.choice(shapes), rng.choice(syn.COLORS), s, path))
                break
    for t in range(NUM_FRAMES):
        frame = base.copy()
        draw = ImageDraw.Draw(frame)
        for shape, color, s, path in movers:
            syn.draw_shape(draw, shape, (*path[t], s, s), syn.PALETTE[color])
        if t + 1 in answer_frames:
            _draw_answer(draw, plan)
        frame.save(folder / f"{t + 1:05d}.jpg", "JPEG", quality=90, subsampling=0)
