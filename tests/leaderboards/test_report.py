"""Reports from run folders: robustness to bad files, outputs, escaping, plugin sections, purity."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import hookimpl
from harness.plugins import Harness, make_plugin_manager
from harness.records import RunResult
from harness.sections import Section
from harness_leaderboards.build import build_report, leaderboard
from harness_leaderboards.html import to_html
from harness_leaderboards.load import ReportError, ReportWarning, expand_runs, load_runs
from harness_leaderboards.report import to_markdown


@pytest.fixture
def harness() -> Harness:
    return Harness(make_plugin_manager(autoload=False))


def test_missing_and_corrupt_runs_are_named_and_the_rest_reported(
    scripted_runs: dict[str, Path], tmp_path: Path, harness: Harness
) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "results.json").write_text('{"results": {', encoding="utf-8")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "results.json").write_text('{"hello": 1}', encoding="utf-8")
    missing = tmp_path / "missing"
    args = [
        str(scripted_runs["oracle"]),
        str(corrupt),
        str(missing),
        str(wrong),
        str(scripted_runs["random"]),
    ]
    with pytest.warns(ReportWarning) as record:
        report = build_report(args, harness=harness)
    messages = [str(w.message) for w in record]
    assert any(str(corrupt / "results.json") in m and "corrupt" in m for m in messages)
    assert any(str(wrong / "results.json") in m for m in messages)
    assert any(str(missing / "results.json") in m and "missing" in m for m in messages)
    assert [r[0] for r in report.section("headline").rows] == ["scripted:oracle", "scripted:random"]
    assert len(report.warnings) == 3


def test_no_readable_run_is_an_error(tmp_path: Path) -> None:
    with pytest.warns(ReportWarning), pytest.raises(ReportError, match="no readable results file"):
        load_runs([str(tmp_path / "nothing")])


def test_torn_or_corrupt_samples_warn_and_keep_the_run(
    scripted_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(scripted_runs["random"], run)
    with (run / "samples.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"key": "torn')
    with pytest.warns(ReportWarning, match="torn last line"):
        loaded = load_runs([str(run)])
    assert loaded.runs[0].records is not None and len(loaded.runs[0].records) == 12
    (run / "samples.jsonl").write_text("not json\n", encoding="utf-8")
    with pytest.warns(ReportWarning, match="samples.jsonl"):
        loaded = load_runs([str(run)])
    assert loaded.runs[0].records is None


def test_globs_expand_sorted_and_unmatched_globs_warn(scripted_runs: dict[str, Path]) -> None:
    root = scripted_runs["oracle"].parent
    assert expand_runs([str(root / "*")]) == [
        root / "oracle" / "results.json",
        root / "random" / "results.json",
    ]
    with pytest.warns(ReportWarning, match="no run folder matches"):
        assert expand_runs([str(root / "zz*")]) == []


def test_leaderboard_writes_every_output(
    scripted_runs: dict[str, Path], tmp_path: Path, harness: Harness
) -> None:
    out = tmp_path / "report"
    report, files = leaderboard(
        [str(scripted_runs["oracle"]), str(scripted_runs["random"])], out, harness=harness
    )
    names = {p.relative_to(out).as_posix() for p in files}
    assert {"leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard.json"} <= names
    assert {"plots/scores.png", "plots/ops_histogram.png", "plots/score_vs_ops.png"} <= names
    assert all(p.stat().st_size > 0 for p in files)
    rows = list(csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8")))
    measured = {(r["model"], r["task"]) for r in rows if r["source"] == "measured"}
    assert measured == {
        (m, t)
        for m in ("scripted:oracle", "scripted:random")
        for t in ("infovqa", "mvbench", "tallyqa", "vstar")
    }
    assert {r["source"] for r in rows} == {"measured", "reported by the authors"}
    oracle_vstar = next(r for r in rows if r["model"] == "scripted:oracle" and r["task"] == "vstar")
    assert float(oracle_vstar["value"]) == 1.0
    assert float(oracle_vstar["crop_coverage"]) == 1.0  # the oracle zooms on the target
    data = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    keys = [s["key"] for s in data["sections"]]
    assert keys[:4] == ["runs", "headline", "reference", "tool_use"]
    assert "breakdown-vstar-category" in keys and "breakdown-mvbench-task" in keys
    assert next(s for s in data["sections"] if s["key"] == "reference")["source"] == "reported"
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "## Reported by the authors (not measured here)" in md
    assert "![Score per task per model](plots/scores.png)" in md
    assert report.notes and "test doubles" in report.notes[0]


def test_report_is_a_pure_function_of_the_files(scripted_runs: dict[str, Path], harness: Harness) -> None:
    args = [str(scripted_runs["oracle"]), str(scripted_runs["random"])]
    first, second = build_report(args, harness=harness), build_report(args, harness=harness)
    assert to_html(first) == to_html(second)
    assert to_markdown(first) == to_markdown(second)


def test_model_text_is_escaped(
    make_result: Callable[..., RunResult], write_run: Callable[[str, RunResult], Path], harness: Harness
) -> None:
    evil = 'x:<script>alert("x")</script>|<img src=x onerror=alert(1)>'
    run = write_run("evil", make_result(evil, {"vstar": 0.5}))
    with pytest.warns(ReportWarning, match="samples.jsonl"):
        report = build_report([str(run)], harness=harness)
    page = to_html(report)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "\\|&lt;img" not in page  # markdown escaping stays out of HTML
    assert 'x:<script>alert("x")</script>\\|<img' in to_markdown(report)


class _ExtraSections:
    """A third-party plugin adding one table."""

    @hookimpl
    def harness_leaderboard_sections(self, results: dict[str, RunResult]) -> list[Section]:
        rows = tuple((label, float(len(r.results))) for label, r in results.items())
        return [
            Section(key="plugin-tasks", title="Tasks per run (plugin)", columns=("model", "tasks"), rows=rows)
        ]


def test_plugins_add_sections_after_the_builtin_ones(scripted_runs: dict[str, Path]) -> None:
    harness = Harness(make_plugin_manager(autoload=False, extra=[_ExtraSections()]))
    report = build_report([str(scripted_runs["oracle"])], harness=harness)
    keys = [s.key for s in report.sections]
    assert keys[-1] == "plugin-tasks"
    assert any(k.startswith("breakdown-") for k in keys)
    assert report.section("plugin-tasks").rows == (("scripted:oracle", 4.0),)
    assert 'data-key="plugin-tasks"' in to_html(report)


def test_import_harness_does_not_import_pandas_or_matplotlib() -> None:
    code = (
        "import harness, harness.plugins, harness.cli, sys; harness.plugins.Harness().tasks; "
        "bad = [m for m in ('pandas', 'matplotlib') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
