"""Compatibility scoring modes: other people's rules, reproduced to compare numbers, never the
default. Registered through ``harness_register_scoring_modes``; chosen with ``--scoring``.

- ``pixel_reasoner``: the released Pixel-Reasoner rule (``rule_reward`` / ``handle_boxed`` /
  ``do_verify`` in ``curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py`` of
  TIGER-AI-Lab/Pixel-Reasoner), with the ``math-verify`` package. The text scored is the whole
  transcript after the first assistant header, as the released code decodes it: every reply and
  every tool-result user turn in between. Both sides are lower-cased; for each gold (a list
  gold with a ``%`` also gets its ``%``-less form first): from the last ``\\boxed`` to the end of
  the text, then ``<answer>...</answer>`` (``Answer:`` is also tried, but on the lower-cased
  text it never matches, as released), then the whole text, each compared with
  ``math_verify.verify(parse(pred), parse("\\boxed{gold}"))``; a comma-separated gold is also
  accepted when every part (cut as released: ``gold[7:-1]``, i.e. assuming ``\\boxed{...}``) is
  a substring of the text from the last ``boxed``. (The released check for text after "Now
  everything looks fine. Solution finished." compares that capitalised marker with the
  lower-cased text, so it never fires; it is left out.) The score is ``1.0`` if the released
  result is above 0.5, as their per-benchmark accuracy counts it. Their call passes the code executor (``None``) in the ``requires_box`` slot, so
  the non-strict path above is what ran. The gold is a Pixel-Reasoner row's own ``answer``
  when the sample came from ``--data parquet:``, else the sample's golds. Their number for a
  free-text benchmark scored by ANLS came from a separate script, not this rule.

Task-specific compatibility modes (a benchmark's own checker, a paper's variant of its metric)
are registered by the task modules they serve, through the same hook.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from harness import hookimpl
from harness.records import Sample, Trajectory
from harness.scoring.modes import ScoringMode
from harness.task import Scored, TaskSpec

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>")
ASSISTANT = "<|im_start|>assistant\n"
USER = "<|im_start|>user\n"
END = "<|im_end|>\n"


def released_transcript(trajectory: Trajectory) -> str:
    """The text the released code scores: everything after the first assistant header.

    Replies are joined with the tool-result user turns as Qwen's chat template renders them
    (image placeholders as ``<|vision_start|><|vision_end|>``, the pads removed as released).
    """
    parts: list[str] = []
    for turn in trajectory.turns:
        parts.append(turn.reply + END)
        obs = turn.observation
        if obs is not None:
            pads = "<|vision_start|><|vision_end|>" * len(obs.images)
            parts.append(f"{USER}{obs.text}{pads}{END}{ASSISTANT}")
    return "".join(parts)


def _timeouts() -> dict[str, Any]:
    # math-verify's timeouts use signal.alarm, which only works in the main thread
    return {} if threading.current_thread() is threading.main_thread() else {"parsing_timeout": None}


def _normalize(answer: str) -> str:
    """The released ``normalize_answer``."""
    answer = answer.replace("dfrac", "frac").replace("\\text", "").replace("\\varnothing", "\\emptyset")
    return answer.replace("minutes", "").replace("cm", "")


def _verify(nsol: str, gold: list[Any]) -> float:
    """The released ``do_verify``: 1.0 / 0.0, or -1.0 when the prediction does not parse."""
    from math_verify import parse, verify

    try:
        pred = parse(nsol, **_timeouts())
        if len(gold) > 1 and str(gold[1]) in "ABCDEFGHIJK":
            return float(nsol[len("\\boxed{") :].startswith(str(gold[1])))
        if not pred:
            return -1.0
        kwargs = {} if not _timeouts() else {"timeout_seconds": None}
        return float(verify(pred, gold, **kwargs))
    except Exception:  # the released code counts any failure as -1
        return -1.0


def _handle_boxed(sol: str, gt: str) -> float:
    """The released ``handle_boxed`` with ``requires_box`` false (what ran)."""
    from math_verify import parse

    gt = _normalize(gt)
    try:
        gold = parse(gt if "\\boxed" in gt else f"\\boxed{{{gt}}}", **_timeouts())
    except Exception:
        return -1.0
    if not gold:
        return -1.0
    res = 0.0
    for indicator in ("\\boxed", "<answer>", "Answer:"):
        if indicator not in sol:
            continue
        if indicator == "<answer>":
            found = _ANSWER_TAG.search(sol)
            if found is None:
                continue
            nsol = f"\\boxed{{{found.group(1)}}}"
        elif indicator == "Answer:":
            nsol = f"\\boxed{{{sol.split(indicator)[-1].strip()}}}"
        else:
            nsol = sol[sol.rindex(indicator) :].strip()
        res = _verify(_normalize(nsol), gold)
        if res > 0.99:
            return res
    return _verify(_normalize(sol), gold)


def pixel_reasoner_result(solution: str, gold: str | Sequence[str]) -> float:
    """The released ``rule_reward`` correctness (``res``: 1.0, 0.0 or -1.0) of ``solution``."""
    if isinstance(gold, str):
        golds = [gold.lower()]
    else:
        golds = [str(g).lower() for g in gold]
        with_percent = next((g for g in golds if "%" in g), None)
        if with_percent is not None and with_percent.replace("%", "") not in golds:
            golds.insert(0, with_percent.replace("%", ""))
    sol = solution.lower()
    res = 0.0
    for ans in golds:
        res = _handle_boxed(sol, ans)
        if res > 0.5:
            break
        if "," in ans:
            parts = [x.lower().strip() for x in ans[len("\\boxed{") : -1].split(",")]
            boxed_at = sol.rfind("boxed")
            if boxed_at == -1:
                continue
            tail = "\\" + sol[boxed_at:]
            if all(part in tail for part in parts):
                res = 1.0
                break
    return res


def pixel_reasoner_gold(sample: Sample) -> str | list[str]:
    """The gold the released rule compares with: a Pixel-Reasoner row's own ``answer`` (string or
    list) when the sample came from one, else the sample's golds."""
    raw = sample.metadata.get("pr_answer")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (list, tuple)):
        return [str(g) for g in raw]
    return list(sample.answers) if sample.answers else sample.answer


def pixel_reasoner(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    """Score as the released Pixel-Reasoner evaluation did (see the module docstring)."""
    gold = pixel_reasoner_gold(sample)
    text = released_transcript(trajectory)
    if not text:
        return Scored(score=0.0, extracted=None)
    res = pixel_reasoner_result(text, gold)
    boxed_at = text.rfind("\\boxed")
    extracted = text[boxed_at:].split(END)[0].strip() if boxed_at >= 0 else None
    return Scored(score=1.0 if res > 0.5 else 0.0, extracted=extracted)


MODES: dict[str, ScoringMode] = {
    "pixel_reasoner": pixel_reasoner,
}


@hookimpl
def harness_register_scoring_modes() -> dict[str, ScoringMode]:
    return dict(MODES)
