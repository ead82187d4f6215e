"""Deterministic helpers shared by the offline data generators of the built-in tasks.

Every generator (``synthesize(n, seed, out_dir)`` in ``vstar``, ``tallyqa``, ``infovqa``,
``mvbench``) writes a small data set in the real benchmark's file layout and reads it back with
the task's own loader. The rules they share live here:

- **Determinism.** Sample ``i`` is drawn from :func:`rng_for` ``(task, seed, i)`` only, never from
  ``n``: ``--limit 10`` and ``--limit 200`` share their first ten samples, ids included.
- **Idempotence and concurrency.** Media files that already exist are skipped; every file is
  written to a temporary name in its folder and moved into place with ``os.replace``, so two
  processes generating the same folder never see a half-written file. Row files are rewritten
  only when they do not already start with the wanted rows (:func:`ensure_rows`), so a bigger
  earlier run is kept.
- **Synthetic-only facts** (target colours, key frames, answer boxes ...) go to sidecar files
  under ``synthetic_annotations/``, never into the real schema's columns.
- **Drawing.** A fixed palette of saturated colours, every pair at least ``2 * COLOR_TOL`` apart in
  RGB, on muted (grey-ish) backgrounds that are never within ``COLOR_TOL`` of a palette colour, so
  a pixel's colour name is unambiguous; text uses PIL's bundled font (``load_default(size=...)``).
- **Files** go through the core's atomic writer (:func:`harness.run.results.write_bytes_atomic`).
- **Measurement** for the tests (what the model sees, per 28x28 patch) is :mod:`harness_tasks.measure`.
"""

from __future__ import annotations

import io
import json
import random
import string
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from PIL import Image, ImageDraw, ImageFont

from harness.data.confine import PathEscape, confined
from harness.run.results import write_bytes_atomic as atomic_write_bytes


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


S = TypeVar("S", bound=_HasId)
RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x, y, w, h in pixels, as V* stores target boxes

COLOR_TOL = 48.0  # RGB distance within which a pixel "has" a palette colour
SIDECAR_DIR = "synthetic_annotations"

PALETTE: dict[str, RGB] = {
    "red": (210, 20, 30), "orange": (250, 130, 0), "yellow": (245, 235, 40), "green": (20, 160, 40),
    "blue": (25, 60, 215), "purple": (130, 40, 180), "pink": (250, 120, 200), "cyan": (0, 200, 220),
    "white": (245, 245, 245), "black": (15, 15, 15),
}  # fmt: skip
COLORS: tuple[str, ...] = tuple(PALETTE)
# Shapes that stay tellable apart at 12 px (hexagons and stars look like discs at that size).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
PLURALS: dict[str, str] = {s: s + ("es" if s.endswith(("s", "x")) else "s") for s in SHAPES}


# --------------------------------------------------------------------------- randomness, text


def rng_for(task: str, seed: int, index: int) -> random.Random:
    """The generator of sample ``index``: a function of (task, seed, index) only.

    String seeds are hashed with SHA-512 by :mod:`random`, so this is stable across processes
    and ``PYTHONHASHSEED``.
    """
    return random.Random(f"{task}/{seed}/{index}")


def letters(n: int) -> tuple[str, ...]:
    """The first ``n`` option letters: ``("A", "B", ...)``."""
    return tuple(string.ascii_uppercase[:n])


def pr_choices(question: str, options: Sequence[str]) -> str:
    """A multiple-choice question in the Pixel-Reasoner format (``vcot``/``notool`` modes):
    ``"{q}\\nchoices:\\nA: Lion  \\nB: Sheep"``."""
    lines = "  \n".join(f"{string.ascii_uppercase[k]}: {opt}" for k, opt in enumerate(options))
    return f"{question}\nchoices:\n{lines}"


def paren_options(options: Sequence[str]) -> str:
    """``"(A) x\\n(B) y"``: options as V* and MVBench print them."""
    return "\n".join(f"({string.ascii_uppercase[k]}) {opt}" for k, opt in enumerate(options))


# --------------------------------------------------------------------------- files


def dumps(obj: Any) -> str:
    """Deterministic JSON text (key order as built, no trailing spaces)."""
    return json.dumps(obj, ensure_ascii=False)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (dumps(obj) + "\n").encode("utf-8"))


def ensure_json(path: Path, obj: Any) -> None:
    """Write ``obj`` unless ``path`` already holds exactly it. Atomic."""
    if path.exists():
        try:
            if read_json(path) == obj:
                return
        except (OSError, ValueError):
            pass
    write_json(path, obj)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


