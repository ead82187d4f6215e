"""The page templates: shipped as package data, autoescaped, strict; hostile text in every
field a template renders stays text."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path

import jinja2
import pytest

from harness.records import ToolCall
from harness.run.results import SAMPLES, SamplesWriter, read_samples
from harness.sections import Estimate, Section
from harness_leaderboards.html import section_html, to_html
from harness_leaderboards.pages import TEMPLATES, environment, render
from harness_leaderboards.report import Plot, Report
from harness_leaderboards.viewer import view

ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;"
ESCAPED = (
    "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;"
)


def test_every_template_file_ships_as_package_data() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # tomllib: Python 3.11+
    line = re.search(r"^harness_leaderboards = (\[.*\])$", pyproject, re.M)
    assert line, "pyproject.toml has no package-data line for harness_leaderboards"
    patterns = json.loads(line.group(1))
    files = [p.relative_to(TEMPLATES.parent).as_posix() for p in TEMPLATES.iterdir()]
    assert {"templates/report.html.j2", "templates/viewer.html.j2", "templates/index.html.j2"} <= set(files)
    assert [f for f in files if not any(fnmatch(f, p) for p in patterns)] == []


def test_html_templates_escape_and_undefined_names_raise() -> None:
    env = environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert callable(env.autoescape) and env.autoescape("page.html.j2") and env.autoescape("viewer.html.j2")
    with pytest.raises(jinja2.UndefinedError):
        render("index.html.j2")  # no pages given


def test_every_report_field_is_escaped() -> None:
    section = Section(
        key=EVIL,
        title=EVIL,
        columns=("model", EVIL),
        rows=((EVIL, Estimate(0.5, 0.1, 3)), (EVIL, None)),
        note=EVIL,
    )
    reported = replace(section, key="paper", source="reported")
    png = _png()
    plot = Plot(key=EVIL, title=EVIL, png=png, caption=EVIL, after=EVIL)
    report = Report(
        title=EVIL,
        sections=(section, reported),
        plots=(plot,),
        warnings=(EVIL,),
        flags=(EVIL,),
        notes=(EVIL,),
    )
    page = to_html(report)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("<script>") == 1  # the page's own script, nothing from the report
    # a section: id, title, note, table key, column, and per row its label, sort key and text
    assert section_html(section).count(ESCAPED) == 5 + 2 * 3
    # the page: title twice, note, flag, warning; both sections (the second's id and table key
    # are "paper"); the figure's id, alt text, key and caption
    assert page.count(ESCAPED) == 5 + 11 + 9 + 4
    assert '<span class="badge">reported by the authors</span>' in section_html(reported)


def test_every_viewer_field_is_escaped(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(scripted_runs["oracle"], run)
    records = read_samples(run / SAMPLES)
    rec = next(r for r in records if any(t.tool_call for t in r.trajectory.turns))
    k = next(i for i, t in enumerate(rec.trajectory.turns) if t.tool_call is not None)
    turns = list(rec.trajectory.turns)
    turns[k] = replace(turns[k], tool_call=ToolCall(name=EVIL, arguments={"x": EVIL}))
    hostile = replace(
        rec,
        sample=replace(rec.sample, question=EVIL),
        trajectory=replace(rec.trajectory, turns=tuple(turns), prompt=EVIL, system=EVIL, error=EVIL),
        score=replace(rec.score, extracted=EVIL, gold=(EVIL,), scoring=EVIL, metric=EVIL),
    )
    records = [hostile if r is rec else r for r in records]
    (run / SAMPLES).unlink()
    with SamplesWriter(run / SAMPLES) as writer:
        for r in records:
            writer.write(r)
    html = view([str(run)], tmp_path / "view")[0].read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("<script>") == 1
    # question, prompt, system (its own, as the samples now differ), error, extracted, gold,
    # scoring, metric, tool name (the arguments are JSON, escaped once more)
    assert len(re.findall(re.escape(ESCAPED), html)) >= 9


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="PNG")
    return buf.getvalue()
