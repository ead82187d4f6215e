"""``harness view``: one HTML page per run showing every sample's trajectory.

Per sample: the question and prompt, the original image with the target boxes (green) and the
model's crops (orange) drawn over it, then every turn — the model's text, the tool call, the
crop or frames it was shown (from ``--log_crops``), or the execution error — and finally the
extracted answer, the gold and the score. Filters (task, correct / incorrect, tool use) and
expand / collapse run in a few lines of inline JS. A sample counts as correct when its score is
at least 0.5 (accuracy 1, or an ANLS match).

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
import json
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import quote

from harness.data import MAX_IMAGE_PIXELS, cache_dir
from harness.data.confine import PathEscape, confined, within
from harness.records import Observation, Sample, Turn
from harness.run.results import CROPS, SampleRecord

from .analytics import crop_boxes, target_boxes
from .load import Loaded, ReportError, base_label, expand_runs, read_records, read_result, samples_path

CORRECT_AT = 0.5
DATA_ROOTS_ENV = "HARNESS_DATA_ROOTS"  # folders whose original images pages may show (os.pathsep-separated)
THUMB_SIDE = 720
CSP = "default-src 'none'; img-src data: file: 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 20px auto; max-width: 1100px; padding: 0 16px; color: #1d2330; }
.bar { position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #dde1e8; z-index: 2; }
.bar label { margin-right: 14px; } .bar button { margin-right: 6px; }
details.sample { border: 1px solid #dde1e8; border-radius: 6px; margin: 8px 0; padding: 4px 10px; }
details.sample > summary { cursor: pointer; font-weight: 600; }
.ok { color: #17803d; } .bad { color: #b3261e; }
.meta { color: #4a5263; font-weight: 400; margin-left: 8px; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f7f9; padding: 6px 8px; border-radius: 4px; margin: 4px 0; }
.turn { border-left: 3px solid #c4d6f5; margin: 8px 0; padding-left: 10px; }
.call { font-family: ui-monospace, monospace; font-size: 12px; color: #2a4d8f; }
.error { color: #b3261e; }
.shown img { max-height: 260px; max-width: 100%; margin: 4px 6px 0 0; border: 1px solid #dde1e8; }
.frame { position: relative; display: inline-block; max-width: 100%; }
.frame img { display: block; max-width: 100%; max-height: 420px; }
.box { position: absolute; border: 2px solid; box-sizing: border-box; min-width: 8px; min-height: 8px; }
.box.target { border-color: #17a34a; box-shadow: 0 0 0 2px #fff, 0 0 0 4px #17a34a; } .box.crop { border-color: #f08c00; border-style: dashed; }
.legend { font-size: 12px; color: #4a5263; }
footer.answer { border-top: 1px dashed #dde1e8; margin-top: 6px; padding-top: 4px; }
"""

