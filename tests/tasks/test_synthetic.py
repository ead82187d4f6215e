"""The shared drawing, file and measurement helpers of the synthetic generators."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image, ImageDraw

from harness.records import Sample
from harness_tasks import infovqa, measure, mvbench, tallyqa, vstar
from harness_tasks import synthetic as syn


def test_palette_colours_are_mutually_unambiguous() -> None:
    for (a, ca), (b, cb) in itertools.combinations(syn.PALETTE.items(), 2):
        dist = float(np.linalg.norm(np.subtract(ca, cb)))
        assert dist > 2 * syn.COLOR_TOL, (a, b, dist)


def test_muted_colours_never_match_a_palette_colour() -> None:
    # every colour muted_color can return: grey level 80..160, each channel within 12 of it
    g = np.arange(80, 161)[:, None, None, None]
    d = np.arange(-12, 13)
    cube = np.stack(
        np.broadcast_arrays(
            g + d[None, :, None, None], g + d[None, None, :, None], g + d[None, None, None, :]
        ),
        -1,
    )
    cube = cube.reshape(-1, 3).astype(float)
    for name, rgb in syn.PALETTE.items():
        nearest = np.sqrt(((cube - np.asarray(rgb, float)) ** 2).sum(1)).min()
        assert nearest > syn.COLOR_TOL + 25, (name, nearest)


def test_rng_depends_on_task_seed_and_index_only() -> None:
    first = [syn.rng_for("t", 3, 7).random() for _ in range(2)]
    assert first[0] == first[1]
    others = {syn.rng_for(*args).random() for args in [("t", 3, 7), ("t", 3, 8), ("t", 4, 7), ("u", 3, 7)]}
    assert len(others) == 4


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("Lion", "Sheep"), "Is it?\nchoices:\nA: Lion  \nB: Sheep"),
        (("a", "b", "c"), "Is it?\nchoices:\nA: a  \nB: b  \nC: c"),
    ],
)
def test_pixel_reasoner_choices_format(options: tuple[str, ...], expected: str) -> None:
    assert syn.pr_choices("Is it?", options) == expected


def test_paren_options() -> None:
    assert syn.paren_options(["x", "y z"]) == "(A) x\n(B) y z"
    assert syn.letters(3) == ("A", "B", "C")


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    syn.atomic_write_bytes(target, b"one")
    syn.atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_ensure_rows_keeps_a_bigger_file_and_replaces_a_stale_one(tmp_path: Path, fmt: syn.RowFormat) -> None:
    path = tmp_path / f"rows.{fmt}"
    rows = [{"a": i, "b": [i]} for i in range(5)]
    syn.ensure_rows(path, rows, fmt)
    assert syn.read_rows(path, fmt) == rows
    syn.ensure_rows(path, rows[:2], fmt)  # a smaller run keeps the bigger file
    assert syn.read_rows(path, fmt) == rows
    syn.ensure_rows(path, [{"a": 9}], fmt)  # a different prefix is rewritten
    assert syn.read_rows(path, fmt) == [{"a": 9}]
    path.write_text("{broken", encoding="utf-8")
    syn.ensure_rows(path, rows, fmt)
    assert syn.read_rows(path, fmt) == rows


def test_sidecars_round_trip_and_are_absent_for_real_data(tmp_path: Path) -> None:
    assert syn.read_sidecar(tmp_path, "cat/x") == {}
    syn.write_sidecar(tmp_path, "cat/x", {"k": [1, 2]})
    assert syn.read_sidecar(tmp_path, "cat/x") == {"k": [1, 2]}
    assert json.loads((tmp_path / syn.SIDECAR_DIR / "cat" / "x.json").read_text()) == {"k": [1, 2]}


@pytest.mark.parametrize(
    ("shape", "lo", "hi"),
    [
        ("circle", 0.7, 0.85),
        ("square", 0.95, 1.0),
        ("triangle", 0.4, 0.6),
        ("diamond", 0.4, 0.6),
        ("cross", 0.5, 0.7),
    ],
)
def test_shapes_fill_their_box_and_stay_inside_it(shape: str, lo: float, hi: float) -> None:
    img = Image.new("RGB", (100, 100), (0, 0, 0))
    syn.draw_shape(ImageDraw.Draw(img), shape, (20, 30, 50, 50), (255, 255, 255))
    mask = np.asarray(img)[:, :, 0] > 0
    assert not mask[:30].any() and not mask[80:].any() and not mask[:, :20].any() and not mask[:, 70:].any()
    assert lo <= mask[30:80, 20:70].mean() <= hi


def test_place_keeps_the_margin_and_the_region() -> None:
    rng = syn.rng_for("place", 0, 0)
    avoid: list[syn.Box] = [(100, 100, 20, 20)]
    for _ in range(200):
        box = syn.place(rng, 400, 300, (10, 10), avoid, margin=30, border=5, region=(0, 0, 400, 200))
        assert box is not None
        assert not syn.overlaps(box, avoid[0], 30)
        assert 5 <= box[0] <= 385 and box[1] >= 5 and box[1] + 10 <= 200
    assert syn.place(rng, 50, 50, (60, 10), [], margin=0) is None


def test_overlaps_with_margin() -> None:
    assert syn.overlaps((0, 0, 10, 10), (5, 5, 10, 10))
    assert not syn.overlaps((0, 0, 10, 10), (20, 0, 10, 10), margin=10)
    assert syn.overlaps((0, 0, 10, 10), (19, 0, 10, 10), margin=10)


def test_color_share_and_box_share_count_pixels_per_patch() -> None:
    img = Image.new("RGB", (56, 56), (120, 120, 120))
    ImageDraw.Draw(img).rectangle((28, 0, 55, 13), fill=syn.PALETTE["red"])  # half of patch (0, 1)
    share = measure.color_share(img, syn.PALETTE["red"])
    assert share.shape == (2, 2)
    assert share[0, 1] == pytest.approx(0.5) and share[0, 0] == 0 and share[1].sum() == 0
    # a box given in a 2x bigger original maps onto patch (0, 1) only
    assert measure.box_share(img, (60, 2, 40, 20), syn.PALETTE["red"], scale=(0.5, 0.5)).tolist() == [[0.5]]


def test_tight_crop_pads_by_the_larger_side_and_clamps() -> None:
    img = Image.new("RGB", (200, 100))
    crop, box = measure.tight_crop(img, (50, 40, 20, 10))
    assert box == (30, 20, 60, 50) and crop.size == (60, 50)
    _, box = measure.tight_crop(img, (5, 5, 20, 10))
    assert box == (0, 0, 45, 35)


def test_model_view_is_bounded_by_the_pixel_budget() -> None:
    view = measure.model_view(Image.new("RGB", (3800, 2100)))
    assert view.width % 28 == 0 and view.height % 28 == 0
    assert view.width * view.height <= measure.MAX_PIXELS
    small = measure.model_view(Image.new("RGB", (60, 40)), measure.CROP_MIN_PIXELS)
    assert small.width * small.height >= measure.CROP_MIN_PIXELS


@pytest.mark.parametrize("direction", ["up", "down", "left", "right"])
def test_arrows_point_where_asked(direction: str) -> None:
    img = Image.new("RGB", (40, 40), (0, 0, 0))
    syn.draw_arrow(ImageDraw.Draw(img), (0, 0, 40, 40), direction, (255, 255, 255))
    mask = np.asarray(img)[:, :, 0] > 0
    halves = {"up": (mask[:20], mask[20:]), "down": (mask[20:], mask[:20])}
    halves |= {"left": (mask[:, :20], mask[:, 20:]), "right": (mask[:, 20:], mask[:, :20])}
    head, tail = halves[direction]
    assert head.sum() > 1.1 * tail.sum()


def test_captions_fit_their_sign() -> None:
    w, h = syn.caption_size("Took the towel.", 12)
    img = Image.new("RGB", (w + 20, h + 20), (0, 0, 0))
    syn.draw_caption(ImageDraw.Draw(img), (10, 10, w, h), "Took the towel.", 12)
    arr = np.asarray(img)
    assert arr[10 : 10 + h, 10 : 10 + w].min() < 60  # dark text inside the light sign
    assert arr[:10].max() == 0 and arr[10 + h :].max() == 0  # nothing outside the sign


# --------------------------------------------------------------------------- every generator

MODULES = [vstar, tallyqa, infovqa, mvbench]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _portable(samples: list[Sample]) -> list[dict[str, object]]:
    return [{**s.to_dict(), "root": ""} for s in samples]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_same_seed_gives_byte_identical_folders(module: ModuleType, tmp_path: Path) -> None:
    a = module.synthesize(3, 5, tmp_path / "a")
    b = module.synthesize(3, 5, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _portable(a) == _portable(b)
    c = module.synthesize(3, 6, tmp_path / "c")
    assert _portable(c) != _portable(a)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_sample_i_does_not_depend_on_n_and_reruns_are_idempotent(module: ModuleType, tmp_path: Path) -> None:
    small = module.synthesize(2, 0, tmp_path / "small")
    big = module.synthesize(5, 0, tmp_path / "big")
    assert len(small) == 2 and len(big) == 5
    assert _portable(small) == _portable(big)[:2]
    assert len({s.id for s in big}) == 5
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "big").rglob("*") if p.is_file()}
    again = module.synthesize(5, 0, tmp_path / "big")
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "big").rglob("*") if p.is_file()}
    assert again == big and after == before  # nothing rewritten
    fewer = module.synthesize(2, 0, tmp_path / "big")  # a smaller run keeps the bigger data set
    assert _portable(fewer) == _portable(small)
    assert len(module.load_local(tmp_path / "big")) == 5
    assert not [p for p in (tmp_path / "big").rglob("*.tmp")]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_concurrent_generation_of_one_folder(module: ModuleType, tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda n: module.synthesize(n, 1, tmp_path), [3, 4]))
    assert _portable(results[0]) == _portable(results[1])[:3]
    reference = tmp_path.parent / f"{tmp_path.name}-ref"
    module.synthesize(4, 1, reference)
    assert _files(tmp_path) == _files(reference)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_samples_are_json_round_trippable_and_media_exist(module: ModuleType, tmp_path: Path) -> None:
    for s in module.synthesize(3, 0, tmp_path):
        assert Sample.from_dict(json.loads(json.dumps(s.to_dict()))) == s
        assert s.task == module.NAME and s.root == str(tmp_path)
        assert all((tmp_path / m).is_file() for m in s.media)
        assert isinstance(module.SPEC.question(s), str) and isinstance(module.SPEC.official_prompt(s), str)
