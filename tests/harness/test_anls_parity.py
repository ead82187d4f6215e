"""ANLS parity: ``harness.scoring.anls`` against a straightforward, independent implementation of
the two rules in docs/reference.md section 4, on 300 generated cases (many near the 0.5 boundary and
with extra whitespace, where the rules differ) plus the published golden table."""

from __future__ import annotations

import random

import pytest

from harness.scoring import anls

TAU = 0.5


def edit_distance(a: str, b: str) -> int:
    """Plain dynamic-programming Levenshtein distance (insert, delete, substitute: cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalise(s: str) -> str:
    return " ".join(s.strip().lower().split())


def reference_anls(prediction: str, golds: list[str], rule: str) -> float:
    """The organisers' script (``rrc_script``) or the paper's rule, written out from the text."""
    best = 0.0
    for gold in golds:
        dist = edit_distance(normalise(gold), normalise(prediction))
        if rule == "rrc_script":
            length = max(len(gold.upper()), len(prediction.upper()))  # raw lengths, as the script
            similarity = 1.0 - (dist / length if length else 0.0)
            best = max(best, similarity)
        else:
            length = max(len(normalise(gold)), len(normalise(prediction)))
            nl = dist / length if length else 0.0
            best = max(best, 1.0 - nl if nl < TAU else 0.0)
    if rule == "rrc_script" and best < TAU:
        return 0.0
    return best


WORDS = ["coca", "cola", "company", "42%", "north", "america", "2019", "x", "data", "the", "of", "in"]


def _edit(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, max(1, len(text) // 2))):
        op = rng.choice("isdc")
        k = rng.randrange(len(chars) + 1)
        if op == "i":
            chars.insert(k, rng.choice("abcxyz 1"))
        elif chars and k < len(chars):
            if op == "d":
                del chars[k]
            elif op == "s":
                chars[k] = rng.choice("abcxyz")
            else:
                chars[k] = chars[k].swapcase()
    out = "".join(chars)
    if rng.random() < 0.3:
        out = " " * rng.randint(1, 3) + out.replace(" ", "  ") + " " * rng.randint(0, 3)
    return out


def _cases(n: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(2104)
    cases = []
    for _ in range(n):
        golds = [" ".join(rng.sample(WORDS, rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
        kind = rng.random()
        if kind < 0.7:
            pred = _edit(rng, rng.choice(golds))
        elif kind < 0.85:  # exactly half the characters replaced: the 0.5 boundary
            gold = rng.choice(golds)
            k = len(gold) // 2
            pred = "".join("#" if i < k else c for i, c in enumerate(gold)) if len(gold) % 2 == 0 else gold
        else:
            pred = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        cases.append((pred, golds))
    return cases


CASES = _cases(300)


def test_the_generated_cases_cover_the_boundary_and_whitespace() -> None:
    script = [reference_anls(p, g, "rrc_script") for p, g in CASES]
    paper = [reference_anls(p, g, "paper") for p, g in CASES]
    assert sum(s == 0.5 for s in script) >= 10  # exactly tau survives in the script
    assert sum(a != b for a, b in zip(script, paper, strict=True)) >= 20  # the rules disagree
    assert 0.2 < sum(s > 0 for s in script) / len(script) < 0.95


@pytest.mark.parametrize("rule", ["rrc_script", "paper"])
def test_anls_matches_the_independent_implementation(rule: str) -> None:
    mismatches = [
        (pred, golds, anls(pred, golds, rule=rule), reference_anls(pred, golds, rule))  # type: ignore[arg-type]
        for pred, golds in CASES
        if abs(anls(pred, golds, rule=rule) - reference_anls(pred, golds, rule)) > 1e-12  # type: ignore[arg-type]
    ]
    assert not mismatches, mismatches[:5]


GOLDEN = [  # docs/reference.md section 4: (prediction, golds, rrc_script, paper)
    ("The Coca", ["Coca Cola", "Coca Cola Company"], 0.0, 0.0),
    ("CocaCola", ["Coca Cola", "Coca Cola Company"], 0.89, 0.89),
    ("Coca cola", ["Coca Cola", "Coca Cola Company"], 1.0, 1.0),
    ("Cola", ["Coca Cola", "Coca Cola Company"], 0.0, 0.0),
    ("Cat", ["Coca Cola", "Coca Cola Company"], 0.0, 0.0),
    ("abxy", ["abcd"], 0.5, 0.0),
    ("  cats  ", ["cat"], 0.875, 0.75),
]


@pytest.mark.parametrize(("pred", "golds", "script", "paper"), GOLDEN)
def test_golden_table(pred: str, golds: list[str], script: float, paper: float) -> None:
    for rule, expected in (("rrc_script", script), ("paper", paper)):
        assert anls(pred, golds, rule=rule) == pytest.approx(expected, abs=0.005)  # type: ignore[arg-type]
        assert reference_anls(pred, golds, rule) == pytest.approx(expected, abs=0.005)
