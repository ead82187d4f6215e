"""Published numbers, shown in reports as "reported by the authors" and never as measured rows.

Source: Su, Wang, Ren, Lin, Chen, "Pixel Reasoner: Incentivizing Pixel-Space Reasoning with
Curiosity-Driven Reinforcement Learning", arXiv 2505.15966 (numbers as cited by the authors:
V* 84.3, TallyQA-Complex 74, InfographicsVQA 84.0 ANLS; the warm-start SFT model 79.0 on V*).
A benchmark the paper reports but whose number is not recorded here (MVBench) is left empty
rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

REPORTED_LABEL = "reported by the authors"
CITATION = "Pixel Reasoner, arXiv 2505.15966"


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """One published model's numbers (percent; ANLS x 100 for InfoVQA), keyed by column."""

    model: str
    scores: dict[str, float]
    citation: str = CITATION
    source: str = REPORTED_LABEL


# Columns in the order the reference table shows them, with what each one measures.
REFERENCE_COLUMNS: dict[str, str] = {
    "vstar": "V* Bench accuracy",
    "tallyqa (complex)": "TallyQA-Complex accuracy",
    "infovqa": "InfographicsVQA ANLS",
    "mvbench": "MVBench accuracy",
}

#: Task order of every table and plot (the paper's), so measured and reported tables line up.
TASK_ORDER = ("vstar", "tallyqa", "infovqa", "mvbench")


def column_key(column: str) -> tuple[int, str]:
    """Sort key of a table column (``vstar``, ``tallyqa (complex)``, ``vstar v2``): paper order first."""
    task = column.split(" ")[0]
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), column)


REFERENCE_ROWS: tuple[ReferenceRow, ...] = (
    ReferenceRow(
        model="TIGER-Lab/PixelReasoner-RL-v1 (7B)",
        scores={"vstar": 84.3, "tallyqa (complex)": 74.0, "infovqa": 84.0},
    ),
    ReferenceRow(model="TIGER-Lab/PixelReasoner-WarmStart (7B)", scores={"vstar": 79.0}),
)
