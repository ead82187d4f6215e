"""Real-data loaders on files generated here in each real schema: the hub layouts (read through
``--data hub:mirror=DIR``, the same ``datasets`` / task-loader code path as a download) and the
local layouts' errors, which name the file, row and field. The Pixel-Reasoner parquets are in
``test_pixel_reasoner_format.py``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from harness.data import DataError, load_samples, open_media
from harness.data.hub import HubError, extract_zips
from harness.plugins import Harness
from harness.run.evaluate import EvalConfig, evaluate
from harness_tasks import mvbench, tallyqa, vstar

HUB_TASKS = ("vstar", "tallyqa", "infovqa", "mvbench")


def _mp4(path: Path, n: int = 30, fps: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * k, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _image_bytes(size: tuple[int, int] = (120, 300)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", size, (240, 240, 240)).save(buf, "PNG")
    return buf.getvalue()


def make_docvqa(repo: Path, n: int = 3) -> None:
    """``lmms-lab/DocVQA``: README configs + ``InfographicVQA/validation-*.parquet`` with the
    real columns (``image`` an HF Image feature)."""
    import datasets

    repo.mkdir(parents=True, exist_ok=True)
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: InfographicVQA\n  data_files:\n  - split: validation\n"
        "    path: InfographicVQA/validation-*\n---\n"
    )
    features = datasets.Features(
        {
            "questionId": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answers": datasets.Sequence(datasets.Value("string")),
            "answer_type": datasets.Sequence(datasets.Value("string")),
            "image": datasets.Image(),
            "image_url": datasets.Value("string"),
            "operation/reasoning": datasets.Sequence(datasets.Value("string")),
            "ocr": datasets.Value("string"),
            "data_split": datasets.Value("string"),
        }
    )
    rows = {
        "questionId": [str(98000 + i) for i in range(n)],
        "question": [f"What is value {i}?" for i in range(n)],
        "answers": [[f"{10 + i}%", f"{10 + i} percent"] for i in range(n)],
        "answer_type": [["single span"] for _ in range(n)],
        "image": [{"bytes": _image_bytes(), "path": f"{i}.png"} for i in range(n)],
        "image_url": ["" for _ in range(n)],
        "operation/reasoning": [[] for _ in range(n)],
        "ocr": ["" for _ in range(n)],
        "data_split": ["val" for _ in range(n)],
    }
    (repo / "InfographicVQA").mkdir(exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(repo / "InfographicVQA" / "validation-00000-of-00001.parquet")
    )


def make_mvbench(repo: Path) -> None:
    """``OpenGVLab/MVBench``: ``json/<task>.json`` + ``video/star.zip`` holding an mp4 (a bounded
    task) and a tvqa frame folder (``episodic_reasoning``, bounded, read as frames)."""
    staging = repo / "staging"
    _mp4(staging / "star" / "Charades_v1_480" / "AB12C.mp4")
    with zipfile.ZipFile(repo / "star.zip", "w") as zf:
        for f in staging.rglob("*"):
            zf.write(f, f.relative_to(staging))
    (repo / "video").mkdir(parents=True)
    (repo / "star.zip").rename(repo / "video" / "star.zip")
    frames = repo / "video" / "tvqa" / "frames_fps3_hq" / "clip_1"
    frames.mkdir(parents=True)
    for k in range(1, 61):
        Image.new("RGB", (32, 24), (4 * k, 0, 0)).save(frames / f"{k:05d}.jpg")
    (repo / "json").mkdir()
    seq = {"video": "AB12C.mp4", "question": "What did the person do?", "candidates": ["Sat.", "Ran."]}
    (repo / "json" / "action_sequence.json").write_text(
        json.dumps([{**seq, "answer": "Ran.", "start": 0.5, "end": 2.5}])
    )
    ep = {"video": "clip_1", "question": "Who spoke?", "candidates": ["Amy", "Bo", "Cy"], "answer": "Cy"}
    (repo / "json" / "episodic_reasoning.json").write_text(json.dumps([{**ep, "start": 2.0, "end": 12.0}]))


@pytest.fixture(scope="module")
def hub_mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    mirror = tmp_path_factory.mktemp("mirror")
    vstar.synthesize(3, 0, mirror / "craigwu" / "vstar_bench")
    make_docvqa(mirror / "lmms-lab" / "DocVQA")
    make_mvbench(mirror / "OpenGVLab" / "MVBench")
    tally = tmp_path_factory.mktemp("tallyqa")
    tallyqa.synthesize(2, 0, tally)
    return mirror, tally


def _hub(mirror: Path, tally: Path, cache: Path) -> str:
    return f"hub:mirror={mirror},tallyqa={tally},cache_dir={cache}"


def test_hub_layouts_load_through_the_real_code_path(
    hub_mirror: tuple[Path, Path], harness_instance: Harness, tmp_path: Path
) -> None:
    data = _hub(*hub_mirror, tmp_path)
    keys = [k for t in HUB_TASKS for k in harness_instance.task(t).hub_keys]  # one --data, four tasks
    got = {t: load_samples(harness_instance.task(t), data, hub_keys=keys) for t in HUB_TASKS}
    assert {t: len(s) for t, s in got.items()} == {"vstar": 3, "tallyqa": 2, "infovqa": 3, "mvbench": 2}
    info = got["infovqa"][0]
    assert info.answers == ("10%", "10 percent") and info.category == "single span"
    assert open_media(info)[0].size == (120, 300)  # the parquet's image bytes, written unchanged
    assert len({s.media for s in got["infovqa"]}) == 1  # one file per distinct image
    seq, episodic = got["mvbench"]
    assert seq.media == ("video/star/Charades_v1_480/AB12C.mp4",) and seq.metadata["bound"] == [0.5, 2.5]
    assert (Path(seq.root) / seq.media[0]).is_file()  # video/star.zip was unpacked in place
    frames = open_media(seq)
    assert len(frames) == 16 and frames[0].size == (64, 48)
    assert episodic.metadata["frame_indices"] == mvbench.frame_indices(60, bound=(2.0, 12.0))
    assert episodic.answer == "C" and len(episodic.media) == 16


def test_hub_eval_runs_end_to_end(
    hub_mirror: tuple[Path, Path], harness_instance: Harness, tmp_path: Path
) -> None:
    config = EvalConfig(tasks=",".join(HUB_TASKS), model="scripted:oracle", data=_hub(*hub_mirror, tmp_path))
    result = evaluate(config, harness_instance, show_progress=False)
    assert {t: (r.value, r.n) for t, r in result.results.items()} == {
        "vstar": (1.0, 3),
        "tallyqa": (1.0, 2),
        "infovqa": (1.0, 3),
        "mvbench": (1.0, 2),
    }


def test_unreachable_hub_is_one_line_naming_the_dataset(
    monkeypatch: pytest.MonkeyPatch, harness_instance: Harness, tmp_path: Path
) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    for task, repo in (
        ("vstar", "craigwu/vstar_bench"),
        ("infovqa", "lmms-lab/DocVQA"),
        ("mvbench", "OpenGVLab/MVBench"),
    ):
        with pytest.raises(HubError) as info:
            load_samples(harness_instance.task(task), f"hub:cache_dir={tmp_path}")
        message = str(info.value)
        assert "\n" not in message and repr(repo) in message
        assert "parquet:PATH" in message and "jsonl:PATH" in message


@pytest.mark.parametrize(
    ("arg", "match"),
    [
        ("mirrors=/x", "bad option 'mirrors=/x'"),
        ("tallyqa", "expected KEY=VALUE"),
        ("mirror=/no/such/dir", "no folder /no/such/dir/craigwu/vstar_bench"),
    ],
)
def test_bad_hub_options(arg: str, match: str, harness_instance: Harness) -> None:
    with pytest.raises(HubError, match=match):
        load_samples(harness_instance.task("vstar"), f"hub:{arg}")


def test_a_hub_key_is_one_a_selected_task_declares(harness_instance: Harness, tmp_path: Path) -> None:
    assert harness_instance.task("tallyqa").hub_keys == ("tallyqa",)
    with pytest.raises(
        HubError, match=r"bad option 'tallqa=/x'; .*KEY in mirror, cache_dir, revision, tallyqa$"
    ):
        load_samples(harness_instance.task("tallyqa"), "hub:tallqa=/x")
    with pytest.raises(HubError, match=r"bad option 'tallyqa=/x'; .*KEY in mirror, cache_dir, revision$"):
        load_samples(harness_instance.task("vstar"), "hub:tallyqa=/x")  # vstar alone reads no such key
    config = EvalConfig(tasks="vstar", model="scripted:oracle", data=f"hub:mirror={tmp_path},tallqa=/x")
    with pytest.raises(HubError, match="bad option 'tallqa=/x'"):
        evaluate(config, harness_instance, show_progress=False)


def test_tallyqa_needs_its_local_folder(harness_instance: Harness) -> None:
    with pytest.raises(HubError, match="not on the Hugging Face Hub.*hub:tallyqa=DIR"):
        load_samples(harness_instance.task("tallyqa"), "hub")


def test_zip_members_cannot_escape(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(HubError, match="outside"):
        extract_zips(tmp_path)
    assert not (tmp_path.parent / "outside.txt").exists()


# --------------------------------------------------------------------------- local layouts: errors


def _drop(path: Path, field: str) -> None:
    rows = (
        json.loads(path.read_text())
        if path.suffix == ".json"
        else [json.loads(x) for x in path.read_text().splitlines()]
    )
    del rows[0][field]
    path.write_text(
        json.dumps(rows) if path.suffix == ".json" else "".join(json.dumps(r) + "\n" for r in rows)
    )


@pytest.mark.parametrize(
    ("task", "rows_file", "field"),
    [
        ("vstar", "test_questions.jsonl", "label"),
        ("tallyqa", "test.json", "issimple"),
        ("infovqa", "InfographicVQA/validation.jsonl", "answers"),
        ("mvbench", "json/action_sequence.json", "candidates"),
    ],
)
def test_missing_field_names_file_row_and_field(
    tmp_path: Path, harness_instance: Harness, task: str, rows_file: str, field: str
) -> None:
    spec = harness_instance.task(task)
    spec.synthesize(2, 0, tmp_path)
    _drop(tmp_path / rows_file, field)
    loader: Any = {"vstar": vstar.load_local, "tallyqa": tallyqa.load_local, "mvbench": mvbench.load_local}
    load = loader.get(task) or __import__("harness_tasks.infovqa", fromlist=["load_local"]).load_local
    with pytest.raises(DataError, match=rf"{rows_file}: row 0: missing field '{field}'"):
        load(tmp_path)


@pytest.mark.parametrize("task", ["vstar", "tallyqa", "infovqa", "mvbench"])
def test_missing_rows_file_names_it(tmp_path: Path, harness_instance: Harness, task: str) -> None:
    module = __import__(f"harness_tasks.{task}", fromlist=["load_local"])
    with pytest.raises(DataError, match=str(tmp_path)):
        module.load_local(tmp_path)


def test_a_missing_image_does_not_stop_loading(tmp_path: Path) -> None:
    vstar.synthesize(2, 0, tmp_path)
    next(tmp_path.glob("direct_attributes/*.jpg")).unlink()
    samples = vstar.load_local(tmp_path)
    assert "image_size" not in samples[0].metadata and "image_size" in samples[1].metadata


def test_cli_reports_an_unreachable_hub_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub.constants

    from harness import cli

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    argv = ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--data", f"hub:cache_dir={tmp_path}"]
    assert cli.main([*argv, "--no_progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'craigwu/vstar_bench'" in err and "--data parquet:PATH" in err
