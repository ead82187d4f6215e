"""The Pixel-Reasoner eval parquet (``--data parquet:PATH``): reading the file and mapping its rows.

Pixel-Reasoner rows (``JasperHaozhe/*-EvalData-PixelReasoner``) carry ``qid``, ``question`` (the
full text the released evaluation showed, options as ``choices:`` / ``A: text`` lines),
``answer`` (a string or a list of strings), ``image`` (relative paths, to the parquet's folder
where the released ``images.zip`` unpacks; a video's ordered frames) and ``is_video``. A row
belongs to a task when the file name (``vstar.parquet``, ``tallyqa_mini3200.parquet``) or else
the qid prefix before the first ``-`` starts with one of the task's benchmark names. What the
format does not carry is left empty and named in each mapper's docstring: V* target boxes and
categories (inferred from the option count), TallyQA's simple/complex flag, InfoVQA's answer
types, evidence and operations, MVBench's task (read from the qid when it names one). The row's
own question and answer are kept in ``metadata["pr_question"]`` / ``["pr_answer"]``: the
``vcot``/``notool`` prompts show that text verbatim and the ``pixel_reasoner`` scoring mode
compares with that answer.

A task offers the format as a data source: ``TaskSpec(sources={"parquet": source(NAME, names,
mapper)})``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.data import DataError, cache_dir, row_errors
from harness.records import MediaKind, Sample

COLUMNS = ("qid", "question", "answer", "image", "is_video")
RowMapper = Callable[[Mapping[str, Any], Path], Sample]

_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])[):.]\s?(.*?)\s*$")
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


# --------------------------------------------------------------------------- the file


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def names_task(names: Sequence[str], name: str) -> bool:
    """Whether a Pixel-Reasoner benchmark name (qid prefix or file stem) is one of ``names``."""
    key = _norm(name)
    return bool(key) and any(key.startswith(_norm(n)) for n in names)


def load(path: Path, *, task: str, names: Sequence[str], mapper: RowMapper) -> list[Sample]:
    """Rows of a Pixel-Reasoner eval parquet that belong to ``task`` (benchmark ``names``), each
    mapped by ``mapper(row, folder of the file)``."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    import datasets

    try:
        ds = datasets.Dataset.from_parquet(str(path), cache_dir=str(cache_dir() / "datasets"))
    except Exception as exc:  # pyarrow / datasets raise many types for a bad file
        raise DataError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ds, datasets.Dataset):
        raise DataError(f"{path}: expected one table, got {type(ds).__name__}")
    missing = [c for c in COLUMNS if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; a Pixel-Reasoner eval "
            f"parquet has {', '.join(COLUMNS)}"
        )
    whole_file = names_task(names, path.stem)
    root = path.parent
    out: list[Sample] = []
    found: set[str] = set()
    for i, row in enumerate(ds):
        with row_errors(path, i):
            qid = row["qid"]
            if not isinstance(qid, str) or not qid:
                raise DataError(f"{path}: row {i}: field 'qid' must be a non-empty string, got {qid!r}")
            bench = qid.split("-")[0]
            found.add(bench)
            if whole_file or names_task(names, bench):
                out.append(mapper(_check_row(path, i, row), root))
    if not out:
        raise DataError(
            f"{path}: no row belongs to task {task} (file name {path.stem!r}, qid prefixes "
            f"{sorted(found)}; {task} is named {', '.join(names)})"
        )
    return out


def _check_row(path: Path, i: int, row: dict[str, Any]) -> dict[str, Any]:
    for column in COLUMNS:
        if row.get(column) is None and column != "is_video":
            raise DataError(f"{path}: row {i} (qid {row.get('qid')!r}): field {column!r} is empty")
    images = row["image"]
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or not images or not all(isinstance(x, str) and x for x in images):
        raise DataError(f"{path}: row {i} (qid {row['qid']!r}): field 'image' must be a list of paths")
    return {**row, "image": images, "is_video": bool(row.get("is_video"))}


def source(task: str, names: Sequence[str], mapper: RowMapper) -> Callable[[str], list[Sample]]:
    """The ``parquet`` data source of a task: ``--data parquet:PATH`` reads :func:`load`."""

    def read(arg: str) -> list[Sample]:
        return load(Path(arg), task=task, names=tuple(names), mapper=mapper)

    return read
