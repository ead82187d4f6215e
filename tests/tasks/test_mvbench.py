"""MVBench: frame sampling, schema of the synthetic files, key frames, prompts and scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mvbench_reference import official_get_index
from PIL import Image

from harness.records import Sample
from harness.task import Scored
from harness_tasks import mvbench

N = 40  # every task twice
OFFICIAL_TASKS = [
    "action_sequence",
    "action_prediction",
    "action_antonym",
    "fine_grained_action",
    "unexpected_action",
    "object_existence",
    "object_interaction",
    "object_shuffle",
    "moving_direction",
    "action_localization",
    "scene_transition",
    "action_count",
    "moving_count",
    "moving_attribute",
    "state_change",
    "fine_grained_pose",
    "character_order",
    "egocentric_navigation",
    "episodic_reasoning",
    "counterfactual_inference",
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    return mvbench.synthesize(N, 0, tmp_path_factory.mktemp("mvbench"))


def test_frame_indices_for_32_frames() -> None:
    assert mvbench.frame_indices(32) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 18, 20, 22, 24, 26, 28, 30]


@pytest.mark.parametrize("max_frame", [16, 17, 31, 32, 33, 48, 90, 97, 250, 1000])
@pytest.mark.parametrize("bound", [None, (0.0, 5.0), (2.5, 30.0), (10.0, 20.5)])
def test_frame_indices_match_the_official_rule(max_frame: int, bound: tuple[float, float] | None) -> None:
    got = mvbench.frame_indices(max_frame, bound=bound)
    assert got == official_get_index(bound, 3.0, max_frame, first_idx=1)
    assert len(got) == 16
    if bound is None or bound[0] * 3.0 < max_frame:  # a bound inside the video
        assert got == sorted(got) and got[0] >= 1 and got[-1] <= max_frame


def test_the_twenty_tasks_and_their_sources() -> None:
    assert list(mvbench.TASKS) == OFFICIAL_TASKS == list(mvbench.SPEC.subsets)
    assert mvbench.SOURCES["episodic_reasoning"] == "tvqa/frames_fps3_hq"


def test_files_have_the_real_schema(samples: list[Sample]) -> None:
    root = Path(samples[0].root)
    for task in OFFICIAL_TASKS:
        rows = json.loads((root / "json" / f"{task}.json").read_text())
        assert len(rows) == 2
        for row in rows:
            assert list(row) == ["video", "question", "candidates", "answer"]
            assert 3 <= len(row["candidates"]) <= 5 and row["answer"] in row["candidates"]
            folder = root / "video" / mvbench.SOURCES[task] / row["video"]
            assert sorted(p.name for p in folder.iterdir()) == [f"{k:05d}.jpg" for k in range(1, 33)]


def test_samples_cover_the_tasks_in_order(samples: list[Sample]) -> None:
    assert [s.category for s in samples] == OFFICIAL_TASKS * 2
    for i, s in enumerate(samples):
        assert s.id == f"{s.category}_{i // 20:04d}" and s.media_kind == "video"
        assert s.options[ord(s.answer) - 65] == s.metadata["answer_text"]
        assert s.metadata["frame_indices"] == mvbench.frame_indices(32)
        assert s.media == tuple(
            f"video/{mvbench.SOURCES[s.category]}/{s.metadata['video']}/{k:05d}.jpg"
            for k in mvbench.frame_indices(32)
        )


def _region(sample: Sample, position: int) -> np.ndarray:
    x, y, w, h = sample.metadata["answer_box"]
    with Image.open(Path(sample.root) / sample.media[position - 1]) as im:
        return np.asarray(im.convert("RGB").crop((x, y, x + w, y + h)), dtype=float)


def _changed(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels whose colour differs clearly (beyond JPEG noise)."""
    return int((np.abs(a - b).max(axis=2) > 60).sum())


def test_answer_is_visible_only_in_the_key_frames(samples: list[Sample]) -> None:
    """In the answer box every key frame differs clearly from the other shown frames, and
    those all look the same there (nothing drifts through it)."""
    for s in samples:
        key = s.metadata["key_frames"]
        assert 1 <= len(key) <= 2 and key == list(range(key[0], key[0] + len(key))) and 1 <= key[0] <= 16
        others = [p for p in range(1, 17) if p not in key]
        reference = _region(s, others[0])
        for p in others[1:]:
            assert _changed(_region(s, p), reference) == 0, (s.id, p)
        for p in key:
            assert _changed(_region(s, p), reference) >= 40, (s.id, p)


def test_action_localization_answer_matches_when_it_appears(samples: list[Sample]) -> None:
    for s in samples:
        if s.category == "action_localization":
            first = s.metadata["key_frames"][0]
            expected = "beginning" if first <= 5 else "middle" if first <= 10 else "end"
            assert expected in s.metadata["answer_text"]


def _sample() -> Sample:
    return Sample(
        task="mvbench",
        id="action_count_0000",
        question="How many dots?",
        answer="C",
        media=("f.jpg",),
        media_kind="video",
        options=("2", "3", "4"),
        category="action_count",
    )


def test_question_and_official_prompt_formats() -> None:
    s = _sample()
    assert mvbench.question(s) == "How many dots?\nchoices:\nA: 2  \nB: 3  \nC: 4"
    assert mvbench.official_prompt(s) == (
        "Carefully watch the video and pay attention to the cause and sequence of events, the detail and "
        "movement of objects, and the action and pose of persons. Based on your observations, select the "
        "best option that accurately addresses the question.\n"
        "Question: How many dots?\nOptions:\n(A) 2\n(B) 3\n(C) 4\nOnly give the best option.\nBest option:("
    )


@pytest.mark.parametrize(
    ("reply", "extracted", "score"),
    [
        ("\\boxed{C}", "C", 1.0),
        ("(C) 4", "C", 1.0),
        ("Best option: (C)", "C", 1.0),
        ("\\boxed{A}", "A", 0.0),
        ("\\boxed{D}", None, 0.0),
        ("a", "A", 0.0),
        ("", None, 0.0),
        (None, None, 0.0),
    ],
)
def test_score_tricky_replies(reply: str | None, extracted: str | None, score: float) -> None:
    assert mvbench.SPEC.score(reply, _sample()) == Scored(score, extracted)


def test_gold_in_a_box_scores_one_and_breakdown(samples: list[Sample]) -> None:
    for s in samples:
        assert mvbench.SPEC.score(f"\\boxed{{{s.answer}}}", s).score == 1.0
        assert mvbench.SPEC.score(f"\\boxed{{{s.metadata['answer_text']}}}", s).score == 1.0
        assert mvbench.breakdown(s) == {"task": s.category}
        assert mvbench.SPEC.chance_answers(s) == list("ABCDE"[: len(s.options)])


def test_a_video_file_stays_one_media_path(tmp_path: Path) -> None:
    (tmp_path / "json").mkdir()
    (tmp_path / "video/ssv2_video").mkdir(parents=True)
    (tmp_path / "video/ssv2_video/7.webm").write_bytes(b"")
    row = {"video": "7.webm", "question": "Q?", "candidates": ["x", "y", "z"], "answer": "y"}
    (tmp_path / "json/action_antonym.json").write_text(json.dumps([row]))
    [s] = mvbench.load_local(tmp_path)
    assert s.media == ("video/ssv2_video/7.webm",) and s.answer == "B" and "key_frames" not in s.metadata


def test_spec_and_hook() -> None:
    spec = mvbench.SPEC
    assert (spec.name, spec.version, spec.media_kind, spec.metric) == ("mvbench", 2, "video", "accuracy")
    assert mvbench.harness_register_tasks() == [spec]
