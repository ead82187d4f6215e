"""The texts the tiny models' tokenizers are trained on (:mod:`harness.backends.tiny`).

:func:`default_corpus` is the ``tiny`` size's (unchanged since the first build: the default
tiny model's tokenizer must stay byte-identical). :func:`demo_corpus` is the ``demo`` size's:
the same lines plus the protocol's fixed texts (the rendered system prompt with the built-in
tools, the guidelines, the observation texts) and crop calls many times over, so that a
tokenizer trained without the GPT-2 word split learns each fixed text as a few long tokens (the
system prompt is about 45 tokens instead of about 640), while numbers stay one digit a token.
Everything is deterministic (a seeded ``random.Random``).
"""

from __future__ import annotations

import random

from harness.loop.protocol import (
    CROP_RESULT,
    ERROR_RESULT,
    FRAMES_RESULT,
    NOTOOL_GUIDELINE,
    TOOLS_TEMPLATE,
    VCOT_GUIDELINE,
    system_prompt,
)

WORDS = [
    "the",
    "a",
    "an",
    "is",
    "are",
    "of",
    "in",
    "on",
    "at",
    "to",
    "and",
    "or",
    "what",
    "which",
    "how",
    "many",
    "where",
    "color",
    "colour",
    "left",
    "right",
    "above",
    "below",
    "object",
    "image",
    "video",
    "frame",
    "answer",
    "question",
    "choices",
    "option",
    "person",
    "car",
    "dog",
    "cat",
    "red",
    "green",
    "blue",
    "yellow",
    "black",
    "white",
    "number",
    "count",
    "text",
    "table",
    "chart",
    "zoom",
    "crop",
    "select",
    "look",
    "closer",
    "reason",
    "step",
    "think",
    "final",
    "boxed",
    "let",
    "me",
    "first",
    "then",
    "yes",
    "no",
    "true",
    "false",
]  # noqa: SIM905
#: Words of the short thoughts in tool-use traces and of synthetic questions (demo corpus only).
DEMO_WORDS = [
    "the",
    "detail",
    "is",
    "small",
    "now",
    "clear",
    "let",
    "me",
    "zoom",
    "in",
    "on",
    "region",
    "that",
    "matters",
    "answer",
    "can",
    "be",
    "read",
    "from",
    "input",
    "directly",
    "this",
    "not",
    "elsewhere",
    "look",
    "again",
    "closer",
    "what",
    "color",
    "colour",
    "of",
    "circle",
    "square",
    "triangle",
    "diamond",
    "cross",
    "left",
    "right",
    "side",
    "or",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "cyan",
    "white",
    "black",
]  # noqa: SIM905
DEMO_REPEATS = 50  # copies of each fixed protocol text
DEMO_CALLS = 500  # crop calls with random boxes
DEMO_SENTENCES = 200  # shuffled word sentences


def default_corpus() -> list[str]:
    """A deterministic training corpus: the protocol's own texts plus digits, JSON and words."""
    lines = [TOOLS_TEMPLATE, VCOT_GUIDELINE, NOTOOL_GUIDELINE, CROP_RESULT, FRAMES_RESULT, ERROR_RESULT]
    lines += [
        '{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.25, 0.5, 0.75], "target_image": 1}}',
        '{"name": "select_frames", "arguments": {"target_frames": [1, 4, 8, 12, 16]}}',
        "The answer is \\boxed{A}. The answer is \\boxed{3}.",
        "choices:\nA: left  \nB: right  \nC: above  \nD: below",
    ]
    lines += [" ".join(WORDS[i:] + WORDS[:i]) for i in range(0, len(WORDS), 7)]
    lines += [" ".join(str(n) for n in range(k, k + 50)) for k in range(0, 1000, 50)]
    lines += ["".join(chr(c) for c in range(32, 127))]
    return lines


def demo_corpus() -> list[str]:
    """:func:`default_corpus` plus the protocol's fixed texts, crop calls and thought words."""
    from harness.tools.builtin import harness_register_tools

    rng = random.Random(0)
    fixed = [system_prompt(harness_register_tools()), VCOT_GUIDELINE, NOTOOL_GUIDELINE]
    fixed += [CROP_RESULT, FRAMES_RESULT, ERROR_RESULT]
    lines = default_corpus() + fixed * DEMO_REPEATS
    words = list(DEMO_WORDS)
    for _ in range(DEMO_SENTENCES):
        rng.shuffle(words)
        lines.append(" ".join(words[:12]) + ".")
    for _ in range(DEMO_CALLS):
        xs = sorted(round(rng.random(), 4) for _ in range(2))
        ys = sorted(round(rng.random(), 4) for _ in range(2))
        args = f'{{"bbox_2d": [{xs[0]}, {ys[0]}, {xs[1]}, {ys[1]}], "target_image": 1}}'
        lines.append(f'<tool_call>\n{{"name": "crop_image_normalized", "arguments": {args}}}\n</tool_call>')
    return lines