RowFormat = Literal["json", "jsonl"]


def read_rows(path: Path, fmt: RowFormat) -> list[dict[str, Any]]:
    """Rows of a ``.json`` list file or a ``.jsonl`` file."""
    if fmt == "jsonl":
        return read_jsonl(path)
    rows = read_json(path)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of rows")
    return rows


def ensure_rows(path: Path, rows: list[dict[str, Any]], fmt: RowFormat) -> None:
    """Write ``rows`` unless ``path`` already starts with exactly these rows (a bigger run's file
    is kept; a stale or broken one is replaced). Atomic."""
    if path.exists():
        try:
            if read_rows(path, fmt)[: len(rows)] == rows:
                return
        except (OSError, ValueError):
            pass
    if fmt == "jsonl":
        text = "".join(dumps(r) + "\n" for r in rows)
    else:
        text = "[\n" + ",\n".join(dumps(r) for r in rows) + "\n]\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def save_image(image: Image.Image, path: Path, quality: int = 95) -> None:
    """Save atomically: JPEG (``quality``, no chroma subsampling) or PNG, by suffix."""
    buf = io.BytesIO()
    if path.suffix.lower() in (".jpg", ".jpeg"):
        rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert() would copy
        rgb.save(buf, "JPEG", quality=quality, subsampling=0)
    else:
        image.save(buf, "PNG", compress_level=1)
    atomic_write_bytes(path, buf.getvalue())


def sidecar_path(root: Path, key: str) -> Path:
    """Where the synthetic-only annotations of ``key`` live (outside the real schema)."""
    return root / SIDECAR_DIR / f"{key}.json"


def write_sidecar(root: Path, key: str, obj: dict[str, Any]) -> None:
    ensure_json(sidecar_path(root, key), obj)


def read_sidecar(root: Path, key: str) -> dict[str, Any]:
    """The sidecar of ``key``, or ``{}`` (real data has none, and a key that leads out of the
    sidecar folder, e.g. a data row's ``../`` image name, has none either)."""
    try:
        path = confined(root / SIDECAR_DIR, f"{key}.json")
    except PathEscape:
        return {}
    if not path.is_file():
        return {}
    data = read_json(path)
    return data if isinstance(data, dict) else {}


class MissingSamples(RuntimeError):
    """The loader did not return every generated id."""


def select_ids(samples: Sequence[S], ids: Sequence[str]) -> list[S]:
    """``samples`` (with ``.id``) in the order of ``ids``; a missing id raises
    :class:`MissingSamples`."""
    by_id = {s.id: s for s in samples}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise MissingSamples(f"synthetic data incomplete: {len(missing)} id(s) missing, e.g. {missing[0]!r}")
    return [by_id[i] for i in ids]


def write_and_load(write: Callable[[], None], load: Callable[[], Sequence[S]], ids: Sequence[str]) -> list[S]:
    """Write the row files, load them back and return the samples of ``ids`` in order.

    A concurrent smaller run may replace a row file between our write and our load; the write is
    then repeated (:func:`ensure_rows` never shrinks a file that already holds our rows)."""
    for attempt in range(5):
        write()
        try:
            return select_ids(load(), ids)
        except MissingSamples:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- drawing


def muted_color(rng: random.Random, lo: int = 80, hi: int = 160, spread: int = 12) -> RGB:
    """A grey-ish colour: grey level in [lo, hi], each channel within ``spread`` of it. Never
    within ``COLOR_TOL`` of a palette colour (with the defaults; tested)."""
    g = rng.randint(lo, hi)
    r, gg, b = (g + rng.randint(-spread, spread) for _ in range(3))
    return (r, gg, b)


