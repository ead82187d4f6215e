"""Loaders for the two released Pixel-Reasoner training sets, as the trainers' ``data:``.

**RL queries** (``TIGER-Lab/PixelReasoner-RL-Data``; ``data: pixel_reasoner_rl:PATH``): the repo
holds ``release.parquet`` plus ``images.zip`` and ``videos.zip``. The parquet has the eval
parquets' columns ``qid``, ``question``, ``answer`` (a string or a list of golds), ``image`` (a
list of relative paths: the image, or a video's ordered frames) and ``is_video``; rows mix images
and videos. (Schema read from verl-tool's ``examples/data_preprocess/pixel_reasoner/prepare_train.py``,
which pops exactly these columns, and the released ``onestep_evaluation/prepare.sh`` +
``rename_imagepath.py``, which prefix each path with the data folder; the file listing is the
Hub repo's.) ``PATH`` is the repo folder (with ``release.parquet``) or the parquet file; each
media path is looked up under the folder, then under ``images/`` (images) or ``videos/`` (frames),
where the zips unpack. The question is used verbatim (options already in its text) and the
answer is scored by the released rule (:mod:`harness.scoring.compat`), so the rows need no benchmark
task: they run under :data:`RL_TASK`, a task spec that is not registered for evaluation.

**SFT trajectories** (``TIGER-Lab/PixelReasoner-SFT-Data``; ``data: pixel_reasoner_sft:PATH``):
a JSON list of records, each with ``message_list``, a Qwen message list (``role``, ``content``
as a string or a list of parts ``{"type": "text", "text"}``, ``{"type": "image", "image": path}``,
``{"type": "video", "video": [frame paths]}``; the ``type`` key may be absent, as in Qwen's
examples). Tool calls are inside assistant text; tool results are user turns with images. The
released SFT (``instruction_tuning/``) reads ``message_list`` only, bounds images to
[4, 5120]*28^2 pixels (its processor's min/max) and video frames to 420*360 pixels
(``video_max_pixels``); the reader applies the same bounds. Relative paths resolve against
``image_root`` (default: the JSON file's folder).

A malformed file, row or field is a one-line ``DataError`` naming the file, the row and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from harness.data import DataError
from harness.records import MediaKind, Sample
from harness.task import Scored, TaskSpec

RL_PREFIX = "pixel_reasoner_rl:"
SFT_PREFIX = "pixel_reasoner_sft:"
RL_FILE = "release.parquet"
RL_COLUMNS = ("qid", "question", "answer", "image", "is_video")
RL_TASK_NAME = "pixel_reasoner_rl"
P = 28 * 28
SFT_MIN_PIXELS = 4 * P  # released SFT processor: min_pixels 3136
SFT_MAX_PIXELS = 5120 * P  # released SFT processor: max_pixels 28*28*5120
SFT_VIDEO_MAX_PIXELS = 420 * 360  # released prepare_from_msg_2_vlm_inputs(video_max_pixels=420*360)


def _golds(sample: Sample) -> str | list[str]:
    raw = sample.metadata.get("pr_answer")
    if isinstance(raw, (list, tuple)):
        return [str(g) for g in raw]
    return str(raw) if raw is not None else sample.answer


def _score(reply: str | None, sample: Sample) -> Scored:
    """The released rule on the final reply: correct when its result is above 0.5."""
    from harness.scoring.compat import pixel_reasoner_result

    if reply is None:
        return Scored(score=0.0, extracted=None)
    boxed_at = reply.rfind("\\boxed")
    extracted = reply[boxed_at:].strip() if boxed_at >= 0 else None
    return Scored(
        score=1.0 if pixel_reasoner_result(reply, _golds(sample)) > 0.5 else 0.0, extracted=extracted
    )


def _synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    write_rl_repo(out_dir, n, seed)
    return [s for _, s in load_rl_data(out_dir, None)]


RL_TASK = TaskSpec(
    name=RL_TASK_NAME,
    version=1,
    description="TIGER-Lab/PixelReasoner-RL-Data rows (mixed image and video), scored by the released rule",
    media_kind="image",  # per sample: Sample.media_kind says image or video
    metric="accuracy",
    subsets=("train",),
    synthesize=_synthesize,
    question=lambda s: s.question,
    official_prompt=lambda s: s.question,
    score=_score,
    breakdown=lambda s: {"media": s.media_kind},
    chance_answers=lambda s: [],
    prompt_modes=("vcot", "notool"),
    scorer_params={"rule": "pixel_reasoner"},
)


def _rl_paths(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path / RL_FILE, path
    return path, path.parent


def _media(root: Path, rels: Sequence[str], is_video: bool) -> tuple[str, ...]:
    """Each path as found under ``root`` or the unzipped ``images/`` / ``videos/`` folder."""
    sub = "videos" if is_video else "images"
    out = []
    for rel in rels:
        found = next((c for c in (rel, f"{sub}/{rel}") if (root / c).is_file()), rel)
        out.append(found)
    return tuple(out)


def load_rl_data(path: Path, limit: int | None = None) -> list[tuple[TaskSpec, Sample]]:
    """The rows of a PixelReasoner-RL-Data copy as (:data:`RL_TASK`, sample) pairs, in file order."""
    import pyarrow.parquet as pq

    file, root = _rl_paths(Path(path))
    if not file.is_file():
        raise DataError(f"{file}: no such file (pixel_reasoner_rl: wants the repo folder or {RL_FILE})")
    try:
        rows = pq.read_table(file).to_pylist()
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"{file}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
    if rows:
        missing = [c for c in RL_COLUMNS if c not in rows[0]]
        if missing:
            raise DataError(
                f"{file}: missing column(s) {', '.join(map(repr, missing))}; PixelReasoner-RL-Data has "
                f"{', '.join(RL_COLUMNS)}"
            )
    out = []
    for i, row in enumerate(rows[:limit] if limit is not None else rows):
        out.append((RL_TASK, rl_sample(row, root, f"{file}: row {i}")))
    if not out:
        raise DataError(f"{file}: no rows")
    return out


def rl_sample(row: dict[str, Any], root: Path, where: str) -> Sample:
    """One RL row as a sample (``where`` names the file and row in errors)."""
    qid = row.get("qid")
    if not isinstance(qid, str) or not qid:
        raise DataError(f"{where}: field 'qid' must be a non-empty string, got {qid!r}")
    where = f"{where} (qid {qid!r})"
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: field 'question' must be a non-empty string")
    answer = row.get("answer")
    golds = [str(a) for a in answer] if isinstance(answer, (list, tuple)) else [str(answer)]
    if answer is None or not golds or not all(g.strip() for g in golds):
        raise DataError(f"{where}: field 'answer' is empty")
    images = row.get("image")
    images = [images] if isinstance(images, str) else images
    if not isinstance(images, list) or not images or not all(isinstance(x, str) and x for x in images):
        raise DataError(f"{where}: field 'image' must be a non-empty list of paths")
    is_video = bool(row.get("is_video"))
    kind: MediaKind = "video" if is_video else "image"
    return Sample(
        task=RL_TASK_NAME,
        id=qid,
        question=question,
        answer=golds[0],
        media=_media(root, images, is_video),
        media_kind=kind,
        answers=tuple(golds) if len(golds) > 1 else (),
        root=str(root),
        metadata={
            "qid": qid,
            "pr_question": question,
            "pr_answer": list(answer) if isinstance(answer, (list, tuple)) else answer,
            "num_segments": len(images) if is_video else 16,
        },
    )


def write_rl_repo(
    out_dir: Path, n: int, seed: int = 0, video_every: int = 3, answer_lists: bool = False
) -> Path:
    """A local folder laid out like the released RL repo (``release.parquet``, ``images/``,
    ``videos/``), ``n`` rows, every ``video_every``-th a 16-frame video; ``answer`` a string
    column, or (``answer_lists``) a list column with the option text as a second gold. For tests
    and demos."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import ImageDraw

    rng = random.Random(seed)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    colours = ["red", "green", "blue", "yellow"]
    for i in range(n):
        colour = rng.randrange(4)
        video = video_every > 0 and i % video_every == video_every - 1
        question = "What colour is the small square?\nchoices:\nA: red  \nB: green  \nC: blue  \nD: yellow"
        if video:
            folder = out_dir / "videos" / f"clip{i}"
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for f in range(16):
                im = Image.new("RGB", (96, 64), "white")
                if f == 7:
                    ImageDraw.Draw(im).rectangle((40, 24, 52, 36), fill=colours[colour])
                im.save(folder / f"{f:02d}.jpg")
                paths.append(f"clip{i}/{f:02d}.jpg")  # relative to videos/, as verl-tool resolves it
            rows.append(
                {
                    "qid": f"rlvideo-{i}",
                    "question": question.replace("square", "flash"),
                    "answer": ["ABCD"[colour]] if answer_lists else "ABCD"[colour],
                    "image": paths,
                    "is_video": True,
                }
            )
        else:
            im = Image.new("RGB", (224, 168), "white")
            x, y = rng.randrange(0, 200), rng.randrange(0, 144)
            ImageDraw.Draw(im).rectangle((x, y, x + 14, y + 14), fill=colours[colour])
            im.save(out_dir / "images" / f"img{i}.jpg")
            answer: Any = ["ABCD"[colour], colours[colour]] if answer_lists else "ABCD"[colour]
            rows.append(
                {
                    "qid": f"rlimage-{i}",
                    "question": question,
                    "answer": answer,
                    "image": [f"images/img{i}.jpg"],
                    "is_video": False,
                }
            )
    table = pa.table({c: [r[c] for r in rows] for c in RL_COLUMNS})
    pq.write_table(table, out_dir / RL_FILE)
    return out_dir


