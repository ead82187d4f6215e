"""``answer`` vs ``no_answer``: a final reply the task's extractor gets nothing from ends the
episode as ``no_answer``, in the trajectory and in the results' end-reason counts; runs written
before ``no_answer`` existed still load."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from harness.loop.episode import Episode
from harness.loop.policy import Reply, Request
from harness.plugins import Harness, make_plugin_manager
from harness.records import Sample, Trajectory
from harness.run.evaluate import EvalConfig, evaluate
from harness.run.results import read_samples
from harness.tools import BUILTIN_TOOLS


def _sample() -> Sample:
    return Sample(task="vstar", id="s1", question="Q?", answer="A", media=("x.png",), media_kind="image")


def _episode(extract: object, mode: str = "vcot") -> Episode:
    return Episode(_sample(), [Image.new("RGB", (64, 64))], mode=mode, question="Q?", tools=BUILTIN_TOOLS,
                   extract=extract)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("extracted", "mode", "end"),
    [
        ("A", "vcot", "answer"),
        (None, "vcot", "no_answer"),
        ("  ", "vcot", "no_answer"),
        ("A", "notool", "answer"),
        (None, "notool", "no_answer"),
        (None, "official", "no_answer"),
    ],
)
def test_final_reply_without_an_extractable_answer_is_no_answer(
    extracted: str | None, mode: str, end: str
) -> None:
    seen: list[str] = []

    def extract(text: str) -> str | None:
        seen.append(text)
        return extracted

    ep = _episode(extract, mode)
    ep.step(Reply(text="I think so."))
    trajectory = ep.trajectory()
    assert trajectory.end_reason == end and seen == ["I think so."]
    assert trajectory.final_reply == "I think so."  # the reply is kept either way


def test_without_an_extractor_every_final_reply_is_answer() -> None:
    ep = _episode(None)
    ep.step(Reply(text="no idea"))
    assert ep.trajectory().end_reason == "answer"


def test_a_tool_call_is_not_judged_by_the_extractor() -> None:
    ep = _episode(lambda text: None)
    ep.step(Reply(text='<tool_call>{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0, 0, 0.5, 0.5], '
                       '"target_image": 1}}</tool_call>'))  # fmt: skip
    assert not ep.done


class Mumbler:
    """Answers some samples with a choice (by the parity of the id's last character), the others
    with no answer at all."""

    name = "test:mumbler"

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return [
            Reply(text="The answer is \\boxed{A}." if ord(r.sample.id[-1]) % 2 else "Hmm.") for r in requests
        ]


def test_results_count_no_answer_separately(tmp_path: Path) -> None:
    out = tmp_path / "run"
    harness = Harness(make_plugin_manager(autoload=False))
    config = EvalConfig(tasks="vstar", model="test:mumbler", limit=6, output_path=str(out))
    result = evaluate(config, harness, show_progress=False, policy=Mumbler())
    records = read_samples(out / "samples.jsonl")
    ends = {r.trajectory.end_reason for r in records}
    n_no = sum(r.trajectory.end_reason == "no_answer" for r in records)
    assert ends <= {"answer", "no_answer"} and 0 < n_no < 6
    assert all(r.score.extracted is None for r in records if r.trajectory.end_reason == "no_answer")
    stats = result.results["vstar"].tool_stats
    assert stats["end_no_answer"] == pytest.approx(n_no / 6)
    assert stats["end_answer"] == pytest.approx(1 - n_no / 6)
    assert stats["end_error"] == 0.0  # every reason is counted, zeros included
    saved = json.loads((out / "results.json").read_text())["results"]["vstar"]["tool_stats"]
    assert saved["end_no_answer"] == pytest.approx(n_no / 6)


def test_old_records_with_answer_still_load() -> None:
    old = {
        "task": "vstar",
        "sample_id": "s1",
        "prompt_mode": "vcot",
        "system": "",
        "prompt": "Q?",
        "turns": [],
        "end_reason": "answer",
        "final_reply": "Hmm.",
    }
    assert Trajectory.from_dict(old).end_reason == "answer"
