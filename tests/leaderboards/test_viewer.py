"""The trajectory viewer: every sample and turn, crops linked or embedded, filters, escaping."""

from __future__ import annotations

import base64
import io
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from harness import cli
from harness.run.results import SAMPLES, SampleRecord, SamplesWriter, read_samples
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


# --------------------------------------------------------------------------- untrusted run folders


SECRET = "TOP-SECRET-5c1e0f: this line must never reach a page"
MAGENTA = (255, 0, 255)


def _rewrite(run: Path, change: Callable[[int, SampleRecord], SampleRecord]) -> None:
    records = [change(i, r) for i, r in enumerate(read_samples(run / SAMPLES))]
    (run / SAMPLES).unlink()
    with SamplesWriter(run / SAMPLES) as writer:
        for r in records:
            writer.write(r)


def _with_saved(rec: SampleRecord, names: tuple[str, ...]) -> SampleRecord:
    """``rec`` with the first observation that saved images naming ``names`` instead."""
    turns = list(rec.trajectory.turns)
    for k, turn in enumerate(turns):
        if turn.observation is not None and turn.observation.saved:
            turns[k] = replace(turn, observation=replace(turn.observation, saved=names))
            return replace(rec, trajectory=replace(rec.trajectory, turns=tuple(turns)))
    raise AssertionError(f"{rec.key}: no saved crop to tamper with")


def _images_in(html: str, page_dir: Path) -> list[Image.Image]:
    """Every image a page shows, decoded (data: URLs and files relative to the page)."""
    out = []
    for src in _srcs(html):
        if src.startswith("data:"):
            data = base64.b64decode(src.split(",", 1)[1])
        else:
            data = (page_dir / unquote(src)).read_bytes()
        out.append(Image.open(io.BytesIO(data)).convert("RGB"))
    return out


def _srcs(html: str) -> list[str]:
    class Srcs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.found += [v for k, v in attrs if tag == "img" and k == "src" and v is not None]

    parser = Srcs()
    parser.feed(html)
    return parser.found


def _is_magenta(img: Image.Image) -> bool:
    r, g, b = img.resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    return r > 200 and g < 60 and b > 200


