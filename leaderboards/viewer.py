"""``harness view``: one HTML page per run showing every sample's trajectory.

Per sample: the question and prompt, the original image with the target boxes (green) and the
model's crops (orange) drawn over it, then every turn — the model's text, the tool call, the
crop or frames it was shown (from ``--log_crops``), or the execution error — and finally the
extracted answer, the gold and the score. Filters (task, correct / incorrect, tool use) and
expand / collapse run in a few lines of inline JS. A sample counts as correct when its score is
at least 0.5 (accuracy 1, or an ANLS match).

Images are linked relative to the page (crops under the run folder, originals where the
sample's ``root`` says) so pages stay small; ``embed=True`` puts them into the page as
``data:`` URLs instead (crops as saved; originals downscaled), making it self-contained. All
model and dataset text is HTML-escaped.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from html import escape
from pathlib import Path
from urllib.parse import quote

from harness.records import Observation, Turn
from harness.results import CROPS, SampleRecord

from .analytics import crop_boxes, target_boxes
from .load import Loaded, ReportError, base_label, expand_runs, read_records, read_result, samples_path

CORRECT_AT = 0.5
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
      tools = document.getElementById("f-tools"), shown = document.getElementById("shown");
  function apply() {
    var n = 0;
    samples.forEach(function (s) {
      var ok = (task.value === "" || s.dataset.task === task.value) &&
               (outcome.value === "" || s.dataset.correct === outcome.value) &&
               (tools.value === "" || s.dataset.tools === tools.value);
      s.hidden = !ok; if (ok) n++;
    });
    shown.textContent = n + " of " + samples.length + " samples";
  }
  [task, outcome, tools].forEach(function (el) { el.addEventListener("change", apply); });
  document.getElementById("expand").addEventListener("click", function () {
    samples.forEach(function (s) { if (!s.hidden) s.open = true; }); });
  document.getElementById("collapse").addEventListener("click", function () {
    samples.forEach(function (s) { s.open = false; }); });
  var q = new URLSearchParams(location.hash.slice(1));
  if (q.get("task") !== null) task.value = q.get("task");
  if (q.get("correct") !== null) outcome.value = q.get("correct");
  if (q.get("tools") !== null) tools.value = q.get("tools");
  if (q.get("open") === "1") samples.forEach(function (s) { s.open = true; });
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""


class _Images:
    """Turns an image file into an ``src``: a path relative to the page, or a data: URL."""

    def __init__(self, page_dir: Path, embed: bool) -> None:
        self.page_dir = page_dir
        self.embed = embed

    def src(self, path: Path, *, thumbnail: bool = False) -> str | None:
        if not path.is_file():
            return None
        if not self.embed:
            rel = os.path.relpath(path.resolve(), self.page_dir.resolve())
            return escape("/".join(quote(part) for part in Path(rel).parts))
        if not thumbnail:
            mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        from PIL import Image

        with Image.open(path) as opened:
            thumb = opened.convert("RGB")
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buf = io.BytesIO()
        thumb.save(buf, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
    path = Path(sample.root, sample.media[0]) if sample.root else Path(sample.media[0])
    src = images.src(path, thumbnail=True)
    if src is None:
        return f'<p class="legend">original image not found: {escape(str(path))}</p>'
    boxes = [_box_div(b, "target") for b in target_boxes(sample)]
    boxes += [_box_div(b, "crop") for b in crop_boxes(rec.trajectory)]
    legend = (
        '<p class="legend">green: annotated target · dashed orange: the model\'s crops</p>' if boxes else ""
    )
    return f'<div class="frame"><img loading="lazy" src="{src}" alt="original image">{"".join(boxes)}</div>{legend}'


def _observation(obs: Observation, crops_dir: Path, images: _Images) -> str:
    if obs.kind == "error" or obs.error:
        return f'<div class="error">execution error: <pre>{escape(obs.error or obs.text)}</pre></div>'
    what = f"frames {list(obs.frames)}" if obs.kind == "frames" else f"crop {list(obs.box or ())} px"
    pics = []
    for name in obs.saved:
        src = images.src(crops_dir / name)
        pics.append(
            f'<img loading="lazy" src="{src}" alt="{escape(name)}">'
            if src
            else f"<code>{escape(name)} (missing)</code>"
        )
    if not obs.saved:
        pics.append('<span class="legend">(not saved: run with --log_crops to see it)</span>')
    return f'<div class="shown"><div class="legend">{escape(obs.tool)}: {escape(what)}</div>{"".join(pics)}</div>'


def _turn(turn: Turn, crops_dir: Path, images: _Images) -> str:
    parts = [f'<div class="turn"><div class="legend">turn {turn.index + 1} · model</div>']
    parts.append(f"<pre>{escape(turn.reply)}</pre>")
    if turn.tool_call is not None:
        args = json.dumps(turn.tool_call.arguments, ensure_ascii=False)
        parts.append(f'<div class="call">tool call: {escape(turn.tool_call.name)} {escape(args)}</div>')
    if turn.observation is not None:
        parts.append(_observation(turn.observation, crops_dir, images))
    parts.append("</div>")
    return "".join(parts)


def sample_html(rec: SampleRecord, crops_dir: Path, images: _Images, *, show_system: bool = True) -> str:
    """One sample as a ``<details>`` block with data attributes for the filters."""
    s, t, sc = rec.sample, rec.trajectory, rec.score
    correct = sc.score >= CORRECT_AT
    mark = '<span class="ok">✓</span>' if correct else '<span class="bad">✗</span>'
    meta = f"{sc.metric} {sc.score:.2f} · ops {t.n_ops} · errors {t.n_errors} · end {t.end_reason}"
    turns = "".join(_turn(turn, crops_dir, images) for turn in t.turns)
    extracted = "(none)" if sc.extracted is None else sc.extracted
    error = f'<p class="error">episode error: {escape(t.error)}</p>' if t.error else ""
    system = (
        f"<pre>{escape(t.system)}</pre>"
        if show_system
        else '<p class="legend">(system message: at the top)</p>'
    )
    return (
        f'<details class="sample" id="{escape(rec.key)}" data-task="{escape(s.task)}" '
        f'data-correct="{int(correct)}" data-tools="{int(t.n_ops > 0)}">'
        f'<summary>{mark} {escape(rec.key)}<span class="meta">{escape(meta)}</span></summary>'
        f"<p><b>Question</b></p><pre>{escape(s.question)}</pre>"
        f"<details><summary>prompt as sent</summary>{system}<pre>{escape(t.prompt)}</pre></details>"
        f"{_original(rec, images)}{turns}{error}"
        f'<footer class="answer">extracted: <b>{escape(extracted)}</b> · gold: {escape(" | ".join(sc.gold))} · '
        f"score: <b>{sc.score:.3f}</b> ({escape(sc.scoring)})</footer></details>"
    )


def _options(values: list[tuple[str, str]]) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in values)


def _order(rec: SampleRecord) -> tuple[str, int, str]:
    """Task, then numeric ids in numeric order, then the rest by name."""
    sid = rec.sample.id
    return (rec.sample.task, int(sid) if sid.isdigit() else -1, sid)


def page_html(title: str, records: list[SampleRecord], crops_dir: Path, images: _Images) -> str:
    """The whole viewer page for one run."""
    tasks = sorted({r.sample.task for r in records})
    bar = (
        '<div class="bar">'
        f'<label>task <select id="f-task">{_options([("", "all"), *((t, t) for t in tasks)])}</select></label>'
        f'<label>outcome <select id="f-outcome">{_options([("", "all"), ("1", "correct"), ("0", "incorrect")])}</select></label>'
        f'<label>tool use <select id="f-tools">{_options([("", "all"), ("1", "used tools"), ("0", "no tools")])}</select></label>'
        '<button id="expand">expand all</button><button id="collapse">collapse all</button>'
        '<span id="shown" class="legend"></span></div>'
    )
    systems = {r.trajectory.system for r in records}
    shared = len(systems) == 1  # the usual case: show the (long) system message once
    top = (
        f"<details><summary>system message (every sample)</summary><pre>{escape(systems.pop())}</pre></details>"
        if shared
        else ""
    )
    body = "\n".join(
        sample_html(r, crops_dir, images, show_system=not shared) for r in sorted(records, key=_order)
    )
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


def view(run_args: list[str], out: Path, *, embed: bool = False) -> list[Path]:
    """Write one page per run (and ``index.html`` linking them); return the page paths."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} exists and is not a folder")
    loaded = Loaded()
    images = _Images(out, embed)
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
        title = f"{label} — {samples_path(path)}"
        page.write_text(page_html(title, list(records), path.parent / CROPS, images), encoding="utf-8")
        pages.append(page)
    if not pages:
        raise ReportError("no readable samples.jsonl among the runs given")
    links = "".join(f'<li><a href="{escape(p.name)}">{escape(p.stem)}</a></li>' for p in pages)
    (out / "index.html").write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><title>runs</title></head><body><ul>{links}</ul></body></html>\n',
        encoding="utf-8",
    )
    return pages
