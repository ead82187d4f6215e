"""Table-driven tests of harness.scoring: each extractor alone, then metrics and aggregation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.records import MetricValue
from harness.scoring import (
    aggregate,
    anls,
    breakdown,
    choice_accuracy,
    count_accuracy,
    exact_match,
    extract_answer_span,
    extract_boxed,
    extract_choice,
    extract_count,
    normalize_text,
    rmse,
    strip_latex,
)

# --------------------------------------------------------------------------- extract_boxed

BOXED = [
    (r"so \boxed{A}", "A"),
    (r"\boxed{\text{A}}", r"\text{A}"),
    (r"\boxed {x}", "x"),
    (r"\boxed{A} then \boxed{B}", "B"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
    (r"\boxed{}", ""),
    (r"\boxed{\boxed{C}}", "C"),
    ("no box here", None),
    (r"\boxed{A", None),
    (r"\boxed{A} and a truncated \boxed{B", None),
    (r"\boxed", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), BOXED)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


STRIP_LATEX = [
    (r"\text{A}", "A"),
    (r"\textbf{Lion}", "Lion"),
    (r"\mathrm{cm}", "cm"),
    (r"$42$", "42"),
    (r"\text{\textbf{B}}", "B"),
    (r"45\%", "45%"),
    (r"\text{AT\&T}", "AT&T"),
    (r"\text{open", "open"),
    ("plain", "plain"),
]


@pytest.mark.parametrize(("text", "expected"), STRIP_LATEX)
def test_strip_latex(text: str, expected: str) -> None:
    assert strip_latex(text) == expected


# --------------------------------------------------------------------------- extract_choice

CHOICE_4 = [
    # accepted forms
    ("C", "C"),
    ("c", "C"),
    ("(C)", "C"),
    ("C.", "C"),
    ("C)", "C"),
    ("C:", "C"),
    ("**C**", "C"),
    ("C. Lion", "C"),
    ("(B) the red one", "B"),
    ("Answer: C", "C"),
    ("Final Answer: **D**", "D"),
    ("The answer is (B)", "B"),
    ("The answer is: option C", "C"),
    ("Best option: (C)", "C"),
    ("Best option:(A) Lion", "A"),
    ("The correct option is D.", "D"),
    (r"The answer is \boxed{B}.", "B"),
    (r"\boxed{\text{A}}", "A"),
    (r"\boxed{(D)}", "D"),
    (r"Reasoning mentions A and B. \boxed{C}", "C"),
    ("C\nBecause the lion is on the left.", "C"),
    ("A is correct.", "A"),
    ("I think B is right.", "B"),
    ("Answer: I think it is B", "B"),
    ("Option A shows a lion, but the answer is B.", "B"),
    ("（C）", "C"),
    # docs/reference.md section 4: the peer traps
    ("AREA.", None),
    ("Based on the image, the answer is C.", "C"),
    ("A dog is sitting on the left.", None),
    ("The answer is a dog.", None),
    # ambiguity, range and emptiness
    ("The answer is A or B", None),
    ("Answer: (B) or (C)", None),
    ("The answer is A. No wait, the answer is B.", None),
    ("Either B or C could be right.", None),
    ("A: Lion\nB: Sheep", None),
    ("E", None),
    ("The answer is E", None),
    (r"\boxed{A or B}", None),
    ("A or B", None),
    (r"\boxed{}", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("I cannot tell from the image.", None),
]


@pytest.mark.parametrize(("text", "expected"), CHOICE_4)
def test_extract_choice_four_options(text: str | None, expected: str | None) -> None:
    assert extract_choice(text, 4) == expected


CHOICE_RANGE = [
    ("B", 2, "B"),
    ("C", 2, None),
    ("Answer: C", 2, None),
    ("The answer is C, so B is wrong", 2, None),
    ("E", 5, "E"),
    ("(E) jumping", 5, "E"),
]


@pytest.mark.parametrize(("text", "n", "expected"), CHOICE_RANGE)
def test_extract_choice_letters_beyond_options_are_invalid(text: str, n: int, expected: str | None) -> None:
    assert extract_choice(text, n) == expected


ANIMALS = ["Lion", "Sheep", "Brown bear", "Cat"]
CHOICE_TEXTS = [
    ("Lion", "A"),
    ("lion.", "A"),
    ("  brown   BEAR!", "C"),
    ("The answer is: Sheep", "B"),
    ("Looking closely...\nCat", "D"),
    ("D. Cat", "D"),
    ("brown", None),
    ("A lion and a cat", None),
    ("Tiger", None),
]


@pytest.mark.parametrize(("text", "expected"), CHOICE_TEXTS)
def test_extract_choice_option_texts(text: str, expected: str | None) -> None:
    assert extract_choice(text, ANIMALS) == expected


def test_extract_choice_option_text_beats_article() -> None:
    assert extract_choice("A cat", ["A dog", "A cat"]) == "B"


@pytest.mark.parametrize("options", [0, 27, "ABCD"])
def test_extract_choice_rejects_bad_option_spaces(options: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        extract_choice("A", options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- extract_count

COUNTS = [
    ("4", 4),
    ("four", 4),
    ("Four.", 4),
    ("There are 4 apples", 4),
    ("There are 4 apples.", 4),
    (r"\boxed{4}", 4),
    (r"\boxed{\text{seven}}", 7),
    (r"I see 2 dogs at first, so \boxed{3}", 3),
    ("zero", 0),
    ("eleven", 11),
    ("twenty", 20),
    ("twenty-one", 21),
    ("twenty one birds", 21),
    ("ninety-nine", 99),
    ("one hundred and five", 105),
    ("a hundred", 100),
    ("one thousand two hundred", 1200),
    ("a dozen", 12),
    ("two dozen eggs", 24),
    ("1,000", 1000),
    ("12,345 people", 12345),
    ("1,2", 2),
    ("4.0", 4),
    ("There are 3 cats and 5 dogs", 5),
    ("Counting: one, two, three", 3),
    ("The answer is 6.\nHope this helps!", 6),
    ("There are no dogs", 0),
    ("none", 0),
    ("No.", 0),
    ("No, there are 3 people", 3),
    ("There are 3 dogs and no cats", 3),
    ("2.5", None),
    ("-3", None),
    ("the 3rd", None),
    ("someone is alone", None),
    ("I am not sure", None),
    ("There are 4 apples.\nI hope that helps!", None),
    (r"\boxed{}", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), COUNTS)
def test_extract_count(text: str | None, expected: int | None) -> None:
    assert extract_count(text) == expected


# --------------------------------------------------------------------------- spans, normalisation

SPANS = [
    (r"Thinking... \boxed{\text{Coca Cola}}", "Coca Cola"),
    (r"\boxed{45\%}", "45%"),
    ("The answer is 45%.", "45%"),
    ("Reasoning.\nFinal Answer: **Coca Cola**", "Coca Cola"),
    ("Answer:\n\nTokyo.", "Tokyo"),
    ("I looked at the chart.\nTokyo\n", "Tokyo"),
    ("Tokyo", "Tokyo"),
    (r"\boxed{}", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), SPANS)
def test_extract_answer_span(text: str | None, expected: str | None) -> None:
    assert extract_answer_span(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("  Coca   Cola ", "coca cola"), ("A\tB\nC", "a b c"), ("", ""), ("X", "x")],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


# --------------------------------------------------------------------------- ANLS

COCA = ["Coca Cola", "Coca Cola Company"]
ANLS_GOLDEN = [
    ("The Coca", COCA, 0.0),
    ("CocaCola", COCA, 0.89),
    ("Coca cola", COCA, 1.0),
    ("Cola", COCA, 0.0),
    ("Cat", COCA, 0.0),
    ("coca cola company", COCA, 1.0),
]


@pytest.mark.parametrize("rule", ["rrc_script", "paper"])
@pytest.mark.parametrize(("pred", "golds", "expected"), ANLS_GOLDEN)
def test_anls_golden_cases_hold_under_both_rules(
    pred: str, golds: list[str], expected: float, rule: str
) -> None:
    assert round(anls(pred, golds, rule=rule), 2) == expected  # type: ignore[arg-type]


ANLS_RULES_DIFFER = [
    ("abxy", ["abcd"], 0.5, 0.0),
    ("  cats  ", ["cat"], 0.875, 0.75),
    ("", [""], 1.0, 1.0),
    ("abc", [""], 0.0, 0.0),
]


@pytest.mark.parametrize(("pred", "golds", "script", "paper"), ANLS_RULES_DIFFER)
def test_anls_rules(pred: str, golds: list[str], script: float, paper: float) -> None:
    assert anls(pred, golds) == pytest.approx(script)
    assert anls(pred, golds, rule="rrc_script") == pytest.approx(script)
    assert anls(pred, golds, rule="paper") == pytest.approx(paper)


def test_anls_none_prediction_and_bad_arguments() -> None:
    assert anls(None, COCA) == 0.0
    with pytest.raises(ValueError):
        anls("x", [])
    with pytest.raises(ValueError):
        anls("x", ["x"], tau=1.5)
    with pytest.raises(ValueError):
        anls("x", ["x"], rule="other")  # type: ignore[arg-type]


def test_anls_tau_is_a_parameter() -> None:
    assert anls("abxy", ["abcd"], tau=0.6) == 0.0
    assert anls("abcx", ["abcd"], tau=0.75) == pytest.approx(0.75)


# --------------------------------------------------------------------------- accuracies


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [("A", "A", 1.0), ("a", "A", 1.0), (" B ", "B", 1.0), ("B", "A", 0.0), (None, "A", 0.0), ("", "A", 0.0)],
)
def test_choice_accuracy(pred: str | None, gold: str, expected: float) -> None:
    assert choice_accuracy(pred, gold) == expected


def test_choice_accuracy_never_counts_empty_as_correct() -> None:
    with pytest.raises(ValueError):
        choice_accuracy("", "")
    with pytest.raises(ValueError):
        choice_accuracy(None, " ")


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("Tokyo", "tokyo", 1.0),
        ("  New  York ", "new york", 1.0),
        ("Kyoto", "Tokyo", 0.0),
        (None, "x", 0.0),
        ("", "", 0.0),
    ],
)
def test_exact_match(pred: str | None, gold: str, expected: float) -> None:
    assert exact_match(pred, gold) == expected


@pytest.mark.parametrize(
    ("pred", "gold", "expected"), [(3, 3, 1.0), (0, 0, 1.0), (2, 3, 0.0), (None, 0, 0.0)]
)
def test_count_accuracy(pred: int | None, gold: int, expected: float) -> None:
    assert count_accuracy(pred, gold) == expected


@pytest.mark.parametrize(
    ("preds", "golds", "expected"),
    [
        ([3, 4], [3, 4], 0.0),
        ([1, 5], [3, 3], 2.0),
        ([None, 2], [3, 2], math.sqrt(4.5)),  # None is scored as 0
        ([0], [4], 4.0),
    ],
)
def test_rmse(preds: list[int | None], golds: list[int], expected: float) -> None:
    assert rmse(preds, golds) == pytest.approx(expected)


def test_rmse_empty_and_mismatched() -> None:
    assert math.isnan(rmse([], []))
    with pytest.raises(ValueError):
        rmse([1], [1, 2])


# --------------------------------------------------------------------------- aggregation

AGGREGATES = [
    ([1.0, 0.0, 1.0, 1.0], 0.75, 0.25, 4),  # sample std sqrt(0.25) / sqrt(4)
    ([0.5, 0.5], 0.5, 0.0, 2),
    ([1.0], 1.0, 0.0, 1),
    ([0.0, 1.0], 0.5, 0.5, 2),
]


@pytest.mark.parametrize(("values", "mean", "stderr", "n"), AGGREGATES)
def test_aggregate_by_hand(values: list[float], mean: float, stderr: float, n: int) -> None:
    result = aggregate(values)
    assert result.value == pytest.approx(mean)
    assert result.stderr == pytest.approx(stderr)
    assert result.n == n


@pytest.mark.parametrize(
    "values", [[1.0, 0.0, 1.0], [0.2, 0.9, 0.4, 0.4, 1.0], [float(i % 3) for i in range(50)]]
)
def test_aggregate_matches_lm_eval(values: list[float]) -> None:
    from lm_eval.api.metrics import mean, mean_stderr

    result = aggregate(values)
    assert result == MetricValue(value=mean(values), stderr=mean_stderr(values), n=len(values))


def test_aggregate_empty_is_nan_with_n_zero() -> None:
    result = aggregate([])
    assert math.isnan(result.value) and math.isnan(result.stderr) and result.n == 0


def test_breakdown_shape() -> None:
    rows = [
        ({"category": "relative_position"}, 1.0),
        ({"category": "direct_attributes", "size": "small"}, 1.0),
        ({"category": "direct_attributes", "size": "large"}, 0.0),
    ]
    result = breakdown(rows)
    assert list(result) == ["category", "size"]
    assert list(result["category"]) == ["direct_attributes", "relative_position"]
    assert result["category"]["direct_attributes"] == aggregate([1.0, 0.0])
    assert result["category"]["relative_position"] == MetricValue(1.0, 0.0, 1)
    assert result["size"] == {"large": MetricValue(0.0, 0.0, 1), "small": MetricValue(1.0, 0.0, 1)}
    assert breakdown([]) == {}


# --------------------------------------------------------------------------- robustness

TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="\\boxed{}()[]ABCDEabcde .:$0123456789-,\ntext answer is no", max_size=200),
)


@settings(max_examples=200, deadline=None)
@given(text=TEXT, n=st.integers(1, 5))
def test_extractors_never_raise(text: str, n: int) -> None:
    assert extract_choice(text, n) in {None, *"ABCDE"[:n]}
    assert extract_choice(text, ["Lion", "Sheep", "A cat"][: min(n, 3)]) in {None, "A", "B", "C"}
    count = extract_count(text)
    assert count is None or count >= 0
    extract_boxed(text)
    strip_latex(text)
    extract_answer_span(text)
    normalize_text(text)


@settings(max_examples=200, deadline=None)
@given(
    pred=st.one_of(st.none(), st.text(max_size=40)),
    golds=st.lists(st.text(max_size=40), min_size=1, max_size=4),
    rule=st.sampled_from(["rrc_script", "paper"]),
)
def test_anls_in_unit_interval(pred: str | None, golds: list[str], rule: str) -> None:
    assert 0.0 <= anls(pred, golds, rule=rule) <= 1.0  # type: ignore[arg-type]