SCRIPT = """
(function () {
  var samples = Array.prototype.slice.call(document.querySelectorAll("details.sample"));
  var task = document.getElementById("f-task"), outcome = document.getElementById("f-outcome"),
      tools = document.getElementById("f-tools"), end = document.getElementById("f-end"),
      shown = document.getElementById("shown");
  function apply() {
    var n = 0;
    samples.forEach(function (s) {
      var ok = (task.value === "" || s.dataset.task === task.value) &&
               (outcome.value === "" || s.dataset.correct === outcome.value) &&
               (tools.value === "" || s.dataset.tools === tools.value) &&
               (end.value === "" || s.dataset.end === end.value);
      s.hidden = !ok; if (ok) n++;
    });
    shown.textContent = n + " of " + samples.length + " samples";
  }
  [task, outcome, tools, end].forEach(function (el) { el.addEventListener("change", apply); });
  document.getElementById("expand").addEventListener("click", function () {
    samples.forEach(function (s) { if (!s.hidden) s.open = true; }); });
  document.getElementById("collapse").addEventListener("click", function () {
    samples.forEach(function (s) { s.open = false; }); });
  var q = new URLSearchParams(location.hash.slice(1));
  if (q.get("task") !== null) task.value = q.get("task");
  if (q.get("correct") !== null) outcome.value = q.get("correct");
  if (q.get("tools") !== null) tools.value = q.get("tools");
  if (q.get("end") !== null) end.value = q.get("end");
  if (q.get("open") === "1") samples.forEach(function (s) { s.open = true; });
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""


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
        return escape("/".join(quote(part) for part in rel.parts))

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


def _box_div(box: tuple[float, float, float, float], kind: str) -> str:
    x1, y1, x2, y2 = box
    style = f"left:{_pct(x1)};top:{_pct(y1)};width:{_pct(x2 - x1)};height:{_pct(y2 - y1)}"
    return f'<div class="box {kind}" style="{style}"></div>'


def _original(rec: SampleRecord, images: _Images) -> str:
    sample = rec.sample
    if sample.media_kind != "image" or not sample.media:
        return ""
    shown = images.original(sample)
    if shown.src is None:
        return f'<p class="legend">original image {escape(shown.why)}</p>'
    boxes = [_box_div(b, "target") for b in target_boxes(sample)]
    boxes += [_box_div(b, "crop") for b in crop_boxes(rec.trajectory)]
    legend = (
        '<p class="legend">green: annotated target · dashed orange: the model\'s crops</p>' if boxes else ""
    )
    return (
        f'<div class="frame"><img loading="lazy" src="{shown.src}" alt="original image">'
        f"{''.join(boxes)}</div>{legend}"
    )


def _observation(obs: Observation, images: _Images) -> str:
    if obs.kind == "error" or obs.error:
        return f'<div class="error">execution error: <pre>{escape(str(obs.error or obs.text))}</pre></div>'
    what = f"frames {list(obs.frames)}" if obs.kind == "frames" else f"crop {list(obs.box or ())} px"
    pics = []
    for name in obs.saved:
        shown = images.crop(name)
        pics.append(
            f'<img loading="lazy" src="{shown.src}" alt="{escape(str(name))}">'
            if shown.src
            else f'<code class="placeholder">{escape(str(name))} ({escape(shown.why)})</code>'
        )
    if not obs.saved:
        pics.append('<span class="legend">(not saved: run with --log_crops to see it)</span>')
    return f'<div class="shown"><div class="legend">{escape(obs.tool)}: {escape(what)}</div>{"".join(pics)}</div>'


def _turn(turn: Turn, images: _Images) -> str:
    parts = [f'<div class="turn"><div class="legend">turn {turn.index + 1} · model</div>']
    parts.append(f"<pre>{escape(turn.reply)}</pre>")
    if turn.tool_call is not None:
        args = json.dumps(turn.tool_call.arguments, ensure_ascii=False)
        parts.append(f'<div class="call">tool call: {escape(turn.tool_call.name)} {escape(args)}</div>')
    if turn.observation is not None:
        parts.append(_observation(turn.observation, images))
    parts.append("</div>")
    return "".join(parts)


def sample_html(rec: SampleRecord, images: _Images, *, show_system: bool = True) -> str:
    """One sample as a ``<details>`` block with data attributes for the filters."""
    s, t, sc = rec.sample, rec.trajectory, rec.score
    correct = sc.score >= CORRECT_AT
    mark = '<span class="ok">✓</span>' if correct else '<span class="bad">✗</span>'
    end = end_label(t.end_reason)
    meta = f"{sc.metric} {sc.score:.2f} · ops {t.n_ops} · errors {t.n_errors} · end: {end}"
    turns = "".join(_turn(turn, images) for turn in t.turns)
    extracted = "(none)" if sc.extracted is None else sc.extracted
    error = f'<p class="error">episode error: {escape(t.error)}</p>' if t.error else ""
    system = (
        f"<pre>{escape(t.system)}</pre>"
        if show_system
        else '<p class="legend">(system message: at the top)</p>'
    )
    return (
        f'<details class="sample" id="{escape(rec.key)}" data-task="{escape(s.task)}" '
        f'data-correct="{int(correct)}" data-tools="{int(t.n_ops > 0)}" data-end="{escape(str(t.end_reason))}">'
        f'<summary>{mark} {escape(rec.key)}<span class="meta">{escape(meta)}</span></summary>'
        f"<p><b>Question</b></p><pre>{escape(s.question)}</pre>"
        f"<details><summary>prompt as sent</summary>{system}<pre>{escape(t.prompt)}</pre></details>"
        f"{_original(rec, images)}{turns}{error}"
        f'<footer class="answer">extracted: <b>{escape(extracted)}</b> · gold: {escape(" | ".join(sc.gold))} · '
        f"score: <b>{sc.score:.3f}</b> ({escape(sc.scoring)})</footer></details>"
    )


def _unshowable(rec: SampleRecord, exc: Exception) -> str:
    """A sample whose record is malformed (a tampered or broken file): one line instead of the page failing."""
    key = escape(str(rec.key)) if isinstance(rec.sample.task, str) else "?"
    return (
        f'<details class="sample" id="{key}" data-task="{escape(str(rec.sample.task))}" data-correct="0" '
        f'data-tools="0" data-end="error"><summary><span class="bad">✗</span> {key}'
        f'<span class="meta">cannot be shown: {escape(f"{type(exc).__name__}: {exc}")}</span></summary></details>'
    )


def _options(values: list[tuple[str, str]]) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in values)


def _order(rec: SampleRecord) -> tuple[str, int, str]:
    """Task, then numeric ids in numeric order, then the rest by name."""
    sid = str(rec.sample.id)
    return (str(rec.sample.task), int(sid) if sid.isdigit() else -1, sid)


def _sample_or_note(rec: SampleRecord, images: _Images, show_system: bool) -> str:
    try:
        return sample_html(rec, images, show_system=show_system)
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong type in the file
        return _unshowable(rec, exc)


def page_html(title: str, records: list[SampleRecord], images: _Images) -> str:
    """The whole viewer page for one run."""
    tasks = sorted({str(r.sample.task) for r in records})
    ends = sorted({str(r.trajectory.end_reason) for r in records})
    bar = (
        '<div class="bar">'
        f'<label>task <select id="f-task">{_options([("", "all"), *((t, t) for t in tasks)])}</select></label>'
        f'<label>outcome <select id="f-outcome">{_options([("", "all"), ("1", "correct"), ("0", "incorrect")])}</select></label>'
        f'<label>tool use <select id="f-tools">{_options([("", "all"), ("1", "used tools"), ("0", "no tools")])}</select></label>'
        f'<label>end <select id="f-end">{_options([("", "all"), *((e, end_label(e)) for e in ends)])}</select></label>'
        '<button id="expand">expand all</button><button id="collapse">collapse all</button>'
        '<span id="shown" class="legend"></span></div>'
    )
    systems = {str(r.trajectory.system) for r in records}
    shared = len(systems) == 1  # the usual case: show the (long) system message once
    top = (
        f"<details><summary>system message (every sample)</summary><pre>{escape(systems.pop())}</pre></details>"
        if shared
        else ""
    )
    body = "\n".join(_sample_or_note(r, images, not shared) for r in sorted(records, key=_order))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{top}{bar}\n{body}\n<script>{SCRIPT}</script></body></html>\n"
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
    links = "".join(f'<li><a href="{escape(p.name)}">{escape(p.stem)}</a></li>' for p in pages)
    (out / "index.html").write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>runs</title></head><body><ul>{links}</ul></body></html>\n',
        encoding="utf-8",
    )
    return pages
