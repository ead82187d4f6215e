"""An example pixel-harness plugin: the ``colorpatch`` task and the ``mirror_image`` tool.

Installed, it is found through the ``harness`` entry-point group (see ``pyproject.toml``); the two
hook implementations below are all the harness calls.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from harness import Sample, Scored, TaskSpec, hookimpl
from harness.records import Observation
from harness.scoring import extract_boxed
from harness.tools import ToolContext, ToolError, ToolResult, ToolSpec

COLORS = {"red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 200), "yellow": (220, 200, 40)}
SIZE = (1200, 900)
PATCH = 40


def synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    """Write ``n`` grey images with one small coloured square and an annotations file; load them back."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rng = random.Random(f"colorpatch:{seed}:{i}")
        color = rng.choice(sorted(COLORS))
        x, y = rng.randrange(0, SIZE[0] - PATCH), rng.randrange(0, SIZE[1] - PATCH)
        image = Image.new("RGB", SIZE, (128, 128, 128))
        ImageDraw.Draw(image).rectangle((x, y, x + PATCH - 1, y + PATCH - 1), fill=COLORS[color])
        image.save(root / f"{i}.png")
        rows.append({"id": str(i), "image": f"{i}.png", "answer": color, "box": [x, y, PATCH, PATCH]})
    (root / "annotations.json").write_text(json.dumps(rows), encoding="utf-8")
    return load(root)


def load(root: Path) -> list[Sample]:
    """The task's loader: one sample per row of ``annotations.json``."""
    rows: list[dict[str, Any]] = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    return [
        Sample(
            task="colorpatch",
            id=row["id"],
            question="What colour is the small square?",
            answer=row["answer"],
            media=(row["image"],),
            root=str(root),
            metadata={"target_boxes": [row["box"]], "image_size": list(SIZE)},
        )
        for row in rows
    ]


def question(sample: Sample) -> str:
    return f"{sample.question} Answer with one word: {', '.join(sorted(COLORS))}."


def score(reply: str | None, sample: Sample) -> Scored:
    """1.0 when the last ``\\boxed{}`` (or the whole reply) names the gold colour."""
    extracted = extract_boxed(reply) if reply else None
    text = (extracted if extracted is not None else reply or "").strip().lower().rstrip(".")
    return Scored(score=float(text == sample.answer), extracted=text or None)


TASK = TaskSpec(
    name="colorpatch",
    version=1,
    description="Name the colour of a 40-pixel square in a 1200x900 grey image (example plugin).",
    media_kind="image",
    metric="accuracy",
    subsets=("all",),
    synthesize=synthesize,
    question=question,
    official_prompt=question,
    score=score,
    breakdown=lambda sample: {"color": sample.answer},
    chance_answers=lambda sample: sorted(COLORS),
)


def mirror(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """``mirror_image(target_image)``: the chosen image of the conversation, mirrored left to right."""
    target = args.get("target_image")
    if not isinstance(target, int) or isinstance(target, bool) or not 1 <= target <= len(ctx.images):
        raise ToolError(f"Execution Error: target_image must be an image number from 1 to {len(ctx.images)}.")
    shown = ImageOps.mirror(ctx.images[target - 1].image)
    text = f"\nHere is image {target} mirrored (Image Size: {shown.width}x{shown.height}):"
    return ToolResult(
        text=text,
        images=(shown,),
        observation=Observation(
            kind="crop", tool="mirror_image", text=text, source_image=target, size=shown.size
        ),
    )


TOOL = ToolSpec(
    name="mirror_image",
    schema={
        "name": "mirror_image",
        "description": "Mirror an image of the conversation left to right.",
        "parameters": {
            "type": "object",
            "properties": {"target_image": {"type": "number", "description": "The index of the image."}},
            "required": ["target_image"],
        },
    },
    media=("image",),
    run=mirror,
)


@hookimpl
def harness_register_tasks() -> list[TaskSpec]:
    return [TASK]


@hookimpl
def harness_register_tools() -> list[ToolSpec]:
    return [TOOL]
