"""Table building on generated results: headline, breakdowns, tool use, reference rows, flags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.records import RunResult, TaskResult
from harness.sections import Estimate, Section
from harness_leaderboards.load import LoadedRun, assign_labels, comparability_flags, task_columns
from harness_leaderboards.reference import REPORTED_LABEL
from harness_leaderboards.tables import (
    breakdown_sections,
    headline_section,
    reference_frame,
    reference_section,
    results_frame,
    tool_section,
)


def _runs(*results: RunResult) -> list[LoadedRun]:
    paths = [Path(f"/runs/{i}/results.json") for i in range(len(results))]
    labels = assign_labels(list(zip(paths, results, strict=True)))
    return [LoadedRun(label=lab, path=p, result=r) for lab, p, r in zip(labels, paths, results, strict=True)]


def _row(section: Section, label: str) -> dict[str, Any]:
    row = next(r for r in section.rows if r[0] == label)
    return dict(zip(section.columns, row, strict=True))


def test_headline_is_model_by_task_with_stderr(make_result: Callable[..., RunResult]) -> None:
    runs = _runs(
        make_result("m:a", {"vstar": 0.8, "tallyqa": 0.5}),
        make_result("m:b", {"vstar": 0.25}),
    )
    section = headline_section(results_frame(runs))
    assert section.columns == ("model", "vstar", "tallyqa")  # the reference table's order
    assert [r[0] for r in section.rows] == ["m:a", "m:b"]
    assert _row(section, "m:a")["vstar"] == Estimate(80.0, 5.0, 100)
    assert _row(section, "m:b")["tallyqa"] is None  # not run: empty, not zero
    assert section.source == "measured"


@pytest.mark.parametrize(
    ("models", "configs", "expected"),
    [
        (["a", "b"], [{}, {}], ["a", "b"]),
        (["a", "a"], [{}, {}], ["a (0)", "a (1)"]),
        (["a", "a"], [{}, {"scoring": "pixel_reasoner"}], ["a", "a [scoring=pixel_reasoner]"]),
        (["a", "a"], [{"mode": "notool"}, {}], ["a [prompt=notool]", "a"]),
    ],
)
def test_labels_are_unique_and_say_what_differs(
    make_result: Callable[..., RunResult],
    models: list[str],
    configs: list[dict[str, str]],
    expected: list[str],
) -> None:
    runs = _runs(*(make_result(m, {"vstar": 0.5}, **c) for m, c in zip(models, configs, strict=True)))
    assert [r.label for r in runs] == expected


def test_different_task_versions_are_split_and_flagged(
    make_result: Callable[..., RunResult], make_task: Callable[..., TaskResult]
) -> None:
    old = make_result("m:old", {"vstar": make_task("vstar", 0.4, version=1), "tallyqa": 0.3})
    new = make_result("m:new", {"vstar": make_task("vstar", 0.6, version=2), "tallyqa": 0.4})
    runs = _runs(old, new)
    columns, flags = task_columns({r.label: r.result for r in runs})
    assert columns[("m:old", "vstar")] == "vstar v1"
    assert columns[("m:new", "vstar")] == "vstar v2"
    assert columns[("m:new", "tallyqa")] == "tallyqa"
    assert len(flags) == 1 and "vstar" in flags[0] and "not merged" in flags[0]
    section = headline_section(results_frame(runs))
    assert section.columns == ("model", "vstar v1", "vstar v2", "tallyqa")
    assert _row(section, "m:old")["vstar v2"] is None


def test_comparability_flags(
    make_result: Callable[..., RunResult], make_task: Callable[..., TaskResult]
) -> None:
    a = make_result("a", {"vstar": make_task("vstar", 0.5, n=10)})
    b = make_result("b", {"vstar": make_task("vstar", 0.5, n=20)}, data="jsonl:x.jsonl")
    flags = comparability_flags(_runs(a, b))
    assert any("n=10" in f and "n=20" in f for f in flags)
    assert any("different data" in f for f in flags)
    assert comparability_flags(_runs(a, a)) == []


def test_breakdowns_titles_and_orientation(
    make_result: Callable[..., RunResult], breakdown_result: Callable[..., Any]
) -> None:
    mv_tasks = {f"task_{i:02d}": 0.1 * (i % 10) for i in range(20)}
    results = {
        "a": make_result(
            "a",
            {
                "vstar": breakdown_result(
                    "vstar", {"category": {"direct_attributes": 0.9, "relative_position": 0.5}}
                ),
                "mvbench": breakdown_result("mvbench", {"task": mv_tasks}),
            },
        ),
        "b": make_result("b", {"vstar": breakdown_result("vstar", {"category": {"direct_attributes": 0.7}})}),
    }
    sections = {s.title: s for s in breakdown_sections(results)}
    vstar = sections["V* categories"]
    assert vstar.columns == ("model", "direct_attributes", "relative_position")
    assert _row(vstar, "a")["direct_attributes"] == Estimate(90.0, 10.0, 10)
    assert _row(vstar, "b")["relative_position"] is None
    mv = sections["MVBench's 20 tasks"]  # many categories: one row per category, a column per model
    assert mv.columns == ("task", "a")
    assert len(mv.rows) == 20


def test_tool_section_scales_rates_and_keeps_missing_empty(
    make_result: Callable[..., RunResult], make_task: Callable[..., TaskResult]
) -> None:
    stats = {
        "ops_per_sample": 1.25,
        "pixel_reasoning_rate": 0.5,
        "tool_error_rate": 0.1,
        "score_with_tools": 0.75,
    }
    runs = _runs(make_result("a", {"vstar": make_task("vstar", 0.5, tool_stats=stats)}))
    section = tool_section(results_frame(runs))
    row = _row(section, "a")
    assert row["task"] == "vstar"
    assert row["ops / sample"] == 1.25
    assert row["tool use %"] == 50.0
    assert row["score with tools"] == 75.0
    assert row["score without tools"] is None
    assert row["crop IoU"] is None  # no samples.jsonl: analytics undefined, not zero
    assert section.digits_of(2) == 2


def test_reference_rows_are_separate_and_labelled() -> None:
    section = reference_section()
    assert section.source == "reported"
    assert "reported by the authors" in section.title.lower()
    assert all(REPORTED_LABEL in str(r[-1]) for r in section.rows)
    rl = _row(section, "TIGER-Lab/PixelReasoner-RL-v1 (7B)")
    assert (rl["vstar"], rl["tallyqa (complex)"], rl["infovqa"], rl["mvbench"]) == (84.3, 74.0, 84.0, None)
    assert _row(section, "TIGER-Lab/PixelReasoner-WarmStart (7B)")["vstar"] == 79.0
    frame = reference_frame()
    assert set(frame["source"]) == {REPORTED_LABEL}
    assert frame.loc[frame["column"] == "infovqa", "value"].item() == pytest.approx(0.84)


def test_measured_frame_never_holds_reference_rows(make_result: Callable[..., RunResult]) -> None:
    frame = results_frame(_runs(make_result("a", {"vstar": 0.5})))
    assert set(frame["source"]) == {"measured"}
    assert list(frame["model"]) == ["a"]


def test_section_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        Section(key="k", title="t", columns=("a", "b"), rows=(("x",),))


def test_measured_and_reference_tables_share_column_order(make_result: Callable[..., RunResult]) -> None:
    from harness_leaderboards.tables import reference_section

    runs = _runs(make_result("m:a", {t: 0.5 for t in ("mvbench", "infovqa", "tallyqa", "vstar")}))
    measured = headline_section(results_frame(runs)).columns[1:]
    reference = [c.split(" ")[0] for c in reference_section().columns[1:-1]]
    assert list(measured) == reference == ["vstar", "tallyqa", "infovqa", "mvbench"]


def test_end_reason_table_counts_no_answer_and_leaves_old_runs_empty(
    make_result: Callable[..., RunResult], make_task: Callable[..., Any]
) -> None:
    from harness_leaderboards.tables import end_section, end_shares

    new = make_task("vstar", 0.5, tool_stats={"end_answer": 0.5, "end_no_answer": 0.25, "end_max_ops": 0.25,
                                              "end_max_images": 0.0, "end_context": 0.0, "end_error": 0.0})  # fmt: skip
    old = make_task("vstar", 0.5, tool_stats={"end_answer": 0.75, "end_error": 0.25})  # before no_answer
    results = {"new": make_result("m:new", {"vstar": new}), "old": make_result("m:old", {"vstar": old})}
    section = end_section(results)
    assert section.columns[2:4] == ("answered %", "no answer %")
    assert _row(section, "new")["no answer %"] == 25.0 and _row(section, "new")["answered %"] == 50.0
    assert _row(section, "old")["no answer %"] is None and _row(section, "old")["answered %"] == 75.0
    assert end_shares(results["new"]) == {
        "answer": 0.5, "no_answer": 0.25, "max_ops": 0.25, "max_images": 0.0, "context": 0.0, "error": 0.0
    }  # fmt: skip
