"""Data sources (``--data``) and media opening.

- ``synthetic`` / ``synthetic:SEED``: each task's offline generator, cached under
  ``$HARNESS_CACHE_DIR`` (default ``~/.cache/pixel-harness``) per task, version and seed.
- ``jsonl:PATH``: one ``Sample.to_dict()`` per line; relative media paths resolve against the
  line's ``root`` or else the file's folder.

Media paths always resolve inside the sample's root: ``..`` or absolute escapes are refused.
A missing or broken image raises :class:`MediaError` naming the sample and the field; the rollout
records it as that sample's error and goes on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .records import Sample
from .task import TaskSpec

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_SYNTHETIC_SIZE = 50
MAX_IMAGE_PIXELS = 200_000_000  # decompression-bomb guard (PIL's default is ~89M, warns only)


class DataError(ValueError):
    """Bad data source or malformed record; the message names the file, row and field."""


class MediaError(Exception):
    """A sample's image or video frame could not be opened."""

    def __init__(self, sample: Sample, field: str, reason: str) -> None:
        super().__init__(f"{sample.key}: {field}: {reason}")
        self.sample, self.field, self.reason = sample, field, reason


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "pixel-harness")


def load_samples(spec: TaskSpec, data: str, limit: int | None = None) -> list[Sample]:
    """Load the samples of one task from the source named by ``--data``."""
    kind, _, arg = data.partition(":")
    if kind == "synthetic":
        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise DataError(f"--data synthetic:SEED needs an integer seed, got {arg!r}") from None
        n = limit if limit is not None else DEFAULT_SYNTHETIC_SIZE
        root = cache_dir() / "synthetic" / f"{spec.name}-v{spec.version}-seed{seed}"
        root.mkdir(parents=True, exist_ok=True)
        samples = spec.synthesize(n, seed, root)
    elif kind == "jsonl":
        samples = [s for s in load_jsonl(Path(arg)) if s.task == spec.name]
    else:
        raise DataError(f"unknown --data source {data!r}; valid: synthetic[:SEED], jsonl:PATH")
    return samples[:limit] if limit is not None else samples


def load_jsonl(path: Path) -> list[Sample]:
    """Read our own sample format (one ``Sample.to_dict()`` per line)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                for required in ("task", "id", "question", "answer", "media"):
                    if required not in row:
                        raise DataError(f"{path}:{lineno}: missing field {required!r}")
                row["root"] = row.get("root") or str(path.parent)
                out.append(Sample.from_dict(row))
            except DataError:
                raise
            except (ValueError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: {exc}") from exc
    return out


def resolve_media(sample: Sample, rel: str) -> Path:
    """Resolve one media path of ``sample`` inside its root, refusing escapes."""
    root = Path(sample.root or ".").resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise MediaError(sample, "media", f"path {rel!r} escapes the data root {str(root)!r}")
    return path


def open_media(sample: Sample) -> list[Image]:
    """Open every image (or video frame) of ``sample`` as RGB, fully decoded."""
    from PIL import Image as PILImage

    PILImage.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    images = []
    if not sample.media:
        raise MediaError(sample, "media", "no image or video given")
    for i, rel in enumerate(sample.media):
        path = resolve_media(sample, rel)
        try:
            with PILImage.open(path) as im:
                im.load()
                images.append(im if im.mode == "RGB" else im.convert("RGB"))
        except FileNotFoundError:
            raise MediaError(sample, f"media[{i}]", f"file not found: {path}") from None
        except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
            raise MediaError(sample, f"media[{i}]", f"cannot decode {path}: {exc}") from None
    return images
