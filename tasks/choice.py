"""Multiple-choice scoring shared by V* and MVBench: one rule, stated once.

The option letter is read by ``harness.scoring.extract_choice`` from the final reply (an option's
text counts too). An empty reply, ``None`` or a reply naming no single valid letter is wrong and
stays in the denominator (unlike MVBench's official checker, VLMEvalKit and lmms-eval).
"""

from __future__ import annotations

from harness.records import Sample
from harness.scoring import choice_accuracy, extract_choice
from harness.task import Scored

from . import synthetic as syn


def score(reply: str | None, sample: Sample) -> Scored:
    """Accuracy of the extracted option letter against ``sample.answer`` (a letter)."""
    letter = extract_choice(reply, sample.options)
    return Scored(score=choice_accuracy(letter, sample.answer), extracted=letter)


def chance_answers(sample: Sample) -> list[str]:
    """The option letters: the answer space of the chance baseline."""
    return list(syn.letters(len(sample.options)))
