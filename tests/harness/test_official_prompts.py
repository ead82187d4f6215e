"""``--prompt official``: each task's own prompt and answer format (docs/reference.md section 4), run
end to end, and the V* letter extraction on a table of tricky short replies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness import cli
from harness.loop.protocol import SYSTEM_PROMPT
from harness.plugins import Harness
from harness.records import Sample
from harness.run.evaluate import EvalConfig, evaluate

MVBENCH_SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and "
    "movement of objects, and the action and pose of persons. Based on your observations, select the "
    "best option that accurately addresses the question.\n"
)


@pytest.mark.parametrize(
    ("task", "sample", "prompt"),
    [
        (
            "vstar",
            Sample("vstar", "1", "What is the color of the cup?", "B", ("i.jpg",), options=("red", "blue")),
            "What is the color of the cup?\n(A) red\n(B) blue\n"
            "Answer with the option's letter from the given choices directly.",
        ),
        (
            "mvbench",
            Sample(
                "mvbench",
                "1",
                "What happened?",
                "A",
                ("v.mp4",),
                media_kind="video",
                options=("Sat.", "Ran."),
            ),
            MVBENCH_SYSTEM + "Question: What happened?\nOptions:\n(A) Sat.\n(B) Ran.\n"
            "Only give the best option.\nBest option:(",
        ),
        (
            "infovqa",
            Sample("infovqa", "1", "Which year?", "2019", ("i.jpg",), answers=("2019",)),
            "Which year?\nAnswer the question using a single word or phrase.",
        ),
        (
            "tallyqa",
            Sample("tallyqa", "1", "How many dogs are there?", "3", ("i.jpg",)),
            "How many dogs are there?\nAnswer with a single number.",
        ),
    ],
)
def test_official_prompt_and_answer_format(
    harness_instance: Harness, task: str, sample: Sample, prompt: str
) -> None:
    assert harness_instance.task(task).official_prompt(sample) == prompt


def test_official_mode_runs_single_turn_without_tools(harness_instance: Harness) -> None:
    result = evaluate(
        EvalConfig(tasks="all", model="scripted:oracle", limit=2, mode="official"),
        harness_instance,
        show_progress=False,
    )
    assert {t: r.value for t, r in result.results.items()} == {t: 1.0 for t in harness_instance.tasks}
    assert all(r.tool_stats["ops_per_sample"] == 0 for r in result.results.values())


def test_official_prompt_is_what_the_model_sees(
    tmp_path: Path, make_samples: Callable[..., list[Sample]], harness_instance: Harness
) -> None:
    import json

    argv = ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--limit", "1", "--prompt", "official"]
    assert cli.main([*argv, "--output_path", str(tmp_path), "--no_progress"]) == 0
    row = json.loads((tmp_path / "samples.jsonl").read_text().splitlines()[0])
    sample = make_samples("vstar", 1)[0]
    assert row["trajectory"]["system"] == SYSTEM_PROMPT and row["trajectory"]["prompt_mode"] == "official"
    assert (
        row["trajectory"]["prompt"]
        == harness_instance.task("vstar").official_prompt(sample)
        == sample.metadata["text"]
    )


VSTAR_REPLIES = [  # options (red, green, blue, white), gold C; the peer traps of docs/reference.md section 4 included
    ("C", "C", 1.0),
    ("(C)", "C", 1.0),
    ("c)", "C", 1.0),
    ("**C**", "C", 1.0),
    ("C: blue", "C", 1.0),
    ("blue", "C", 1.0),  # the option's text alone
    ("Answer: C", "C", 1.0),  # read as A by a peer
    ("Based on the image, the answer is C.", "C", 1.0),  # read as B by a peer
    ("AREA.", None, 0.0),  # read as A by a peer
    ("A dog sits left of it; the best option is (C).", "C", 1.0),
    ("The answer is (C) blue.", "C", 1.0),
    ("A blue cup.", None, 0.0),  # an article, not option A
    ("I think it is C, not A.", None, 0.0),  # two letters named: no answer
    ("A or C", None, 0.0),
    ("The color of the cup is blue.", None, 0.0),
    ("I cannot tell.", None, 0.0),
    ("", None, 0.0),
    ("A", "A", 0.0),
]


@pytest.mark.parametrize(("reply", "extracted", "score"), VSTAR_REPLIES)
def test_vstar_letter_extraction_on_tricky_replies(
    harness_instance: Harness, reply: str, extracted: str | None, score: float
) -> None:
    sample = Sample(
        "vstar",
        "1",
        "What is the color of the cup?",
        "C",
        ("i.jpg",),
        options=("red", "green", "blue", "white"),
    )
    scored = harness_instance.task("vstar").score(reply, sample)
    assert (scored.extracted, scored.score) == (extracted, score)
