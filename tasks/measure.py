"""Measurement for the tests of the synthetic generators: the "needs the tool" property is defined
on what the model sees, the image resized into the engine's pixel budget (:class:`harness.Limits`)
and cut into 28x28 patches (see ``tests/tasks``). Not used by the loaders or the generators.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from harness.loop.limits import PATCH as PATCH  # re-exported for the tests' patch arithmetic
from harness.loop.limits import Limits
from harness.tools import resize_to_budget

from . import synthetic as syn

MAX_PIXELS = Limits().max_pixels
CROP_MIN_PIXELS = Limits().crop_min_pixels


def model_view(
    image: Image.Image, min_pixels: int = Limits().min_pixels, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """``image`` as the model sees it: resized with Qwen2.5-VL's smart resize into the budget."""
    return resize_to_budget(image, min_pixels, max_pixels)


def tight_crop(image: Image.Image, box: syn.Box, pad: float = 1.0) -> tuple[Image.Image, syn.Box]:
    """The crop of ``box`` padded by ``pad`` times its larger side on every side (clamped), and
    that crop's own box (x, y, w, h) in ``image``."""
    x, y, w, h = box
    p = int(round(pad * max(w, h)))
    x0, y0 = max(0, x - p), max(0, y - p)
    x1, y1 = min(image.width, x + w + p), min(image.height, y + h + p)
    return image.crop((x0, y0, x1, y1)), (x0, y0, x1 - x0, y1 - y0)


def color_share(image: Image.Image, rgb: syn.RGB, tol: float = syn.COLOR_TOL) -> np.ndarray:
    """Per 28x28 patch (rows, cols), the fraction of pixels within ``tol`` of ``rgb``.

    Partial patches at the right/bottom edge are dropped (a smart-resized image has none).
    """
    arr = np.asarray(image.convert("RGB"), dtype=np.int32)
    hp, wp = arr.shape[0] // PATCH, arr.shape[1] // PATCH
    arr = arr[: hp * PATCH, : wp * PATCH]
    dist2 = ((arr - np.asarray(rgb, dtype=np.int32)) ** 2).sum(axis=2)
    hit = (dist2 <= tol * tol).astype(np.float64)
    share: np.ndarray = hit.reshape(hp, PATCH, wp, PATCH).mean(axis=(1, 3))
    return share


def box_share(
    image: Image.Image,
    box: tuple[float, float, float, float],
    rgb: syn.RGB,
    scale: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """:func:`color_share` of the patches of ``image`` overlapping ``box`` (given in an original's
    pixels, mapped by ``scale`` = (sx, sy) into ``image``); only those patches are computed."""
    x, y, w, h = box
    sx, sy = scale
    c0, c1 = (
        max(0, int(x * sx) // PATCH),
        min(image.width // PATCH, int(math.ceil((x + w) * sx)) // PATCH + 1),
    )
    r0, r1 = (
        max(0, int(y * sy) // PATCH),
        min(image.height // PATCH, int(math.ceil((y + h) * sy)) // PATCH + 1),
    )
    return color_share(image.crop((c0 * PATCH, r0 * PATCH, c1 * PATCH, r1 * PATCH)), rgb)
