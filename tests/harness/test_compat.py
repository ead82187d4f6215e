"""Compatibility scoring modes (harness/scoring/compat.py): the released Pixel-Reasoner rule, MVBench's
official checker with its quirks, and InfoVQA's paper ANLS rule; each only where it applies."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.plugins import Harness
from harness.records import Observation, Sample, Trajectory, Turn
from harness.run.evaluate import EvalConfig, evaluate
from harness.scoring.compat import pixel_reasoner_result, released_transcript
from harness_tasks.mvbench import mvbench_check


def _traj(*replies: str, final: str | None = "") -> Trajectory:
    turns = tuple(Turn(index=i, reply=r) for i, r in enumerate(replies))
    return Trajectory(
        task="t",
        sample_id="s",
        prompt_mode="vcot",
        system="",
        prompt="",
        turns=turns,
        end_reason="answer",
        final_reply=replies[-1] if final == "" and replies else final,
    )


# (transcript, gold, released result): 1.0 right, 0.0 wrong, -1.0 nothing parseable (also wrong)
PIXEL_REASONER_TABLE = [
    ("so the answer is \\boxed{C}", "C", 1.0),  # both sides lower-cased
    ("\\boxed{a}", "A", 1.0),
    ("\\boxed{B}", "C", 0.0),
    ("\\boxed{A: lion}", "A", 0.0),  # option text inside the box is not the letter
    ("\\boxed{45}", ["45%", "45 percent"], 1.0),  # a list gold with % also accepted without it
    ("\\boxed{4} objects", "4", 1.0),  # from the last \boxed to the end of the text
    ("\\boxed{2} wait, \\boxed{3}", "3", 1.0),  # the last box decides
    ("\\boxed{2} wait, \\boxed{3}", "2", 0.0),
    ("I count \\boxed{four}", "4", 0.0),  # no number words in math-verify
    ("\\boxed{12,000}", "12000", 1.0),
    ("The image shows 3 cats and \\boxed{5}", "3", 0.0),
    ("The answer is 4.", "4", 1.0),  # no box: the whole text is parsed
    ("Answer: 7", "7", 1.0),  # "Answer:" never matches the lower-cased text; the fallback does
    ("<answer>3</answer> done", "3", 1.0),
    ("\\boxed{Troubles and The Siege of Krishnapur}", "troubles, the siege of krishnapur", 1.0),  # every part
    ("\\boxed{Troubles}", "troubles, the siege of krishnapur", 0.0),
    ("\\boxed{coca cola}", ["Coca Cola"], 1.0),
    ("\\boxed{cola coca}", ["Coca Cola"], 1.0),  # words become commuting symbols: order ignored
    ("\\boxed{pepsi}", ["Coca Cola"], 0.0),
    ("no answer here", "A", -1.0),
    ("", "A", -1.0),
]


@pytest.mark.parametrize(("text", "gold", "expected"), PIXEL_REASONER_TABLE)
def test_pixel_reasoner_rule(text: str, gold: str | list[str], expected: float) -> None:
    assert pixel_reasoner_result(text, gold) == expected


def test_the_released_transcript_includes_tool_turns() -> None:
    crop = Observation(
        kind="crop",
        tool="crop_image_normalized",
        text="\nHere is the cropped image (Image Size: 448x448):",
        images=(2,),
    )
    traj = _traj("Let me zoom.<tool_call>{}</tool_call>", "It is \\boxed{B}.")
    traj = dataclasses.replace(
        traj, turns=(dataclasses.replace(traj.turns[0], observation=crop), traj.turns[1])
    )
    assert released_transcript(traj) == (
        "Let me zoom.<tool_call>{}</tool_call><|im_end|>\n<|im_start|>user\n\nHere is the cropped image "
        "(Image Size: 448x448):<|vision_start|><|vision_end|><|im_end|>\n<|im_start|>assistant\nIt is \\boxed{B}.<|im_end|>\n"
    )


def test_pixel_reasoner_mode_reads_the_whole_transcript_and_the_rows_own_answer(
    harness_instance: Harness,
) -> None:
    mode = harness_instance.scoring_mode("pixel_reasoner")
    spec = harness_instance.task("infovqa")
    sample = Sample("infovqa", "1", "Share?", "forty five", ("x.jpg",), answers=("forty five",))
    # an earlier boxed answer counts even when the episode ended without a final answer
    ended = _traj("I think \\boxed{45}. <tool_call>{}</tool_call>", final=None)
    assert mode(spec, sample, ended).score == 0.0
    released = dataclasses.replace(sample, metadata={"pr_answer": ["45%"]})
    scored = mode(spec, released, ended)
    assert scored.score == 1.0 and scored.extracted is not None and scored.extracted.startswith("\\boxed{45}")
    assert mode(spec, sample, _traj(final=None)).score == 0.0  # nothing generated at all


# (reply, gold letter, official checker's verdict): "(" + the first line, first token compared
MVBENCH_TABLE = [
    ("", "A", True),  # empty: "(" is a substring of "(a)": counted correct
    ("   ", "C", True),
    ("A) Sat on the sofa.", "A", True),
    ("(A) Sat on the sofa.", "A", True),
    ("A", "A", True),
    ("B", "A", False),
    ("A lot happens in the video", "A", True),  # the article reads as option A
    ("The answer is (A)", "A", False),  # only the first token counts
    ("C.\nBecause ...", "C", True),
]


@pytest.mark.parametrize(("reply", "gold", "correct"), MVBENCH_TABLE)
def test_mvbench_official_checker_quirks(
    harness_instance: Harness, reply: str, gold: str, correct: bool
) -> None:
    mode = harness_instance.scoring_mode("mvbench_official")
    sample = Sample(
        "mvbench",
        "x",
        "Q?",
        gold,
        ("v.mp4",),
        media_kind="video",
        options=("Sat on the sofa.", "Ran.", "Hid."),
    )
    assert mode(harness_instance.task("mvbench"), sample, _traj(reply)).score == float(correct)


def test_mvbench_official_is_not_the_default_and_empty_is_wrong_there(harness_instance: Harness) -> None:
    sample = Sample("mvbench", "x", "Q?", "A", ("v.mp4",), media_kind="video", options=("a", "b"))
    assert harness_instance.task("mvbench").score("", sample).score == 0.0
    assert (
        harness_instance.scoring_mode("mvbench_official")(
            harness_instance.task("mvbench"), sample, _traj(final=None)
        ).score
        == 0.0
    )
    assert mvbench_check("(", "(a) x") and not mvbench_check("(b)", "(a) x")


@pytest.mark.parametrize(
    ("mode", "task"), [("mvbench_official", "vstar"), ("anls_paper", "tallyqa"), ("anls_paper", "mvbench")]
)
def test_task_specific_modes_refuse_other_tasks(harness_instance: Harness, mode: str, task: str) -> None:
    sample = Sample(task, "x", "Q?", "A", ("i.jpg",), options=("a", "b"))
    with pytest.raises(ValueError, match=f"{mode} applies to .* only, not to task '{task}'"):
        harness_instance.scoring_mode(mode)(harness_instance.task(task), sample, _traj("A"))


@pytest.mark.parametrize(
    ("reply", "official", "paper"),
    [
        ("abxy", 0.5, 0.0),
        ("Coca cola", 1.0, 1.0),
        ("CocaCola", pytest.approx(0.888, abs=1e-3), pytest.approx(0.888, abs=1e-3)),
    ],
)
def test_anls_paper_mode(harness_instance: Harness, reply: str, official: float, paper: float) -> None:
    spec = harness_instance.task("infovqa")
    gold = "abcd" if reply == "abxy" else "Coca Cola"
    sample = Sample("infovqa", "x", "Q?", gold, ("i.jpg",), answers=(gold,))
    assert spec.score(reply, sample).score == official
    assert harness_instance.scoring_mode("anls_paper")(spec, sample, _traj(reply)).score == paper


def test_eval_with_compat_modes(harness_instance: Harness) -> None:
    for mode, tasks in (("pixel_reasoner", "vstar,tallyqa,infovqa,mvbench"), ("anls_paper", "infovqa")):
        config = EvalConfig(tasks=tasks, model="scripted:oracle", limit=3, scoring=mode)
        result = evaluate(config, harness_instance, show_progress=False)
        assert all(r.value == 1.0 and r.scorer["scoring"] == mode for r in result.results.values()), mode


def test_mvbench_official_on_an_official_prompt_run(
    harness_instance: Harness, tmp_path: Path, make_samples: Callable[..., list[Sample]]
) -> None:
    a, b, c = make_samples("mvbench", 3)
    wrong = "B" if a.answer == "A" else "A"
    replies = {a.key: [f"{a.answer}) {a.options[ord(a.answer) - 65]}"], b.key: [""], c.key: [f"{wrong})"]}
    (tmp_path / "replies.json").write_text(json.dumps(replies))
    config = EvalConfig(
        tasks="mvbench", model=f"scripted:replay:{tmp_path / 'replies.json'}", limit=3, mode="official"
    )
    official = evaluate(config, harness_instance, show_progress=False).results["mvbench"]
    checker = evaluate(
        dataclasses.replace(config, scoring="mvbench_official"), harness_instance, show_progress=False
    )
    assert official.value == pytest.approx(1 / 3)  # empty is wrong by default
    assert checker.results["mvbench"].value == pytest.approx(2 / 3)  # the official checker counts it right
