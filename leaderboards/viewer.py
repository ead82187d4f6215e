"""``harness view``: one HTML page per run showing every sample's trajectory.

Per sample: the question and prompt, the original image with the target boxes (green) and the
model's crops (orange) drawn over it, then every turn — the model's text, the tool call, the
crop or frames it was shown (from ``--log_crops``), or the execution error — and finally the
extracted answer, the gold and the score. Filters (task, correct / incorrect, tool use) and
expand / collapse run in a few lines of inline JS. The markup is ``templates/viewer.html.j2``
and ``viewer_parts.html.j2`` (autoescaped; ``viewer.css`` and ``viewer.js`` beside them). A
sample counts as correct when its score is at least 0.5 (accuracy 1, or an ANLS match).

Images are copied next to the page, into ``<page>_files/`` (crops as saved; originals as JPEG
copies downscaled to at most 720 px a side) and linked relative to it, so a view folder can be
moved or shared whole; ``embed=True`` puts the same images into the page as ``data:`` URLs
instead, making it one self-contained file. All model and dataset text is HTML-escaped.

Run folders are untrusted (they are shared, and ``samples.jsonl`` is plain text): a ``saved``
crop name must resolve, symlinks included, inside the run folder's ``crops/``; an original
image inside its sample's data root, and that root inside a trusted one (the harness cache,
the run folder, or a folder the user names in ``$HARNESS_DATA_ROOTS``). Anything else is never read: the
page shows a placeholder and one warning says how many references were refused. Originals are
always decoded and re-encoded, so only pixels of a real image can reach a page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from harness.data import MAX_IMAGE_PIXELS, cache_dir
from harness.data.confine import PathEscape, confined, within
from harness.records import Sample
from harness.run.results import CROPS, SampleRecord

from .analytics import crop_boxes, target_boxes
from .load import Loaded, ReportError, base_label, expand_runs, read_records, read_result, samples_path
from .pages import macros, render

CORRECT_AT = 0.5
DATA_ROOTS_ENV = "HARNESS_DATA_ROOTS"  # folders whose original images pages may show (os.pathsep-separated)
THUMB_SIDE = 720
TEMPLATE = "viewer.html.j2"  # with viewer.css and viewer.js beside it
PARTS = "viewer_parts.html.j2"  # its macros: one sample, one that cannot be shown

END_LABELS = {
    "answer": "answered",
    "no_answer": "replied without an extractable answer",
    "max_ops": "stopped at the tool-call limit",
    "max_images": "stopped at the image limit",
    "context": "stopped: context full",
    "error": "error",
}


def end_label(reason: object) -> str:
    """What the page says about an episode's end reason (an unknown reason is shown as recorded)."""
    return END_LABELS.get(str(reason), str(reason))


@dataclass(frozen=True)
class Shown:
    """An image reference as the page shows it: an ``src``, or why there is none."""

    src: str | None
    why: str = ""


@dataclass
class Refused:
    """File references a run folder made that the viewer did not follow (counted for one warning)."""

    crops: int = 0  # a saved name that leads out of the run's crops/ folder
    originals: int = 0  # an original image path that leads out of its sample's data root
    untrusted: int = 0  # an original whose data root is not a trusted one

    def message(self, roots: Sequence[Path]) -> str | None:
        parts = []
        if self.crops:
            parts.append(f"{self.crops} crop name(s) leading out of the run folder's crops/")
        if self.originals:
            parts.append(f"{self.originals} original image path(s) leading out of their sample's data root")
        if self.untrusted:
            parts.append(
                f"{self.untrusted} original image(s) outside the trusted data roots "
                f"({', '.join(str(r) for r in roots)}, and each run folder; to show them, set "
                f"{DATA_ROOTS_ENV}=DIR[{os.pathsep}DIR...] to their data folders)"
            )
        if not parts:
            return None
        total = self.crops + self.originals + self.untrusted
        return f"refused {total} file reference(s) from samples.jsonl (shown as placeholders): " + "; ".join(
            parts
        )


