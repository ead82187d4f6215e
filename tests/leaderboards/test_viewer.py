"""The trajectory viewer: every sample and turn, crops linked or embedded, filters, escaping."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from harness.results import SAMPLES, SamplesWriter, read_samples
from harness_leaderboards.load import ReportError, ReportWarning
from harness_leaderboards.viewer import view


def _samples(page: str) -> list[str]:
    return re.findall(r'<details class="sample" id="([^"]+)"', page)


def test_one_page_per_run_with_every_sample(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    pages = view([str(scripted_runs["oracle"]), str(scripted_runs["random"])], tmp_path / "view")
    assert [p.name for p in pages] == ["oracle.html", "random.html"]
    assert (tmp_path / "view" / "index.html").exists()
    page = pages[0].read_text(encoding="utf-8")
    assert len(_samples(page)) == 12
    assert _samples(page)[:3] == ["infovqa/0", "infovqa/1", "infovqa/2"]  # task, then numeric id
    assert 'data-task="vstar" data-correct="1" data-tools="1"' in page
    assert "crop_image_normalized" in page and "select_frames" in page
    assert 'class="box target"' in page and 'class="box crop"' in page
    crops = re.findall(r'<img loading="lazy" src="([^"]+)" alt="[^"]*\.png"', page)
    assert len(crops) >= 12  # every sample of the oracle run shows at least one crop or frame
    for src in crops:
        assert (pages[0].parent / src).resolve().is_file(), src  # linked relative to the page
    assert "extracted: <b>" in page


def test_embed_makes_pages_self_contained(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    (page,) = view([str(scripted_runs["oracle"])], tmp_path / "view", embed=True)
    html = page.read_text(encoding="utf-8")
    srcs = re.findall(r'<img loading="lazy" src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)


def test_model_text_is_escaped(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(scripted_runs["random"], run)
    records = read_samples(run / SAMPLES)
    first = records[0]
    evil = "</pre><script>alert(1)</script><b onmouseover=x>"
    turn = replace(first.trajectory.turns[0], reply=evil)
    records[0] = replace(
        first, trajectory=replace(first.trajectory, turns=(turn, *first.trajectory.turns[1:]))
    )
    (run / SAMPLES).unlink()
    with SamplesWriter(run / SAMPLES) as writer:
        for r in records:
            writer.write(r)
    html = view([str(run)], tmp_path / "view")[0].read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "<b onmouseover" not in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_unfinished_run_without_results_is_viewable(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "unfinished"
    shutil.copytree(scripted_runs["random"], run)
    (run / "results.json").unlink()
    (page,) = view([str(run)], tmp_path / "view")
    assert len(_samples(page.read_text(encoding="utf-8"))) == 12


def test_runs_without_samples_warn_then_error(tmp_path: Path) -> None:
    with pytest.warns(ReportWarning, match="samples.jsonl: missing"), pytest.raises(ReportError):
        view([str(tmp_path / "none")], tmp_path / "view")
