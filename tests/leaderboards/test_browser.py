"""The HTML pages in headless Chromium: screenshot, table rows through the DOM after the JS ran.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with the reason when it is absent.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from harness.plugins import Harness, make_plugin_manager
from harness_leaderboards.build import leaderboard
from harness_leaderboards.viewer import view

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(tmp_path: Path, url: str, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    proc = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def rows(dom: str, table_key: str) -> list[str]:
    """The ``data-label`` of each row of one table, in DOM order."""
    table = re.search(rf'<table class="sortable" data-key="{re.escape(table_key)}".*?</table>', dom, re.S)
    assert table, f"no table {table_key}"
    return re.findall(r'<tr class="\w+" data-source="\w+" data-label="([^"]*)"', table.group(0))


@pytest.fixture(scope="module")
def report_page(scripted_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    harness = Harness(make_plugin_manager(autoload=False))
    leaderboard([str(scripted_runs["oracle"]), str(scripted_runs["random"])], out, harness=harness)
    return out / "leaderboard.html"


@pytest.fixture(scope="module")
def three_run_page(
    scripted_runs: dict[str, Path], tiny_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An oracle, a random and a tiny-model run (the tiny one has only two of the four tasks)."""
    out = tmp_path_factory.mktemp("report3")
    runs = [str(scripted_runs["oracle"]), str(scripted_runs["random"]), str(tiny_run)]
    leaderboard(runs, out, harness=Harness(make_plugin_manager(autoload=False)))
    return out / "leaderboard.html"


def test_every_plot_labels_every_run_and_tables_fit(three_run_page: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, three_run_page.as_uri(), "--window-size=1400,3000", "--dump-dom")
    assert re.search(r'<body[^>]*data-ready="1"', dom)
    labels = rows(dom, "headline")
    assert labels == ["scripted:oracle", "scripted:random", "hf:@tiny"]
    figures = re.findall(
        r'<figure id="plot-(\w+)" data-labels="([^"]*)"><img src="data:image/png;base64,', dom
    )
    assert {key for key, _ in figures} == {"scores", "ops_histogram", "score_vs_ops", "end_reasons"}
    for key, shown in figures:
        named = json.loads(html.unescape(shown))
        assert all(label in named for label in labels), (key, named)
    tables = re.findall(r'<table class="sortable" data-key="([^"]+)"[^>]*data-fits="(\d)"', dom)
    assert tables and all(fits == "1" for _, fits in tables), tables
    created = re.search(r'data-key="runs".*?</table>', dom, re.S)
    assert created and "created" in created.group(0)


def test_leaderboard_screenshot(report_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "leaderboard.png"
    chromium(tmp_path, report_page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2400")
    assert shot.exists() and shot.stat().st_size > 20_000
    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        colours = im.convert("RGB").getcolors(maxcolors=100_000)
        assert colours is None or len(colours) > 200  # text, tables and plots, not a blank page


def test_leaderboard_dom_after_the_script_ran(report_page: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, report_page.as_uri(), "--dump-dom")
    assert re.search(r'<body[^>]*data-ready="1"', dom), "the inline script did not run"
    tables = re.findall(r"<table [^>]*>", dom)
    assert tables and all('data-sortable="ready"' in t for t in tables)
    assert rows(dom, "headline") == ["scripted:oracle", "scripted:random"]
    reference = rows(dom, "reference")
    assert reference == ["TIGER-Lab/PixelReasoner-RL-v1 (7B)", "TIGER-Lab/PixelReasoner-WarmStart (7B)"]
    assert dom.count('<tr class="reported" data-source="reported"') == 2
    assert dom.count('<span class="badge">reported by the authors</span>') == 2
    assert "scripted:oracle" not in re.search(r'data-key="reference".*?</table>', dom, re.S).group(0)  # type: ignore[union-attr]
    plots = re.findall(r'<img src="(data:image/png;base64,[^"]{100,})" alt="([^"]+)" data-plot="(\w+)"', dom)
    assert {p[2] for p in plots} == {"scores", "ops_histogram", "score_vs_ops", "end_reasons"}


@pytest.mark.parametrize(
    ("fragment", "expected", "state"),
    [
        ("#sort=headline,1", ["scripted:random", "scripted:oracle"], "1,asc"),  # infovqa: 0 < 100
        ("#sort=headline,1,desc", ["scripted:oracle", "scripted:random"], "1,desc"),
    ],
)
def test_tables_sort(
    report_page: Path, tmp_path: Path, fragment: str, expected: list[str], state: str
) -> None:
    dom = chromium(tmp_path, report_page.as_uri() + fragment, "--dump-dom")
    assert rows(dom, "headline") == expected
    assert f'data-sorted="{state}"' in dom


def test_viewer_filters(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    (page,) = view([str(scripted_runs["random"])], tmp_path / "view")
    dom = chromium(tmp_path, page.as_uri() + "#task=vstar&correct=0", "--dump-dom")
    assert re.search(r'<body[^>]*data-ready="1"', dom)
    samples = re.findall(
        r'<details class="sample" id="([^"]+)" data-task="(\w+)" data-correct="(\d)"[^>]*?( hidden="")?>', dom
    )
    assert len(samples) == 12
    shown = [key for key, task, correct, hidden in samples if not hidden]
    assert all(key.startswith("vstar/") for key in shown)
    expected = [key for key, task, correct, _ in samples if task == "vstar" and correct == "0"]
    assert expected and shown == expected
    assert f"{len(expected)} of 12 samples" in dom