class _Images:
    """Turns the files a run's records name into ``src`` values, confined to where they may be.

    Crops must resolve (symlinks included) inside the run folder's ``crops/``; originals inside
    their sample's data root, and that root inside a trusted one (the harness cache, the run
    folder, ``data_roots``). Without ``embed`` the files are copied next to the page
    (``<page>_files/crops/`` as saved, ``<page>_files/originals/`` as downscaled JPEGs) and linked
    relative to it, so a view folder can be moved or shared whole; with ``embed`` they become
    ``data:`` URLs. Originals are always decoded and re-encoded, never copied as bytes.
    """

    def __init__(self, out: Path, embed: bool, data_roots: Sequence[Path] = ()) -> None:
        self.out = out
        self.embed = embed
        self.roots = [cache_dir(), *data_roots]
        self.refused = Refused()
        self.run = Path(".")
        self.files = out / "files"
        self._done: dict[Path, str] = {}

    def start_page(self, run: Path, page: Path) -> None:
        """Images from here on belong to the run folder ``run``, shown on ``page``."""
        self.run, self.files = run, page.with_name(f"{page.stem}_files")
        self._done = {}

    def _link(self, target: Path) -> str:
        rel = target.relative_to(self.out)
        return "/".join(quote(part) for part in rel.parts)  # percent-encoded: nothing left to escape

    def crop(self, name: object) -> Shown:
        if not isinstance(name, str) or not name:
            self.refused.crops += 1
            return Shown(None, "refused: not a file name")
        try:
            crops = confined(self.run, CROPS)
            path = confined(crops, name)
        except PathEscape:
            self.refused.crops += 1
            return Shown(None, "refused: leads out of the run folder")
        if not path.is_file():
            return Shown(None, "missing")
        if path in self._done:
            return Shown(self._done[path])
        if self.embed:
            mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
            src = f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        else:
            target = self.files / CROPS / path.relative_to(crops)
            _copy_if_changed(path, target)
            src = self._link(target)
        self._done[path] = src
        return Shown(src)

    def original(self, sample: Sample) -> Shown:
        rel = sample.media[0]
        base = Path(sample.root) if isinstance(sample.root, str) and sample.root else self.run
        try:
            if not isinstance(rel, str):
                raise PathEscape(f"media[0] is not a path: {rel!r}")
            path = confined(base, rel)
        except PathEscape:
            self.refused.originals += 1
            return Shown(None, "refused: leads out of the sample's data root")
        if not within(path, [self.run, *self.roots]):
            self.refused.untrusted += 1
            return Shown(None, f"not shown: {path.parent} is not in a trusted data root ({DATA_ROOTS_ENV})")
        if not path.is_file():
            return Shown(None, f"not found: {path}")
        if path in self._done:
            return Shown(self._done[path])
        try:
            data = _thumbnail(path)
        except (OSError, ValueError, SyntaxError) as exc:
            return Shown(None, f"cannot decode {path}: {exc}")
        if self.embed:
            src = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        else:
            digest = hashlib.sha256(str(path).encode("utf-8", "surrogatepass")).hexdigest()[:20]
            target = self.files / "originals" / f"{digest}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            src = self._link(target)
        self._done[path] = src
        return Shown(src)


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.is_file():
        a, b = src.stat(), dst.stat()
        if a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns:
            return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _thumbnail(path: Path) -> bytes:
    """A JPEG of at most :data:`THUMB_SIDE` px a side; the pixel count is checked before decoding."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise ValueError(str(exc)) from None
    with opened:
        if opened.width * opened.height > MAX_IMAGE_PIXELS:
            raise ValueError(f"{opened.width}x{opened.height} exceeds {MAX_IMAGE_PIXELS} pixels")
        opened.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
        thumb = opened.convert("RGB")
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _pct(v: float) -> str:
    return f"{100.0 * min(max(v, 0.0), 1.0):.3f}%"


def _box(box: tuple[float, float, float, float], kind: str) -> tuple[str, str]:
    """A box as the page draws it: its kind (``target`` or ``crop``) and its CSS position."""
    x1, y1, x2, y2 = box
    return kind, f"left:{_pct(x1)};top:{_pct(y1)};width:{_pct(x2 - x1)};height:{_pct(y2 - y1)}"


def _macros() -> Any:
    return macros(PARTS)


def sample_html(rec: SampleRecord, images: _Images, *, show_system: bool = True) -> str:
    """One sample as a ``<details>`` block with data attributes for the filters.

    The images it shows are resolved (and copied, or embedded) here, in page order: the
    original, then each turn's crops or frames; the markup is the template's ``sample`` macro.
    """
    s, t = rec.sample, rec.trajectory
    correct = rec.score.score >= CORRECT_AT
    shown, boxes = None, []
    if s.media_kind == "image" and s.media:
        shown = images.original(s)
        if shown.src is not None:
            boxes = [_box(b, "target") for b in target_boxes(s)] + [_box(b, "crop") for b in crop_boxes(t)]
    pics = []
    for turn in t.turns:
        obs = turn.observation
        resolved = obs is not None and obs.kind != "error" and not obs.error
        pics.append(
            [(str(name), images.crop(name)) for name in obs.saved] if obs is not None and resolved else []
        )
    end = end_label(t.end_reason)
    return str(_macros().sample(rec, correct, end, shown, boxes, pics, show_system))


def _unshowable(rec: SampleRecord, exc: Exception) -> str:
    """A sample whose record is malformed (a tampered or broken file): one line instead of the page failing."""
    key = str(rec.key) if isinstance(rec.sample.task, str) else "?"
    return str(_macros().unshowable(key, str(rec.sample.task), f"{type(exc).__name__}: {exc}"))


def _order(rec: SampleRecord) -> tuple[str, int, str]:
    """Task, then numeric ids in numeric order, then the rest by name."""
    sid = str(rec.sample.id)
    return (str(rec.sample.task), int(sid) if sid.isdigit() else -1, sid)


def _sample_or_note(rec: SampleRecord, images: _Images, show_system: bool) -> Markup:
    try:
        return Markup(sample_html(rec, images, show_system=show_system))
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong type in the file
        return Markup(_unshowable(rec, exc))


def page_html(title: str, records: list[SampleRecord], images: _Images) -> str:
    """The whole viewer page for one run."""
    tasks = sorted({str(r.sample.task) for r in records})
    ends = sorted({str(r.trajectory.end_reason) for r in records})
    systems = {str(r.trajectory.system) for r in records}
    shared = len(systems) == 1  # the usual case: show the (long) system message once
    return render(
        TEMPLATE,
        title=title,
        system=systems.pop() if shared else None,
        tasks=[(t, t) for t in tasks],
        ends=[(e, end_label(e)) for e in ends],
        samples=[_sample_or_note(r, images, not shared) for r in sorted(records, key=_order)],
    )


def _page_name(folder: Path, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", folder.resolve().name) or "run"
    name, n = base, 2
    while name in used:
        name, n = f"{base}-{n}", n + 1
    used.add(name)
    return f"{name}.html"


def view(
    run_args: list[str], out: Path, *, embed: bool = False, data_roots: Sequence[Path] | None = None
) -> list[Path]:
    """Write one page per run (and ``index.html`` linking them); return the page paths.

    Images are copied under ``out`` (or embedded); a file reference that leads out of the run
    folder, out of a sample's data root, or into a data root that is neither the harness cache,
    the run folder nor one of ``data_roots`` is not followed: the page shows a placeholder and
    one :class:`ReportWarning` says how many were refused. ``data_roots`` defaults to the
    folders in ``$HARNESS_DATA_ROOTS`` (separated by ``os.pathsep``).
    """
    if data_roots is None:
        data_roots = [Path(p) for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p]
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} exists and is not a folder")
    loaded = Loaded()
    images = _Images(out, embed, data_roots)
    pages: list[Path] = []
    used: set[str] = set()
    for path in expand_runs(run_args, loaded):
        records = read_records(samples_path(path), loaded)
        if records is None:
            continue  # warned about, naming the file
        try:  # an unfinished run has no results file; its samples are still worth seeing
            label = base_label(read_result(path))
        except (OSError, UnicodeDecodeError, ValueError):
            label = path.parent.name
        out.mkdir(parents=True, exist_ok=True)
        page = out / _page_name(path.parent, used)
        images.start_page(path.parent, page)
        title = f"{label} — {samples_path(path)}"
        page.write_text(page_html(title, list(records), images), encoding="utf-8")
        pages.append(page)
    note = images.refused.message(images.roots)
    if note is not None:
        loaded.warn(note)
    if not pages:
        raise ReportError("no readable samples.jsonl among the runs given")
    (out / "index.html").write_text(render("index.html.j2", pages=pages), encoding="utf-8")
    return pages
