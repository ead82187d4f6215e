"""Real-data formats shared by the task modules: Pixel-Reasoner eval parquet rows and the
hub layouts that need a conversion step (InfographicVQA's parquet images, MVBench's zips).

Pixel-Reasoner rows (``JasperHaozhe/*-EvalData-PixelReasoner``) carry ``qid``, ``question`` (the
full text the released evaluation showed, options as ``choices:`` / ``A: text`` lines),
``answer`` (a string or a list of strings), ``image`` (relative paths; a video's ordered frames)
and ``is_video``. What the format does not carry is left empty and named in each mapper's
docstring: V* target boxes and categories (inferred from the option count), TallyQA's
simple/complex flag, InfoVQA's answer types, evidence and operations, MVBench's task (read from
the qid when it names one). The row's own question and answer are kept in
``metadata["pr_question"]`` / ``["pr_answer"]``: the ``vcot``/``notool`` prompts show that text
verbatim and the ``pixel_reasoner`` scoring mode compares with that answer.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from harness.data import DataError, cache_dir
from harness.data.hub import HubOptions
from harness.records import MediaKind, Sample

from . import synthetic as syn

_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])[):.]\s?(.*?)\s*$")
_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")
_GOLD_LETTER = re.compile(r"^\(?([A-Za-z])\)?(?:[.:)]\s*.*|\s+.*)?$", re.S)


def released_question(sample: Sample) -> str | None:
    """The question text of a Pixel-Reasoner row, shown verbatim in ``vcot``/``notool``."""
    text = sample.metadata.get("pr_question")
    return text if isinstance(text, str) and text else None


def split_choices(question: str) -> tuple[str, tuple[str, ...]]:
    """Split ``"q\\nchoices:\\nA: x  \\nB: y"`` (or ``(A) x`` lines) into the stem and options."""
    head, sep, tail = question.partition("\nchoices:\n")
    lines = tail.split("\n") if sep else question.split("\n")
    options: list[str] = []
    stem_lines: list[str] = []
    for line in lines:
        m = _CHOICE_LINE.match(line)
        if m is not None and m.group(1) == string.ascii_uppercase[len(options)]:
            options.append(m.group(2))
        elif options:
            break
        elif not sep:
            stem_lines.append(line)
    stem = head if sep else "\n".join(stem_lines)
    return stem.strip(), tuple(options)


def _golds(row: Mapping[str, Any]) -> list[str]:
    answer = row["answer"]
    if isinstance(answer, (list, tuple)):
        return [str(a) for a in answer]
    return [str(answer)]


def _letter(gold: str, options: Sequence[str]) -> str | None:
    """The option letter a gold names: an option's exact text first, else a letter ("B", "b",
    "(B)", "B. text", "B) text")."""
    valid = string.ascii_uppercase[: len(options)]
    key = " ".join(gold.lower().split())
    hits = [valid[i] for i, opt in enumerate(options) if " ".join(opt.lower().split()) == key]
    if len(hits) == 1:
        return hits[0]
    m = _GOLD_LETTER.match(gold.strip())
    if m is not None and m.group(1).upper() in valid and (len(gold.strip()) <= 3 or m.group(1).isupper()):
        return m.group(1).upper()
    return None


def _base(row: Mapping[str, Any], root: Path, task: str, kind: MediaKind) -> dict[str, Any]:
    return {
        "task": task,
        "id": str(row["qid"]),
        "media": tuple(row["image"]),
        "media_kind": kind,
        "root": str(root),
        "metadata": {"qid": row["qid"], "pr_question": row["question"], "pr_answer": row["answer"]},
    }


def choice_sample(
    row: Mapping[str, Any], root: Path, *, task: str, category: Callable[[str, int], str]
) -> Sample:
    """A multiple-choice row (V*, MVBench): options from the ``choices:`` lines, the gold as a
    letter (given as "B", "(B)", "B. text" or as the option's text); ``category(qid, n_options)``."""
    stem, options = split_choices(str(row["question"]))
    if len(options) < 2:
        raise DataError(f"qid {row['qid']!r}: field 'question' has no 'choices:' / 'A: ...' options")
    golds = _golds(row)
    letter = _letter(golds[0], options) if golds else None
    if letter is None:
        raise DataError(f"qid {row['qid']!r}: field 'answer' {row['answer']!r} names no option of {options}")
    kind: MediaKind = "video" if row["is_video"] else "image"
    base = _base(row, root, task, kind)
    base["metadata"]["answer_text"] = options[string.ascii_uppercase.index(letter)]
    return Sample(
        question=stem,
        answer=letter,
        options=options,
        category=category(str(row["qid"]), len(options)),
        **base,
    )


def count_sample(row: Mapping[str, Any], root: Path, *, task: str) -> Sample:
    """A counting row (TallyQA): the gold is an integer. The simple/complex flag is not in the
    format: the category is "unknown"."""
    gold = _golds(row)[0].strip()
    try:
        count = int(float(gold))
    except ValueError:
        raise DataError(f"qid {row['qid']!r}: field 'answer' {gold!r} is not a count") from None
    return Sample(
        question=str(row["question"]),
        answer=str(count),
        category="unknown",
        **_base(row, root, task, "image"),
    )


def text_sample(row: Mapping[str, Any], root: Path, *, task: str) -> Sample:
    """A free-text row (InfoVQA): every answer of the list is a gold. Answer types, evidence and
    operations are not in the format (breakdowns read "none")."""
    golds = tuple(_golds(row))
    if not golds:
        raise DataError(f"qid {row['qid']!r}: field 'answer' is an empty list")
    return Sample(
        question=str(row["question"]), answer=golds[0], answers=golds, **_base(row, root, task, "image")
    )


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
            syn.atomic_write_bytes(out / rel, data)
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
