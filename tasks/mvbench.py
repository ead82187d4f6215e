"""MVBench (arXiv 2311.17005; ``OpenGVLab/MVBench``): 20 temporal video tasks x 200 questions,
multiple choice over 3 to 5 candidate texts.

Real layout (``OpenGVLab/MVBench`` after unzipping ``video/*.zip``), reproduced by
:func:`synthesize` and read by :func:`load_local`::

    json/<task>.json                  a JSON list of {"video", "question", "candidates", "answer"
                                      (the correct candidate's text)}, "start"/"end" seconds
    video/<source>/<video>            an mp4/webm/avi file, or a frame folder 00001.jpg ...
                                      (synthetic data: frame folders); <source> per task as in the
                                      official ``data_list`` (:data:`SOURCES`)
    synthetic_annotations/<task>/<video>.json   synthetic only: frames showing the answer

Frames: 16 at segment middles by the official ``get_index`` (:func:`harness.data.video.segment_indices`;
frame folders: 1-based files, fps 3, so for 32 files 1, 3, 5, ..., 15, 17, 18, 20, ..., 30;
video files: decoded with PyAV when opened). ``start``/``end`` bound the sampling only for the
tasks the official ``data_list`` flags (:data:`BOUND_TASKS`).

Synthetic videos (:mod:`harness_tasks.mvbench_synth`) have 32 frames of 512x288 px with moving
distractor shapes; the answer is drawn in only one or two of the 16 sampled frames
(``metadata["key_frames"]``, 1-based among the 16).

Scoring mode ``mvbench_official`` (``--scoring``, registered here): MVBench's own checker
(``check_ans`` of the official notebook) on ``"(" + first line of the reply``: only the first
space-separated token is compared, by substring, so an empty reply (``"("``) counts as
**correct**, as does a prefix of the option. That inflates accuracy; it is here to reproduce
published numbers only. MVBench only.
"""

from __future__ import annotations

import os
import string
from functools import partial
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.data import DataError, row_errors
from harness.data.confine import PathEscape, confined
from harness.data.hub import HubOptions, extract_zips
from harness.data.video import segment_indices
from harness.records import Sample, Trajectory
from harness.scoring.modes import ScoringMode
from harness.task import Scored, TaskSpec

from . import choice, mvbench_synth, pixel_reasoner
from . import synthetic as syn

NAME = "mvbench"
VERSION = 2  # 2: official prompt with the system text and prefill; bounds only for flagged tasks
HUB_ID = "OpenGVLab/MVBench"
# task -> source folder under video/ (official data_list of the MVBench evaluation code)
SOURCES: dict[str, str] = {
    "action_sequence": "star/Charades_v1_480", "action_prediction": "star/Charades_v1_480",
    "action_antonym": "ssv2_video", "fine_grained_action": "Moments_in_Time_Raw/videos",
    "unexpected_action": "FunQA_test/test", "object_existence": "clevrer/video_validation",
    "object_interaction": "star/Charades_v1_480", "object_shuffle": "perception/videos",
    "moving_direction": "clevrer/video_validation", "action_localization": "sta/sta_video",
    "scene_transition": "scene_qa/video", "action_count": "perception/videos",
    "moving_count": "clevrer/video_validation", "moving_attribute": "clevrer/video_validation",
    "state_change": "perception/videos", "fine_grained_pose": "nturgbd",
    "character_order": "perception/videos", "egocentric_navigation": "vlnqa",
    "episodic_reasoning": "tvqa/frames_fps3_hq", "counterfactual_inference": "clevrer/video_validation",
}  # fmt: skip
TASKS: tuple[str, ...] = tuple(SOURCES)
NUM_SEGMENTS = 16
FPS = 3.0  # of the frame folders (official read_frame)
INSTRUCTION = "Only give the best option."
SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and "
    "movement of objects, and the action and pose of persons. Based on your observations, select the "
    "best option that accurately addresses the question.\n"
)
ANSWER_PREFIX = "Best option:("
# tasks whose rows' start/end bound the sampled frames (official data_list flag)
BOUND_TASKS = frozenset(
    {
        "action_sequence",
        "action_prediction",
        "object_interaction",
        "action_localization",
        "episodic_reasoning",
    }
)


