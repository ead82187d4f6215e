"""Data sources (``--data``) and media opening.

- ``synthetic`` / ``synthetic:SEED``: each task's offline generator, cached under
  ``$HARNESS_CACHE_DIR`` (default ``~/.cache/pixel-harness``) per task, version and seed.
- ``hub`` / ``hub:KEY=VALUE,...``: the real benchmarks from the Hugging Face Hub, read by each
  task's ``load_hub`` (options in :mod:`harness.data.hub`: ``mirror=DIR``, ``cache_dir=DIR``,
  ``revision=REV``, and each task's own, e.g. ``tallyqa=DIR``).
- ``KIND:ARG``: a source the task itself offers in ``TaskSpec.sources`` (the built-in tasks offer
  ``parquet:PATH``, a Pixel-Reasoner eval parquet: :mod:`harness_tasks.pixel_reasoner`).
- ``jsonl:PATH``: one ``Sample.to_dict()`` per line; relative media paths resolve against the
  line's ``root`` or else the file's folder.

A missing file, column or field is a :class:`DataError` naming the file, the row and the field.

Media paths always resolve inside the sample's root (:func:`harness.data.confine.confined`): ``..``,
absolute paths and symlinks that lead out of it are refused, the frame files of a frame folder
included; the resolved path is what gets opened.
Images larger than :data:`MAX_IMAGE_PIXELS` (decompression bombs) are refused before decoding.
A video sample with one media path that is a video file or a frame folder is decoded to
``metadata["num_segments"]`` (16) frames by :mod:`harness.data.video`, within ``metadata["bound"]``
(start, end seconds) when set. A missing, escaping, oversized or broken image or video raises
:class:`MediaError` naming the sample and the field; the rollout records it as that sample's
error and goes on.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.confine import PathEscape, confined
from harness.data.source import SOURCES as SOURCES
from harness.data.source import DataError as DataError
from harness.data.source import DataSource
from harness.records import Sample
from harness.task import TaskSpec

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_SYNTHETIC_SIZE = 50
MAX_IMAGE_PIXELS = 200_000_000  # decompression-bomb limit (InfoVQA's largest is ~59M pixels)


class MediaError(Exception):
    """A sample's image or video frame could not be opened."""

    def __init__(self, sample: Sample, field: str, reason: str) -> None:
        super().__init__(f"{sample.key}: {field}: {reason}")
        self.sample, self.field, self.reason = sample, field, reason


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "pixel-harness")


@contextmanager
def row_errors(path: Path | str, row: int | str) -> Iterator[None]:
    """Turn a ``KeyError`` / ``TypeError`` / ``ValueError`` while reading one row into a
    :class:`DataError` naming the file, the row and (for a missing key) the field."""
    try:
        yield
    except DataError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise DataError(f"{path}: row {row}: {exc}") from None
    except KeyError as exc:
        raise DataError(f"{path}: row {row}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: row {row}: {exc}") from exc


def load_samples(
    spec: TaskSpec,
    data: DataSource | str,
    limit: int | None = None,
    *,
    hub_keys: Iterable[str] | None = None,
) -> list[Sample]:
    """Load the samples of one task from the source named by ``--data`` (a :class:`DataSource`,
    or its text, parsed here). ``hub_keys``: the task options a ``hub`` source may carry (the
    ``hub_keys`` of every task loaded from it; default: this task's)."""
    source = DataSource.of(data)
    kind = source.kind
    if kind == "synthetic":
        seed = source.seed
        n = limit if limit is not None else DEFAULT_SYNTHETIC_SIZE
        if spec.synthesize is None:
            raise DataError(f"task {spec.name} has no synthetic data; valid: {SOURCES}")
        root = cache_dir() / "synthetic" / f"{spec.name}-v{spec.version}-seed{seed}"
        root.mkdir(parents=True, exist_ok=True)
        samples = spec.synthesize(n, seed, root)
    elif kind == "jsonl":
        every = load_jsonl(source.path)
        samples = [s for s in every if s.task == spec.name]
        if not samples:  # never a run of n=0 with NaN metrics
            has = sorted({s.task for s in every})
            raise DataError(
                f"{source.text}: no sample of task {spec.name} (the file has "
                + (f"tasks {', '.join(has)})" if has else "no samples)")
            )
    elif kind in spec.sources:
        samples = spec.sources[kind](source.text)
    elif kind == "hub":
        samples = load_hub(spec, source, spec.hub_keys if hub_keys is None else hub_keys)
    else:
        raise DataError(f"unknown --data source {str(source)!r}; valid: {SOURCES}")
    return samples[:limit] if limit is not None else samples


