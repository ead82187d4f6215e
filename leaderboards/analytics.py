"""Did the model look at the right place? Crops and frames against the annotated targets.

Read from ``samples.jsonl`` records, pure arithmetic:

- A crop's ``Observation.box_in_original`` is ``(x1, y1, x2, y2)`` as fractions of the sample's
  first image. Targets are ``metadata["target_boxes"]`` as ``[x, y, w, h]`` pixels of that image
  (V\\* and the synthetic TallyQA / InfoVQA data carry them), turned into fractions with the
  image size (``metadata["image_size"]``, else the image file's header).
- ``crop_iou``: the best IoU of any crop of the sample with the *target region* (the bounding
  box of all its targets; for one target, the target itself).
- ``crop_coverage``: the fraction of the targets' area that lies inside at least one crop.
- ``look_hit_rate``: the fraction of samples whose crops cover at least half the target area.
- ``key_frame_recall``: for videos with ``metadata["key_frames"]``, the fraction of key frames
  the model selected.

Each is averaged over the samples where it is defined (the model cropped / selected frames and
the sample is annotated); ``looked_n`` / ``frames_n`` count them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.records import Sample, Trajectory
from harness.run.results import SampleRecord

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
HIT_COVERAGE = 0.5


def area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Box, b: Box) -> Box | None:
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[2] > box[0] and box[3] > box[1] else None


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    if inter is None:
        return 0.0
    shared = area(inter)
    union = area(a) + area(b) - shared
    return shared / union if union > 0 else 0.0


def bounding_box(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _union_area(boxes: Sequence[Box], inside: Sequence[Box] = ()) -> float:
    """Area of the union of ``boxes`` (restricted to the union of ``inside`` when given).

    Exact, by coordinate compression: cut the plane at every box edge and add the cells that
    lie in some box (and in some ``inside`` box). Box counts per sample are tiny.
    """
    everything = [*boxes, *inside]
    xs = sorted({v for b in everything for v in (b[0], b[2])})
    ys = sorted({v for b in everything for v in (b[1], b[3])})
    total = 0.0
    for x1, x2 in zip(xs, xs[1:], strict=False):
        cx = (x1 + x2) / 2
        for y1, y2 in zip(ys, ys[1:], strict=False):
            cy = (y1 + y2) / 2

            def contains(b: Box, cx: float = cx, cy: float = cy) -> bool:
                return b[0] <= cx <= b[2] and b[1] <= cy <= b[3]

            if any(contains(b) for b in boxes) and (not inside or any(contains(b) for b in inside)):
                total += (x2 - x1) * (y2 - y1)
    return total


def coverage(targets: Sequence[Box], crops: Sequence[Box]) -> float:
    """Fraction of the targets' (union) area inside the union of the crops."""
    whole = _union_area(targets)
    if whole <= 0 or not crops:
        return 0.0
    return min(1.0, _union_area(targets, crops) / whole)


@lru_cache(maxsize=4096)
def _header_size(path: str) -> tuple[int, int] | None:
    from PIL import Image  # lazy: only when the results lack the size

    try:
        with Image.open(path) as im:
            return im.size
    except OSError:
        return None


def image_size(sample: Sample) -> tuple[int, int] | None:
    """The first image's (width, height): from the metadata, else from the file header."""
    size = sample.metadata.get("image_size")
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    if not sample.media or sample.media_kind != "image":
        return None
    path = Path(sample.root, sample.media[0]) if sample.root else Path(sample.media[0])
    return _header_size(str(path))


def target_boxes(sample: Sample) -> list[Box]:
    """The sample's target boxes as fractions of its first image (empty when unknown)."""
    boxes = sample.metadata.get("target_boxes") or []
    if not boxes or sample.media_kind != "image":
        return []
    size = image_size(sample)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return []
    w, h = size
    out: list[Box] = []
    for b in boxes:
        if isinstance(b, (list, tuple)) and len(b) == 4:
            x, y, bw, bh = (float(v) for v in b)
            out.append((x / w, y / h, (x + bw) / w, (y + bh) / h))
    return out


def crop_boxes(trajectory: Trajectory) -> list[Box]:
    """Every successful crop of the trajectory that maps back to the first image."""
    out: list[Box] = []
    for turn in trajectory.turns:
        obs = turn.observation
        if obs is not None and obs.kind == "crop" and obs.box_in_original is not None:
            x1, y1, x2, y2 = obs.box_in_original
            out.append((float(x1), float(y1), float(x2), float(y2)))
    return out


def selected_frames(trajectory: Trajectory) -> set[int]:
    frames: set[int] = set()
    for turn in trajectory.turns:
        obs = turn.observation
        if obs is not None and obs.kind == "frames":
            frames.update(obs.frames)
    return frames


@dataclass(frozen=True, slots=True)
class Look:
    """Where one sample's model looked, against the annotation (``None`` = not defined)."""

    iou: float | None = None
    coverage: float | None = None
    key_frame_recall: float | None = None


def look(record: SampleRecord) -> Look:
    """The look statistics of one sample."""
    sample, traj = record.sample, record.trajectory
    key = sample.metadata.get("key_frames") or []
    if sample.media_kind == "video":
        chosen = selected_frames(traj)
        if not key or not chosen:
            return Look()
        wanted = {int(k) for k in key}
        return Look(key_frame_recall=len(wanted & chosen) / len(wanted))
    targets = target_boxes(sample)
    crops = crop_boxes(traj)
    if not targets or not crops:
        return Look()
    region = bounding_box(targets)
    return Look(iou=max(iou(c, region) for c in crops), coverage=coverage(targets, crops))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def look_stats(records: Iterable[SampleRecord]) -> dict[str, dict[str, float]]:
    """Per task: ``crop_iou``, ``crop_coverage``, ``look_hit_rate``, ``key_frame_recall`` and counts.

    Statistics that are defined for no sample of a task are left out (never NaN).
    """
    looks: dict[str, list[Look]] = defaultdict(list)
    for rec in records:
        looks[rec.sample.task].append(look(rec))
    out: dict[str, dict[str, float]] = {}
    for task, items in looks.items():
        stats: dict[str, float] = {}
        ious = [x.iou for x in items if x.iou is not None]
        covs = [x.coverage for x in items if x.coverage is not None]
        recalls = [x.key_frame_recall for x in items if x.key_frame_recall is not None]
        if ious:
            stats["crop_iou"] = _mean(ious)
            stats["crop_coverage"] = _mean(covs)
            stats["look_hit_rate"] = _mean([1.0 if c >= HIT_COVERAGE else 0.0 for c in covs])
            stats["looked_n"] = float(len(ious))
        if recalls:
            stats["key_frame_recall"] = _mean(recalls)
            stats["frames_n"] = float(len(recalls))
        out[task] = stats
    return out


def score_by_ops(records: Iterable[SampleRecord]) -> dict[str, dict[int, tuple[float, int]]]:
    """Per task: ``{n_ops: (mean score, n samples)}`` — accuracy against the number of tool calls."""
    groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        groups[rec.sample.task][rec.trajectory.n_ops].append(rec.score.score)
    return {
        task: {ops: (_mean(scores), len(scores)) for ops, scores in sorted(by_ops.items())}
        for task, by_ops in groups.items()
    }
