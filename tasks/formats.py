"""Hub layouts of the built-in tasks that need a conversion step (InfographicVQA's parquet
images, MVBench's zips). The Pixel-Reasoner eval parquet is :mod:`harness_tasks.pixel_reasoner`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from harness.data import DataError, cache_dir
from harness.data.hub import HubOptions
from harness.records import Sample
from harness.run.results import write_bytes_atomic

from . import synthetic as syn

_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")


# --------------------------------------------------------------------------- hub conversions


def image_parquet_hub(
    repo_id: str,
    config: str,
    split: str,
    rows_file: str,
    load_local: Callable[[Path], list[Sample]],
    options: HubOptions,
) -> list[Sample]:
    """A hub split whose images live in the parquet (InfoVQA: ``lmms-lab/DocVQA`` config
    ``InfographicVQA``, split ``validation``, via ``datasets``): converted once under the harness
    cache to ``rows_file`` + image files (:func:`write_image_rows`), then read by the task's own
    ``load_local``."""
    ds = options.load_dataset(repo_id, config, split)
    out = cache_dir() / "hub" / f"{repo_id.replace('/', '--')}-{config}-{split}-{ds._fingerprint[:16]}"
    write_image_rows(ds, out, rows_file, str(Path(rows_file).parent / "images"))
    return load_local(out)


def write_image_rows(ds: Any, out: Path, rows_file: str, image_dir: str) -> None:
    """Write a hub split with an ``image`` column (images inside the parquet) as ``rows_file``
    (JSON lines, ``image`` = the image file's path relative to ``out``) plus the image files,
    once. The encoded bytes are written unchanged (not re-encoded), one file per distinct image
    (named by content hash: many questions share an infographic)."""
    from datasets import Image as ImageFeature

    target = out / rows_file
    if target.is_file():
        return
    raw = ds.cast_column("image", ImageFeature(decode=False))
    rows = []
    for i, row in enumerate(raw):
        image = row.pop("image")
        if not image or not image.get("bytes"):
            raise DataError(f"{rows_file}: row {i}: field 'image' holds no image bytes")
        data = image["bytes"]
        suffix = _suffix(image.get("path"), data)
        rel = f"{image_dir}/{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
        if not (out / rel).exists():
            write_bytes_atomic(out / rel, data)
        rows.append({**row, "image": rel})
    syn.ensure_rows(target, rows, "jsonl")  # last: an interrupted conversion is redone


def _suffix(name: object, data: bytes) -> str:
    """The image file's suffix: the one its recorded name has when that is a plain short suffix
    (``.png``, ``.jpeg``), else sniffed from the bytes. The name comes from the data file and is
    never used as a path: files are named by content hash."""
    suffix = PurePosixPath(name).suffix.lower() if isinstance(name, str) else ""
    return suffix if _SUFFIX.fullmatch(suffix) else _sniff(data)


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    return ".img"