def load_jsonl(path: Path) -> list[Sample]:
    """Read our own sample format (one ``Sample.to_dict()`` per line).

    ``media`` is a list of paths; a single path given as a string is taken as a one-element list
    (never split into characters). Any other type is a :class:`DataError` naming the line, the
    sample and the field.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise DataError(f"{where}: expected a JSON object (one sample), got {type(row).__name__}")
                for required in ("task", "id", "question", "answer", "media"):
                    if required not in row:
                        raise DataError(f"{where}: missing field {required!r}")
                where = f"{where} (sample {row['id']!r})"
                row["media"] = _media_paths(where, row["media"])
                row["root"] = row.get("root") or str(path.parent)
                out.append(Sample.from_dict(row))
            except DataError:
                raise
            except (ValueError, TypeError) as exc:
                raise DataError(f"{where}: {exc}") from exc
    return out


def _media_paths(where: str, media: Any) -> list[str]:
    """A jsonl row's ``media`` as a list of paths: a string is one path, not a list of characters."""
    if isinstance(media, str):
        media = [media]
    if not isinstance(media, list) or not all(isinstance(m, str) and m for m in media):
        raise DataError(f"{where}: field 'media' must be a path or a list of paths, got {str(media)[:80]!r}")
    return media


def load_hub(spec: TaskSpec, source: DataSource, hub_keys: Iterable[str]) -> list[Sample]:
    """``--data hub[:options]``: the task's real data through its ``load_hub``; a task option
    that no key of ``hub_keys`` names is refused first."""
    if spec.load_hub is None:
        raise DataError(f"task {spec.name} has no hub source; use --data parquet:PATH or jsonl:PATH")
    options = source.hub_options()
    options.check_keys(hub_keys)
    return spec.load_hub(options)


# --------------------------------------------------------------------------- media


def media_root(sample: Sample) -> Path:
    """The folder ``sample``'s media paths are confined to (its ``root``, else the working directory)."""
    return Path(sample.root or ".")


def resolve_media(sample: Sample, rel: str, field: str = "media") -> Path:
    """Resolve one media path of ``sample`` inside its root, symlinks included; refuse escapes."""
    try:
        return confined(media_root(sample), rel)
    except PathEscape as exc:
        raise MediaError(sample, field, f"escapes the data root: {exc}") from None


def _open_image(sample: Sample, field: str, path: Path, limit: int) -> Image:
    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as im:
                if im.width * im.height > limit:
                    raise MediaError(
                        sample,
                        field,
                        f"{path}: {im.width}x{im.height} = {im.width * im.height} pixels exceeds the "
                        f"decompression-bomb limit of {limit}",
                    )
                im.load()
                return im if im.mode == "RGB" else im.convert("RGB")
    except FileNotFoundError:
        raise MediaError(sample, field, f"file not found: {path}") from None
    except PILImage.DecompressionBombError as exc:
        raise MediaError(sample, field, f"{path}: decompression bomb refused: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError(sample, field, f"cannot decode {path}: {exc}") from None


def _open_video(sample: Sample, path: Path, limit: int) -> list[Image]:
    from harness.data.video import VideoError, read_frames

    bound = sample.metadata.get("bound")
    try:
        frames = read_frames(
            path,
            int(sample.metadata.get("num_segments", 16)),
            (float(bound[0]), float(bound[1])) if bound else None,
            max_pixels=limit,
            root=media_root(sample),
        )
    except PathEscape as exc:  # a frame file of the folder is a symlink out of the data root
        raise MediaError(sample, "media[0]", f"escapes the data root: {exc}") from None
    except FileNotFoundError as exc:
        raise MediaError(sample, "media[0]", f"file not found: {exc.filename or exc}") from None
    except (VideoError, OSError, ValueError, SyntaxError) as exc:
        raise MediaError(sample, "media[0]", f"cannot decode video {path}: {exc}") from None
    return frames.images


def open_media(sample: Sample, *, max_pixels: int | None = None) -> list[Image]:
    """Open every image (or the video's sampled frames) of ``sample`` as RGB, fully decoded."""
    from PIL import Image as PILImage

    from harness.data.video import VIDEO_SUFFIXES

    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    # PIL refuses outright at twice its limit and warns above it; the check above is exact.
    PILImage.MAX_IMAGE_PIXELS = max(limit, PILImage.MAX_IMAGE_PIXELS or 0)
    if not sample.media:
        raise MediaError(sample, "media", "no image or video given")
    if sample.media_kind == "video" and len(sample.media) == 1:
        path = resolve_media(sample, sample.media[0], "media[0]")
        if path.is_dir() or path.suffix.lower() in VIDEO_SUFFIXES:
            return _open_video(sample, path, limit)
    return [
        _open_image(sample, f"media[{i}]", resolve_media(sample, rel, f"media[{i}]"), limit)
        for i, rel in enumerate(sample.media)
    ]