def background(rng: random.Random, width: int, height: int, n_blocks: int) -> Image.Image:
    """A muted "scene": a base colour with large muted rectangles and ellipses (fast to draw and
    to encode; no palette colour anywhere)."""
    img = Image.new("RGB", (width, height), muted_color(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(n_blocks):
        bw = rng.randint(width // 8, width // 2)
        bh = rng.randint(height // 8, height // 2)
        x, y = rng.randint(-bw // 4, width - bw // 2), rng.randint(-bh // 4, height - bh // 2)
        box = (x, y, x + bw, y + bh)
        if rng.random() < 0.5:
            draw.rectangle(box, fill=muted_color(rng))
        else:
            draw.ellipse(box, fill=muted_color(rng))
    return img


def _polygon(shape: str, x: float, y: float, w: float, h: float) -> list[tuple[float, float]]:
    cx, cy = x + w / 2, y + h / 2
    if shape == "square":
        return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if shape == "triangle":
        return [(cx, y), (x + w, y + h), (x, y + h)]
    if shape == "diamond":
        return [(cx, y), (x + w, cy), (cx, y + h), (x, cy)]
    if shape == "cross":
        t = 0.2  # half arm thickness, as a fraction of the size
        return [
            (cx - t * w, y), (cx + t * w, y), (cx + t * w, cy - t * h), (x + w, cy - t * h),
            (x + w, cy + t * h), (cx + t * w, cy + t * h), (cx + t * w, y + h), (cx - t * w, y + h),
            (cx - t * w, cy + t * h), (x, cy + t * h), (x, cy - t * h), (cx - t * w, cy - t * h),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: Box, fill: RGB) -> None:
    """Draw a filled ``shape`` (one of :data:`SHAPES`) inscribed in ``box`` = (x, y, w, h)."""
    x, y, w, h = box
    if shape == "circle":
        draw.ellipse((x, y, x + w - 1, y + h - 1), fill=fill)
    else:
        draw.polygon(_polygon(shape, x, y, w - 1, h - 1), fill=fill)


def overlaps(a: Box, b: Box, margin: int = 0) -> bool:
    """Whether boxes ``a`` and ``b`` (x, y, w, h) come closer than ``margin`` pixels."""
    return not (
        a[0] + a[2] + margin <= b[0]
        or b[0] + b[2] + margin <= a[0]
        or a[1] + a[3] + margin <= b[1]
        or b[1] + b[3] + margin <= a[1]
    )


def place(
    rng: random.Random,
    width: int,
    height: int,
    size: tuple[int, int],
    avoid: Sequence[Box],
    margin: int,
    border: int = 0,
    region: Box | None = None,
    tries: int = 400,
) -> Box | None:
    """A random box of ``size`` inside the image (``border`` from its edges, inside ``region``
    when given) at least ``margin`` pixels from every box in ``avoid``; ``None`` if none found."""
    bw, bh = size
    rx, ry, rw, rh = region if region is not None else (0, 0, width, height)
    x_lo, x_hi = max(rx, border), min(rx + rw, width - border) - bw
    y_lo, y_hi = max(ry, border), min(ry + rh, height - border) - bh
    if x_hi < x_lo or y_hi < y_lo:
        return None
    for _ in range(tries):
        box = (rng.randint(x_lo, x_hi), rng.randint(y_lo, y_hi), bw, bh)
        if not any(overlaps(box, other, margin) for other in avoid):
            return box
    return None


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's bundled default font at ``size`` pixels (no download, same on every machine with
    the same Pillow)."""
    return ImageFont.load_default(size=size)


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, fill: RGB) -> Box:
    """Draw ``text`` with its top-left at ``xy``; return its ink box (x, y, w, h)."""
    f = font(size)
    draw.text(xy, text, font=f, fill=fill)
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=f)
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def text_width(text: str, size: int) -> int:
    return int(round(font(size).getlength(text)))


def draw_arrow(draw: ImageDraw.ImageDraw, box: Box, direction: str, fill: RGB) -> None:
    """A filled arrow inscribed in ``box`` pointing "up", "down", "left" or "right"."""
    x, y, w, h = box
    unit = [(0.5, 0.0), (1.0, 0.5), (0.68, 0.5), (0.68, 1.0), (0.32, 1.0), (0.32, 0.5), (0.0, 0.5)]  # up
    if direction == "down":
        unit = [(u, 1 - v) for u, v in unit]
    elif direction == "left":
        unit = [(v, u) for u, v in unit]
    elif direction == "right":
        unit = [(1 - v, u) for u, v in unit]
    elif direction != "up":
        raise ValueError(f"unknown direction {direction!r}")
    draw.polygon([(x + u * (w - 1), y + v * (h - 1)) for u, v in unit], fill=fill)


def caption_size(text: str, size: int) -> tuple[int, int]:
    """The (w, h) of the sign :func:`draw_caption` draws for ``text``."""
    return text_width(text, size) + 12, size + 10


def draw_caption(draw: ImageDraw.ImageDraw, box: Box, text: str, size: int) -> None:
    """A light sign filling ``box`` with ``text`` in dark ink (see :func:`caption_size`)."""
    x, y, w, h = box
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(248, 246, 236), outline=(40, 40, 40))
    draw.text((x + 6, y + 4), text, font=font(size), fill=(20, 20, 20))
