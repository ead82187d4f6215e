"""Image safety through a full ``harness eval`` run: a path escape (``..``, absolute, a symlink
out of the data root, a frame folder whose frame is such a symlink), a decompression bomb, a
corrupt and a missing image each end as that sample's recorded error in samples.jsonl; the run
goes on and the other samples are scored."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from harness import cli
from harness import data as harness_data
from harness.data import MediaError, open_media
from harness.records import MediaKind, Sample


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _sample(sid: str, media: str, root: Path, kind: MediaKind = "image") -> Sample:
    return Sample(
        media_kind=kind,
        task="vstar",
        id=sid,
        question="What is the colour of the cup?",
        answer="A",
        media=(media,),
        options=("red", "blue"),
        category="direct_attributes",
        root=str(root),
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    Image.new("RGB", (640, 480), (90, 120, 150)).save(root / "good.jpg")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (root / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (tmp_path / "outside.jpg").write_bytes((root / "good.jpg").read_bytes())
    (root / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    frames = root / "frames"
    frames.mkdir()
    (frames / "00001.jpg").symlink_to(tmp_path / "outside.jpg")
    for k in (2, 3):
        (frames / f"{k:05d}.jpg").write_bytes((root / "good.jpg").read_bytes())
    cases = [
        ("escape_symlink", "link.jpg", "image"),
        ("escape_frame_symlink", "frames", "video"),
        ("good1", "good.jpg", "image"),
        ("escape_dotdot", "../outside.jpg", "image"),
        ("escape_absolute", str(tmp_path / "outside.jpg"), "image"),
        ("bomb", "bomb.png", "image"),
        ("corrupt", "corrupt.jpg", "image"),
        ("missing", "gone.jpg", "image"),
        ("good2", "good.jpg", "image"),
    ]
    lines = [json.dumps(_sample(sid, media, root, kind).to_dict()) for sid, media, kind in cases]
    (root / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return root


EXPECTED_ERRORS = {
    "escape_symlink": "vstar/escape_symlink: media[0]: escapes the data root: path 'link.jpg' leaves",
    "escape_frame_symlink": "vstar/escape_frame_symlink: media[0]: escapes the data root:",
    "escape_dotdot": "escapes the data root",
    "escape_absolute": "escapes the data root",
    "bomb": "decompression bomb",
    "corrupt": "media[0]: cannot decode",
    "missing": "media[0]: file not found",
}


def _run(data_dir: Path, out: Path) -> dict[str, dict[str, object]]:
    argv = [
        "eval",
        "--tasks",
        "vstar",
        "--model",
        "scripted:oracle",
        "--data",
        f"jsonl:{data_dir / 'samples.jsonl'}",
    ]
    assert cli.main([*argv, "--output_path", str(out), "--no_progress", "--batch_size", "2"]) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {row["sample"]["id"]: row for row in rows}


def test_bad_media_are_recorded_per_sample_and_the_run_goes_on(data_dir: Path, tmp_path: Path) -> None:
    rows = _run(data_dir, tmp_path / "run")
    assert set(rows) == {"good1", "good2", *EXPECTED_ERRORS}
    for sid, needle in EXPECTED_ERRORS.items():
        traj = rows[sid]["trajectory"]
        assert traj["end_reason"] == "error" and needle in traj["error"], (sid, traj["error"])
        assert rows[sid]["score"]["score"] == 0.0
    assert rows["good1"]["score"]["score"] == rows["good2"]["score"]["score"] == 1.0
    result = json.loads((tmp_path / "run" / "results.json").read_text())["results"]["vstar"]
    assert result["n"] == 9 and result["tool_stats"]["sample_error_rate"] == pytest.approx(7 / 9)
    for sid in ("escape_symlink", "escape_frame_symlink"):
        assert "outside.jpg" in rows[sid]["trajectory"]["error"]  # names where the link leads


def test_an_image_over_the_limit_is_refused_before_decoding(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness_data, "MAX_IMAGE_PIXELS", 640 * 480 - 1)
    rows = _run(data_dir, tmp_path / "run")
    for sid in ("good1", "good2"):
        error = rows[sid]["trajectory"]["error"]
        assert "640x480 = 307200 pixels exceeds the decompression-bomb limit of 307199" in error


@pytest.mark.parametrize(
    ("media", "match"),
    [
        ("bomb.png", r"vstar/x: media\[0\]: .*bomb\.png: decompression bomb refused"),
        ("good.jpg", r"exceeds the decompression-bomb limit of 100"),
    ],
)
def test_bomb_messages_name_sample_field_and_file(data_dir: Path, media: str, match: str) -> None:
    limit = 100 if media == "good.jpg" else None
    with pytest.raises(MediaError, match=match):
        open_media(_sample("x", media, data_dir), max_pixels=limit)


def test_symlinks_that_stay_inside_the_data_root_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "shared").mkdir(parents=True)
    Image.new("RGB", (32, 24), (10, 200, 30)).save(root / "shared" / "frame.jpg")
    (root / "alias.jpg").symlink_to(root / "shared" / "frame.jpg")
    frames = root / "clip"
    frames.mkdir()
    for k in (1, 2, 3):
        (frames / f"{k:05d}.jpg").symlink_to(Path("..") / "shared" / "frame.jpg")
    (image,) = open_media(_sample("alias", "alias.jpg", root))
    assert image.size == (32, 24)
    video = open_media(_sample("clip", "clip", root, "video"))
    assert len(video) == 16 and all(im.size == (32, 24) for im in video)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_a_symlink_loop_is_a_media_error(tmp_path: Path, kind: MediaKind) -> None:
    root = tmp_path / "data"
    folder = root / "clip"
    folder.mkdir(parents=True)
    (folder / "00001.jpg").symlink_to(folder / "00001.jpg")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    media = "clip" if kind == "video" else "loop.jpg"
    with pytest.raises(
        MediaError, match=r"vstar/x: media\[0\]: escapes the data root: .* cannot be resolved"
    ):
        open_media(_sample("x", media, root, kind))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("img/a.PNG", ".png"),
        ("a.jpeg", ".jpeg"),
        ("../../../x.png/../evil", ".jpg"),  # no usable suffix: sniffed from the bytes
        ("x.png\n", ".jpg"),
        ("x." + "a" * 40, ".jpg"),
        (None, ".jpg"),
    ],
)
def test_hub_image_names_only_lend_a_plain_suffix(name: str | None, expected: str) -> None:
    from harness_tasks.formats import _suffix

    assert _suffix(name, b"\xff\xd8\xff\xe0rest") == expected


def test_task_loaders_read_no_annotation_or_sidecar_outside_the_data_root(tmp_path: Path) -> None:
    """A V* row whose image name leads out of the root must not pull the JSON next to that file
    (nor a synthetic sidecar) into the sample's metadata, which would land in samples.jsonl."""
    from harness_tasks import synthetic as syn
    from harness_tasks import vstar

    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (64, 64)).save(outside / "x.jpg")
    (outside / "x.json").write_text(json.dumps({"bbox": [[1, 2, 3, 4]], "target_object": ["SECRET"]}))
    side = tmp_path / "root" / syn.SIDECAR_DIR / ".." / ".." / "outside"
    assert side.resolve() == outside.resolve()
    (outside / "y.json").write_text(json.dumps({"leak": "SECRET"}))
    root = tmp_path / "root"
    root.mkdir()
    row = {
        "image": "../outside/x.jpg",
        "text": "Q?\n(A) a\n(B) b",
        "category": "c",
        "question_id": 1,
        "label": "A",
    }
    (root / vstar.QUESTIONS_FILE).write_text(json.dumps(row) + "\n")
    [sample] = vstar.load_local(root)
    assert "SECRET" not in json.dumps(sample.metadata)
    assert "image_size" not in sample.metadata
    assert syn.read_sidecar(root, "../../outside/y") == {}
    with pytest.raises(MediaError, match="escapes the data root|leaves"):
        open_media(sample)