def frame_indices(
    max_frame: int,
    num_segments: int = NUM_SEGMENTS,
    bound: tuple[float, float] | None = None,
    fps: float = FPS,
    first_idx: int = 1,
) -> list[int]:
    """The official ``get_index(bound, fps, max_frame, first_idx)``: 1-based frame-file numbers
    of a folder of ``max_frame`` files by default (``first_idx=0`` and ``max_frame = frames - 1``
    for video files)."""
    return segment_indices(max_frame, num_segments, bound, fps, first_idx)


def load_local(root: Path) -> list[Sample]:
    """Read ``json/<task>.json`` of the 20 tasks (in :data:`TASKS` order) into samples.

    ``id`` = ``f"{task}_{row:04d}"``; ``answer`` = the correct candidate's letter, ``options`` =
    the candidates, ``category`` = the task. Frame folders become 16 frame paths
    (:func:`frame_indices`); a video file stays one path, decoded when opened. ``metadata``:
    ``answer_text``, ``video``, ``bound`` (bounded tasks), ``frame_indices`` and, for synthetic
    data, ``key_frames`` (1-based among the shown frames) and the sidecar's ``answer_box``.
    """
    root = Path(root)
    samples = []
    for task in TASKS:
        path = root / "json" / f"{task}.json"
        if path.is_file():
            for row_no, row in enumerate(syn.read_rows(path, "json")):
                with row_errors(path, row_no):
                    samples.append(_sample(root, task, row_no, row))
    if not samples:
        raise DataError(f"{root / 'json'}: no <task>.json of the 20 MVBench tasks")
    return samples


def _sample(root: Path, task: str, row_no: int, row: dict[str, Any]) -> Sample:
    candidates = tuple(str(c) for c in row["candidates"])
    answer_text = str(row["answer"])
    if answer_text not in candidates:
        raise ValueError(f"field 'answer' {answer_text!r} is not one of the candidates")
    video = str(row["video"])
    rel = f"video/{SOURCES[task]}/{video}"
    side = syn.read_sidecar(root, f"{task}/{video}")
    metadata: dict[str, Any] = {"answer_text": answer_text, "video": video, "num_segments": NUM_SEGMENTS}
    bound = (float(row["start"]), float(row["end"])) if task in BOUND_TASKS and "start" in row else None
    if bound is not None:
        metadata["bound"] = list(bound)
    media: tuple[str, ...] = (rel,)
    try:  # a `video` name that leads out of the data root lists nothing here (open_media refuses it)
        folder: Path | None = confined(root, rel)
    except PathEscape:
        folder = None
    if folder is not None and folder.is_dir():
        n_files = sum(not name.startswith(".") for name in os.listdir(folder))
        indices = frame_indices(n_files, bound=bound)
        media = tuple(f"{rel}/{k:05d}.jpg" for k in indices)
        metadata["frame_indices"] = indices
        if "answer_frames" in side:
            shown = set(side["answer_frames"])
            metadata["key_frames"] = [pos + 1 for pos, k in enumerate(indices) if k in shown]
    if "answer_box" in side:
        metadata["answer_box"] = side["answer_box"]
    return Sample(
        task=NAME,
        id=f"{task}_{row_no:04d}",
        question=str(row["question"]),
        answer=syn.letters(len(candidates))[candidates.index(answer_text)],
        media=media,
        media_kind="video",
        options=candidates,
        category=task,
        root=str(root),
        metadata=metadata,
    )


def load_hub(options: HubOptions) -> list[Sample]:
    """``OpenGVLab/MVBench`` via the hub: ``json/`` and ``video/*.zip`` (unpacked once in place)."""
    folder = options.repo_dir(HUB_ID, allow_patterns=["json/*", "video/*"])
    extract_zips(folder / "video")
    return load_local(folder)


def _pr_category(qid: str, n_options: int) -> str:
    """The MVBench task named in a Pixel-Reasoner qid, else "unknown"."""
    key = qid.lower().replace("-", "_")
    return next((t for t in TASKS if t in key or t.replace("_", "") in key), "unknown")


def synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    """Write ``n`` MVBench samples under ``out_dir`` (sample ``i`` in task ``i % 20``) and load
    them back. Sample ``i`` depends only on ``(seed, i)``; complete frame folders are kept."""
    root = Path(out_dir)
    rows: dict[str, list[dict[str, object]]] = {task: [] for task in TASKS}
    ids = []
    indices = frame_indices(mvbench_synth.NUM_FRAMES)
    for i in range(n):
        task = TASKS[i % len(TASKS)]
        row_no = i // len(TASKS)
        rng = syn.rng_for(NAME, seed, i)
        plan = mvbench_synth.plan(rng, task, NUM_SEGMENTS)
        video = f"synth_{i:05d}"
        folder = root / "video" / SOURCES[task] / video
        answer_frames = {indices[p] for p in plan.key_positions}
        if not folder.is_dir():
            mvbench_synth.render(plan, rng, folder, answer_frames)
        side = {"answer_frames": sorted(answer_frames), "answer_box": list(plan.box), "kind": plan.kind}
        syn.write_sidecar(root, f"{task}/{video}", side)
        rows[task].append(
            {
                "video": video,
                "question": plan.question,
                "candidates": list(plan.candidates),
                "answer": plan.answer,
            }
        )
        ids.append(f"{task}_{row_no:04d}")

    def write() -> None:
        for task, task_rows in rows.items():
            if task_rows:
                syn.ensure_rows(root / "json" / f"{task}.json", task_rows, "json")

    return syn.write_and_load(write, lambda: load_local(root), ids)


# --------------------------------------------------------------------------- task functions


def question(sample: Sample) -> str:
    """Pixel-Reasoner format: the question, then ``choices:`` and ``A: candidate`` lines (a
    Pixel-Reasoner row's own text verbatim)."""
    return pixel_reasoner.released_question(sample) or syn.pr_choices(sample.question, sample.options)


def official_prompt(sample: Sample) -> str:
    """The official evaluation's text (``system_llm=True``): the system text, "Question: {q}",
    "Options:" with "(A) ..." lines, "Only give the best option.", then its assistant prefill
    "Best option:(" on a line of its own: a chat turn cannot be prefilled, so the prefill ends
    the user turn and the reply starts at the letter."""
    options = syn.paren_options(sample.options)
    return f"{SYSTEM}Question: {sample.question}\nOptions:\n{options}\n{INSTRUCTION}\n{ANSWER_PREFIX}"


def breakdown(sample: Sample) -> dict[str, str]:
    """``{"task": <one of the 20 task names>}``."""
    return {"task": sample.category}


def mvbench_check(pred: str, gt: str) -> bool:
    """The official MVBench ``check_ans``: first tokens compared by substring, both ways."""
    pred_option = pred.lower().split(" ")[0]
    gt_option = gt.lower().split(" ")[0]
    return pred_option.replace(".", "") in gt_option or gt_option in pred_option


def mvbench_official(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    """MVBench's official checker on ``"(" + the reply's first line`` (empty counts correct).
    A sample that produced no reply at all (media or backend error) scores 0."""
    if spec.name != NAME:
        raise ValueError(f"scoring mode mvbench_official applies to {NAME} only, not to task {spec.name!r}")
    reply = trajectory.final_reply
    if reply is None:
        return Scored(score=0.0, extracted=None)
    pred = "(" + reply.strip().split("\n")[0]
    letter = sample.answer.strip().upper()
    text = sample.options[string.ascii_uppercase.index(letter)] if sample.options else ""
    gt = f"({letter}) {text}"
    return Scored(score=1.0 if mvbench_check(pred, gt) else 0.0, extracted=pred.lower().split(" ")[0])


SPEC = TaskSpec(
    name=NAME,
    version=VERSION,
    description="MVBench: 20 temporal video tasks, 16 frames at segment middles, 3-5 candidates; "
    "accuracy with empty answers wrong.",
    media_kind="video",
    metric="accuracy",
    subsets=TASKS,
    synthesize=synthesize,
    question=question,
    official_prompt=official_prompt,
    score=choice.score,
    breakdown=breakdown,
    chance_answers=choice.chance_answers,
    scorer_params={"extractor": "extract_choice", "empty_answer": "wrong", "num_frames": NUM_SEGMENTS},
    load_hub=load_hub,
    sources={
        "parquet": pixel_reasoner.source(
            NAME, ("mvbench",), partial(pixel_reasoner.choice_sample, task=NAME, category=_pr_category)
        )
    },
)


@hookimpl
def harness_register_tasks() -> list[TaskSpec]:
    return [SPEC]


@hookimpl
def harness_register_scoring_modes() -> dict[str, ScoringMode]:
    return {"mvbench_official": mvbench_official}