# --------------------------------------------------------------------------- SFT


def _resize(image: Image.Image, min_pixels: int, max_pixels: int) -> Image.Image:
    from harness.tools import resize_to_budget

    return resize_to_budget(image.convert("RGB"), min_pixels, max_pixels)


def _open(ref: Any, root: Path, where: str) -> Image.Image:
    ref = ref.get("url", "") if isinstance(ref, dict) else ref
    if not isinstance(ref, str) or not ref:
        raise DataError(f"{where}: no media path")
    path = Path(ref.removeprefix("file://"))
    path = path if path.is_absolute() else root / path
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{where}: file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot decode {path}: {exc}") from None


def sft_part(part: Any, root: Path, where: str) -> dict[str, Any]:
    """One content part in the harness message format (images and frames resized as released)."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise DataError(f"{where}: a content part must be a string or an object, got {part!r}")
    kind = part.get("type") or next((k for k in ("text", "image", "image_url", "video") if k in part), None)
    if kind == "text":
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind in ("image", "image_url"):
        ref = part.get("image") or part.get("image_url")
        return {"type": "image", "image": _resize(_open(ref, root, where), SFT_MIN_PIXELS, SFT_MAX_PIXELS)}
    if kind == "video":
        frames = part.get("video")
        if not isinstance(frames, list) or not frames:
            raise DataError(f"{where}: field 'video' must be a list of frame paths")
        opened = [_open(f, root, f"{where} frame {j}") for j, f in enumerate(frames)]
        return {"type": "video", "video": [_resize(f, SFT_MIN_PIXELS, SFT_VIDEO_MAX_PIXELS) for f in opened]}
    raise DataError(f"{where}: unsupported content part {kind!r}")


def read_sft_data(path: Path, image_root: Path | None = None) -> Iterator[list[dict[str, Any]]]:
    """Each record's ``message_list`` of a PixelReasoner-SFT-Data JSON file, as harness messages."""
    path = Path(path)
    root = image_root if image_root is not None else path.parent
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of records with 'message_list'")
    for k, record in enumerate(records):
        messages = record.get("message_list") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{path}: record {k}: field 'message_list' missing or empty")
        out = []
        for j, m in enumerate(messages):
            where = f"{path}: record {k}: message_list[{j}]"
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise DataError(f"{where}: field 'role' must be system, user or assistant")
            content = m.get("content")
            parts = content if isinstance(content, list) else [content if content is not None else ""]
            out.append(
                {
                    "role": m["role"],
                    "content": [sft_part(p, root, f"{where} part {i}") for i, p in enumerate(parts)],
                }
            )
        if not any(m["role"] == "assistant" for m in out):
            raise DataError(f"{path}: record {k}: field 'message_list' has no assistant turn")
        yield out