@pytest.fixture
def tampered_run(scripted_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the oracle run whose samples.jsonl points out of the run folder six ways (and
    names one crop that is simply missing)."""
    monkeypatch.delenv("HARNESS_DATA_ROOTS", raising=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET)
    Image.new("RGB", (64, 64), MAGENTA).save(outside / "private.png")
    run = tmp_path / "runs" / "tampered"
    shutil.copytree(scripted_runs["oracle"], run)
    (run / "crops" / "link.png").symlink_to(outside / "private.png")
    evil = {
        0: ("../../../outside/passwd", "x.png"),  # ../ out of crops/ and of the run
        1: (str(outside / "passwd"),),  # absolute
        2: ("link.png",),  # a symlink inside crops/ pointing outside
        3: ("../../../" * 8 + "etc/passwd",),
    }

    records = read_samples(run / SAMPLES)
    escaping, untrusted = [i for i, r in enumerate(records) if i > 3 and r.sample.media_kind == "image"][:2]

    def change(i: int, rec: SampleRecord) -> SampleRecord:
        if i in evil:
            return _with_saved(rec, evil[i])
        if i == escaping:  # an original escaping its data root
            media = ("../" * 12 + str(outside / "private.png").lstrip("/"),)
            return replace(rec, sample=replace(rec.sample, media=media))
        if i == untrusted:  # a data root that is not a trusted one
            return replace(rec, sample=replace(rec.sample, root=str(outside), media=("private.png",)))
        return rec

    _rewrite(run, change)
    return run


def test_embed_of_a_tampered_run_embeds_nothing_from_outside(
    tampered_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "view"
    assert cli.main(["view", str(tampered_run), "--out", str(out), "--embed"]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "refused" in line]
    assert len(warned) == 1, err  # said once
    assert warned[0].startswith("harness view: warning: refused 6 file reference(s)"), warned[0]
    assert "4 crop name(s)" in warned[0] and "1 original image path(s)" in warned[0]
    assert "1 original image(s) outside the trusted data roots" in warned[0]
    html = (out / "tampered.html").read_text(encoding="utf-8")
    secret = SECRET.encode()
    for shift in range(3):  # base64 of the secret at every alignment
        assert base64.b64encode(secret[shift:])[4:40].decode() not in html
    assert SECRET not in html
    private = base64.b64encode((tmp_path / "outside" / "private.png").read_bytes())[8:60].decode()
    assert private not in html
    shown = _images_in(html, out)
    assert shown and all(src.startswith("data:image/") for src in _srcs(html))
    assert not any(_is_magenta(img) for img in shown)
    assert html.count("(refused: leads out of the run folder)") == 4
    assert "x.png (missing)" in html
    assert "original image refused: leads out of the sample&#39;s data root" in html
    assert "is not in a trusted data root (HARNESS_DATA_ROOTS)" in html
    assert "set HARNESS_DATA_ROOTS=DIR" in warned[0]


def test_linked_view_of_a_tampered_run_copies_nothing_from_outside(
    tampered_run: Path, tmp_path: Path
) -> None:
    with pytest.warns(ReportWarning, match=r"refused 6 file reference"):
        (page,) = view([str(tampered_run)], tmp_path / "view")
    html = page.read_text(encoding="utf-8")
    for src in _srcs(html):
        assert not src.startswith(("/", "file:", "data:")) and ".." not in src, src
    for path in (tmp_path / "view").rglob("*"):
        assert not path.is_symlink(), path
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert not any(_is_magenta(img) for img in _images_in(html, page.parent))


def test_trusted_data_roots_are_the_users_choice(
    tampered_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.warns(
        ReportWarning, match=r"refused 5 file reference.*: 4 crop name.*1 original image path\(s\)"
    ):
        (page,) = view([str(tampered_run)], tmp_path / "view", data_roots=[tmp_path / "outside"])
    html = page.read_text(encoding="utf-8")
    assert sum(_is_magenta(img) for img in _images_in(html, page.parent)) == 1  # the trusted original
    assert "is not in a trusted data root" not in html
    monkeypatch.setenv("HARNESS_DATA_ROOTS", f"{tmp_path / 'nowhere'}:{tmp_path / 'outside'}")
    assert cli.main(["view", str(tampered_run), "--out", str(tmp_path / "cli"), "--embed"]) == 0
    assert "refused 5 file reference(s)" in capsys.readouterr().err
    html = (tmp_path / "cli" / "tampered.html").read_text(encoding="utf-8")
    assert sum(_is_magenta(img) for img in _images_in(html, tmp_path)) == 1


def test_a_moved_view_folder_still_shows_every_image(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(scripted_runs["oracle"], run)
    (page,) = view([str(run)], tmp_path / "view")
    shutil.rmtree(run)  # the run folder is gone: the view must not need it
    moved = tmp_path / "elsewhere" / "deeper" / "shared-view"
    shutil.move(tmp_path / "view", moved)
    html = (moved / page.name).read_text(encoding="utf-8")
    srcs = _srcs(html)
    originals = [s for s in srcs if "/originals/" in s]
    crops = [s for s in srcs if "/crops/" in s]
    assert len(originals) >= 6 and len(crops) >= 12, srcs  # the image tasks' originals, every crop
    assert len(originals) + len(crops) == len(srcs)
    for src in srcs:
        assert not src.startswith(("/", "file:", "data:")) and ".." not in src, src
        assert (moved / unquote(src)).is_file(), src
    for src in originals:  # downscaled JPEG copies
        with Image.open(moved / unquote(src)) as img:
            assert img.format == "JPEG" and max(img.size) <= 720
    assert ".cache" not in html.split("<body>", 1)[1].split("<h1>", 1)[1].split("</h1>", 1)[1]


def test_end_reasons_are_labelled_and_escaped(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(scripted_runs["random"], run)
    reasons = {0: "no_answer", 1: "<b>odd</b>"}

    def change(i: int, rec: SampleRecord) -> SampleRecord:
        if i not in reasons:
            return rec
        return replace(rec, trajectory=replace(rec.trajectory, end_reason=reasons[i]))  # type: ignore[arg-type]

    _rewrite(run, change)
    html = view([str(run)], tmp_path / "view")[0].read_text(encoding="utf-8")
    assert "end: replied without an extractable answer" in html and 'data-end="no_answer"' in html
    assert "end: answered" in html and 'data-end="answer"' in html
    assert "<b>odd</b>" not in html and "end: &lt;b&gt;odd&lt;/b&gt;" in html
    assert '<option value="no_answer">replied without an extractable answer</option>' in html
