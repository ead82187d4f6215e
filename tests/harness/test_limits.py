from __future__ import annotations

import pytest

from harness.loop.limits import Limits


def test_published_defaults() -> None:
    lim = Limits()
    assert (lim.max_ops, lim.max_images, lim.max_new_tokens) == (4, 16, 2048)
    assert lim.max_context_tokens == 12088
    assert (lim.min_pixels, lim.max_pixels) == (401408, 4014080)
    assert (lim.crop_min_pixels, lim.crop_max_pixels) == (256 * 28 * 28, 5120 * 28 * 28)
    assert lim.frame_max_pixels == 512 * 28 * 28


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Limits()),
        ("max_ops=2", Limits(max_ops=2)),
        ("max_ops=2, max_images=3", Limits(max_ops=2, max_images=3)),
        ("crop_padding=0.2", Limits(crop_padding=0.2)),
    ],
)
def test_parse(text: str, expected: Limits) -> None:
    assert Limits.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("max_opz=2", "unknown"),
        ("max_ops", "malformed"),
        ("max_ops=x", "needs a number"),
        ("max_ops=-1", ">= 0"),
    ],
)
def test_parse_errors(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Limits.parse(text)
