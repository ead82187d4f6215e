"""InfographicsVQA (arXiv 2104.12756; ``lmms-lab/DocVQA`` config ``InfographicVQA``): questions on
tall, text-dense infographics; free-text answers scored by ANLS (tau 0.5).

Layout written by :func:`synthesize` and read by :func:`load_local` (the lmms-lab columns, as
JSON lines instead of parquet, ``image`` a path relative to the data root instead of bytes, plus
``evidence`` from the original release)::

    InfographicVQA/validation.jsonl    {"questionId": str, "question", "answers": [...],
                                        "answer_type": [...], "image", "image_url",
                                        "operation/reasoning": [...], "ocr", "data_split",
                                        "evidence": [...]}
    InfographicVQA/images/<questionId>.jpeg
    synthetic_annotations/<questionId>.json   synthetic only: answer boxes, distractor strings

Synthetic infographics are 1200..1600 px wide and 3.2..3.8 times as tall: a title band, then
rows of one to three blocks (a paragraph, a list or a bar chart) whose headings are large and
whose facts are written in 11..13 px text. Answer types: "single span" (half), "multi-span",
"question span" (a comparison), "non-extractive" (a sum or a count).

Scoring mode ``anls_paper`` (``--scoring``, registered here): ANLS with the paper's rule (Biten
et al. 2019; exactly 0.5 is 0) instead of the organisers' script. InfoVQA only.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from harness import hookimpl
from harness.data import DataError, row_errors
from harness.records import Sample, Trajectory
from harness.scoring import AnlsRule, anls, extract_answer_span
from harness.scoring.modes import ScoringMode
from harness.task import Scored, TaskSpec

from . import formats, infovqa_synth, pixel_reasoner
from . import synthetic as syn

NAME = "infovqa"
VERSION = 1
ANSWER_TYPES = ("single span", "multi-span", "question span", "non-extractive")
ROWS_FILE = "InfographicVQA/validation.jsonl"
HUB_ID = "lmms-lab/DocVQA"
TAU = 0.5
RULE: AnlsRule = "rrc_script"


def load_local(root: Path, rows_file: str = ROWS_FILE) -> list[Sample]:
    """Read the rows into samples: ``id`` = ``questionId``, ``answer`` = ``answers[0]``,
    ``answers`` all golds, ``category`` = the first answer type; ``metadata`` has the list
    columns ``answer_type``, ``evidence``, ``operation`` and any synthetic sidecar. A missing
    file or field is a ``DataError`` naming the file, row and field."""
    root, path = Path(root), Path(root) / rows_file
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    samples = []
    for row_no, row in enumerate(syn.read_jsonl(path)):
        with row_errors(path, row_no):
            qid = str(row["questionId"])
            answers = tuple(str(a) for a in row["answers"])
            types = [str(t) for t in _as_list(row.get("answer_type"))]
            samples.append(
                Sample(
                    task=NAME,
                    id=qid,
                    question=str(row["question"]),
                    answer=answers[0] if answers else "",
                    media=(str(row["image"]),),
                    media_kind="image",
                    answers=answers,
                    category=types[0] if types else "",
                    root=str(root),
                    metadata={
                        "answer_type": types,
                        "evidence": [str(e) for e in _as_list(row.get("evidence"))],
                        "operation": [str(o) for o in _as_list(row.get("operation/reasoning"))],
                        **syn.read_sidecar(root, qid),
                    },
                )
            )
    return samples


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def synthesize(n: int, seed: int, out_dir: Path) -> list[Sample]:
    """Write ``n`` InfoVQA samples under ``out_dir`` and load them back.

    Sample ``i`` depends only on ``(seed, i)``; files are atomic. Drawing decides the question,
    so a sample whose image, sidecar and row already exist is reused without drawing.
    """
    root = Path(out_dir)
    existing: dict[str, dict[str, object]] = {}
    if (root / ROWS_FILE).is_file():
        try:
            existing = {str(r["questionId"]): r for r in syn.read_jsonl(root / ROWS_FILE)}
        except (OSError, ValueError, KeyError):
            existing = {}
    rows, ids = [], []
    for i in range(n):
        qid = str(i)
        image = f"InfographicVQA/images/{qid}.jpeg"
        old = existing.get(qid)
        if old is not None and (root / image).exists() and syn.sidecar_path(root, qid).exists():
            rows.append(old)
            ids.append(qid)
            continue
        rng = syn.rng_for(NAME, seed, i)
        img, blocks = infovqa_synth.render(rng)
        spec = infovqa_synth.question(rng, i, blocks)
        strings = {s for b in blocks for f in b.facts for s in (f.label, f.value) if "|" not in s}
        side = {"target_boxes": spec.boxes, "distractors": sorted(strings - set(spec.answers))}
        syn.write_sidecar(root, qid, {**side, "image_size": list(img.size)})
        if not (root / image).exists():
            syn.save_image(img, root / image)
        rows.append(
            {
                "questionId": qid,
                "question": spec.text,
                "answers": spec.answers,
                "answer_type": [spec.answer_type],
                "image": image,
                "image_url": "",
                "operation/reasoning": spec.operation,
                "ocr": "",
                "data_split": "val",
                "evidence": [spec.evidence],
            }
        )
        ids.append(qid)
    return syn.write_and_load(
        lambda: syn.ensure_rows(root / ROWS_FILE, rows, "jsonl"), lambda: load_local(root), ids
    )


# --------------------------------------------------------------------------- task functions


def question(sample: Sample) -> str:
    """The question alone (free-text answer; a Pixel-Reasoner row's own text verbatim)."""
    return pixel_reasoner.released_question(sample) or sample.question


def official_prompt(sample: Sample) -> str:
    """The question + the single word or phrase instruction (lmms-eval's InfoVQA prompt)."""
    return f"{sample.question}\nAnswer the question using a single word or phrase."


def score(reply: str | None, sample: Sample) -> Scored:
    """ANLS (tau 0.5, the organisers' ``rrc_script`` rule) of the answer span read by
    ``extract_answer_span`` (last boxed content, else the "answer is" line, else the last line),
    max over all gold answers. No answer (empty reply, ``None``) scores 0.0."""
    span = extract_answer_span(reply)
    return Scored(score=anls(span, sample.golds, tau=TAU, rule=RULE), extracted=span)


def anls_paper(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    """ANLS (tau 0.5) with the paper's rule on the extracted answer span."""
    if spec.name != NAME:
        raise ValueError(f"scoring mode anls_paper applies to {NAME} only, not to task {spec.name!r}")
    span = extract_answer_span(trajectory.final_reply)
    return Scored(score=anls(span, sample.golds, rule="paper"), extracted=span)


def _joined(values: object) -> str:
    items = [str(v) for v in _as_list(values)]
    return "+".join(items) if items else "none"


def breakdown(sample: Sample) -> dict[str, str]:
    """``answer_type``, ``evidence`` and ``operation``; multi-valued ones joined with "+" in
    their given order (e.g. "Text+Figure"), an empty list is "none"."""
    md = sample.metadata
    return {
        "answer_type": _joined(md.get("answer_type") or sample.category),
        "evidence": _joined(md.get("evidence")),
        "operation": _joined(md.get("operation")),
    }


def chance_answers(sample: Sample) -> list[str]:
    """Words of the question plus the image's other strings (``metadata["distractors"]``)."""
    words = [w for w in re.findall(r"[\w%]+", sample.question)]
    pool = [*words, *(str(d) for d in sample.metadata.get("distractors", []))]
    return list(dict.fromkeys(pool))


SPEC = TaskSpec(
    name=NAME,
    version=VERSION,
    description="InfographicsVQA: read small text in tall infographics; free-text answers, "
    "ANLS (tau 0.5, rrc_script rule).",
    media_kind="image",
    metric="anls",
    subsets=ANSWER_TYPES,
    synthesize=synthesize,
    question=question,
    official_prompt=official_prompt,
    score=score,
    breakdown=breakdown,
    chance_answers=chance_answers,
    scorer_params={"extractor": "extract_answer_span", "tau": TAU, "rule": RULE},
    load_hub=partial(
        formats.image_parquet_hub, HUB_ID, "InfographicVQA", "validation", ROWS_FILE, load_local
    ),
    sources={
        "parquet": pixel_reasoner.source(
            NAME,
            ("infovqa", "infographicvqa", "infographicsvqa"),
            partial(pixel_reasoner.text_sample, task=NAME),
        )
    },
)


@hookimpl
def harness_register_tasks() -> list[TaskSpec]:
    return [SPEC]


@hookimpl
def harness_register_scoring_modes() -> dict[str, ScoringMode]:
    return {"anls_paper": anls_paper}
