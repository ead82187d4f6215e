"""Model output never kills a run: whole runs with ``--output_path`` driven by hostile replies.

The fuzz tests in test_fuzz.py stop at the episode; the holes were in what comes after it
(serialising the record, writing the line, reading it back on ``--resume``). So these tests drive
the real CLI entry point (``harness.cli.main``, and a subprocess for the acceptance case) with a
``scripted:replay`` file and check the run folder on disk: every sample written once, strict JSON
(no ``NaN`` token, valid UTF-8), the exact replies recoverable, and ``--resume`` finishing.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.cli import main
from harness.loop.protocol import MAX_CALL_DEPTH, parse_reply
from harness.plugins import Harness
from harness.records import Sample, SampleScore, Trajectory, Turn
from harness.run.results import SampleRecord, SamplesWriter, SampleWriteError, read_samples
from harness.tools import ToolError, crop_image_normalized

NAN_CALL = (
    '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [NaN, 0.1, 0.4, 0.4], '
    '"target_image": 1}}\n</tool_call>'
)
SURROGATE_CALL = (
    '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.5, 0.5], '
    '"target_image": 1, "note": "\\ud83d"}}\n</tool_call>'
)


def _strict(line: str) -> Any:
    """``json.loads`` that refuses the NaN / Infinity tokens Python's json would accept."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON token {token} in a run file")

    return json.loads(line, parse_constant=refuse)


def read_run(out: Path) -> list[dict[str, Any]]:
    """samples.jsonl as strict JSON from strict UTF-8 bytes; each key exactly once."""
    text = (out / "samples.jsonl").read_bytes().decode("utf-8")
    assert text.endswith("\n")
    # every record is one line for any reader: str.splitlines() also breaks at U+0085 and U+2028
    rows = [_strict(line) for line in text.splitlines()]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), f"a sample written twice: {keys}"
    _strict((out / "results.json").read_bytes().decode("utf-8"))
    return rows


def exact_reply(turn: dict[str, Any]) -> str:
    """The reply exactly as the model gave it (``raw_reply`` when ``reply`` had to be cleaned)."""
    return json.loads(turn["raw_reply"]) if turn.get("raw_reply") else str(turn["reply"])


def utf16(text: str) -> str:
    """``text`` with surrogate pairs written as two code points joined into their character: the
    same UTF-16 text, and what JSON (and so ``raw_reply``) gives back for such a pair."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def write_replay(path: Path, replies: dict[str, list[str]]) -> Path:
    # ensure_ascii (the default) writes lone surrogates as \udXXX escapes: the file is valid UTF-8
    path.write_text(json.dumps(replies), encoding="utf-8")
    return path


def small_vstar_data(folder: Path, n: int) -> Path:
    """A ``jsonl:`` data file of ``n`` V* samples on small images (fast to resize and crop)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        Image.new("RGB", (96 + 8 * i, 72), (40 * i % 255, 120, 200)).save(folder / f"img{i}.png")
        sample = Sample(
            task="vstar",
            id=str(i),
            question="What is the color of the circle?",
            answer="AB"[i % 2],
            media=(f"img{i}.png",),
            options=("red", "blue"),
            category="direct_attributes",
        )
        lines.append(json.dumps(sample.to_dict()))
    path = folder / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(*args: str) -> tuple[int, str]:
    """``harness ARGS`` in-process through the real entry point; (exit code, stderr)."""
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        rc = main(list(args))
    return rc, err.getvalue()


def eval_args(replay: Path, data: str, out: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--tasks",
        "vstar",
        "--model",
        f"scripted:replay:{replay}",
        "--data",
        data,
        "--output_path",
        str(out),
        "--no_progress",
        *extra,
    ]


# -- the acceptance case, black-box through a subprocess ------------------------------------------


def test_nan_call_and_lone_surrogate_complete_a_run_via_the_cli(tmp_path: Path) -> None:
    replay = write_replay(
        tmp_path / "replay.json",
        {
            "vstar/0": [NAN_CALL, "\\boxed{A}"],
            "vstar/1": [SURROGATE_CALL, "I see it \ud83d so \\boxed{B} \udc00"],
            "vstar/2": ["\ud83d"],
        },
    )
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "harness",
        *eval_args(replay, "synthetic", out, "--limit", "3", "--log_crops"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {r["key"]: r for r in read_run(out)}
    assert set(rows) == {"vstar/0", "vstar/1", "vstar/2"}

    nan_turn = rows["vstar/0"]["trajectory"]["turns"][0]
    assert nan_turn["observation"]["kind"] == "error"
    assert "NaN is not a JSON number" in nan_turn["observation"]["error"]
    assert exact_reply(nan_turn) == NAN_CALL
    # the escaped surrogate inside the call's JSON: the call ran, its argument is cleaned
    call_turn = rows["vstar/1"]["trajectory"]["turns"][0]
    assert call_turn["observation"]["kind"] == "crop"
    assert call_turn["tool_call"]["arguments"]["note"] == "\ufffd"
    assert (out / "crops" / call_turn["observation"]["saved"][0]).is_file()
    # raw surrogates in the text: shown as U+FFFD, the exact reply kept in raw_reply
    answer = rows["vstar/1"]["trajectory"]["turns"][1]
    assert answer["reply"] == "I see it \ufffd so \\boxed{B} \ufffd"
    assert exact_reply(answer) == "I see it \ud83d so \\boxed{B} \udc00"
    assert rows["vstar/1"]["score"]["extracted"] == "B"
    assert exact_reply(rows["vstar/2"]["trajectory"]["turns"][0]) == "\ud83d"

    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert {r["key"] for r in read_run(out)} == set(rows)
    # the run folder is readable by the other readers: the viewer and rescore
    rc, err = run_cli("view", str(out), "--out", str(tmp_path / "view"))
    assert rc == 0, err
    html = (tmp_path / "view" / "run.html").read_text(encoding="utf-8")
    assert "NaN is not a JSON number" in html
    rc, err = run_cli("rescore", str(out), "--scoring", "official")
    assert rc == 0, err
    rescored = [_strict(line) for line in (out / "samples.official.jsonl").read_text("utf-8").splitlines()]
    assert {r["key"]: r["score"]["score"] for r in rescored} == {
        k: r["score"]["score"] for k, r in rows.items()
    }


# -- the property test: arbitrary replies through whole runs --------------------------------------

SPECIAL_NUMBERS = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 400, "1e-400", "-0", "0.45", "0.5", "1", "2.0"]
)
NUMBERS = st.one_of(
    SPECIAL_NUMBERS, st.floats(-2, 2, allow_nan=False).map(repr), st.integers(-5, 200).map(str)
)
STRINGS = st.sampled_from(['"\\ud83d"', '"x\\udc00y"', '"\\ud83d\\ude00"', '"ok"', '"\ud83d"', '""'])
DEEP = st.integers(MAX_CALL_DEPTH - 4, 3 * MAX_CALL_DEPTH).map(lambda d: "[" * d + "0.5" + "]" * d)
VALUES = st.recursive(
    st.one_of(NUMBERS, STRINGS, st.sampled_from(["null", "true", "false"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(STRINGS, inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=10,
)
BOXES = st.one_of(
    st.lists(NUMBERS, min_size=4, max_size=5).map(lambda xs: "[" + ", ".join(xs) + "]"), VALUES, DEEP
)
CALL_NAMES = st.sampled_from(['"crop_image_normalized"', '"select_frames"', '"\\ud83d"', '"zoom"'])
CALLS = st.builds(
    lambda name, box, target, tail: (
        f'<tool_call>\n{{"name": {name}, "arguments": {{"bbox_2d": {box}, "target_image": {target}}}}}\n'
        f"</tool_call>{tail}"
    ),
    CALL_NAMES,
    BOXES,
    st.one_of(NUMBERS, STRINGS),
    st.sampled_from(["", "<|im_end|>", " trailing text"]),
)
# Any code point, lone surrogates included (st.text leaves them out by default).
TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
FRAGMENTS = st.sampled_from(["<tool_call>", "</tool_call>", "\\boxed{A}", "\\boxed{", "\ud83d", "\udfff"])
PROSE = st.lists(st.one_of(TEXT, FRAGMENTS), max_size=8).map("".join)
REPLIES = st.lists(st.one_of(CALLS, PROSE, VALUES), min_size=0, max_size=6)

N_SAMPLES = 2


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_vstar_data(tmp_path_factory.mktemp("hostile-data"), N_SAMPLES)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(REPLIES, min_size=N_SAMPLES, max_size=N_SAMPLES), st.integers(0, N_SAMPLES - 1))
def test_any_replies_are_written_and_resume_finishes(
    small_data: Path, scripts: list[list[str]], cut: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recorded = {f"vstar/{i}": replies for i, replies in enumerate(scripts)}
        replay = write_replay(folder / "replay.json", recorded)
        out = folder / "run"
        rc, err = run_cli(*eval_args(replay, f"jsonl:{small_data}", out, "--log_crops"))
        assert rc == 0, err
        rows = read_run(out)
        assert sorted(r["key"] for r in rows) == sorted(recorded)
        for row in rows:
            turns = row["trajectory"]["turns"]
            given_replies = recorded[row["key"]]
            # every reply the model gave is recorded, exactly recoverable
            assert [exact_reply(t) for t in turns] == [
                utf16(given_replies[t["index"]]) if t["index"] < len(given_replies) else exact_reply(t)
                for t in turns
            ]
            for t in turns:
                if (t["tool_call"] or {}).get("arguments") is not None:
                    assert "NaN" not in json.dumps(t["tool_call"]["arguments"], allow_nan=True)
                for name in (t["observation"] or {}).get("saved", []):
                    assert (out / "crops" / name).is_file()

        # kill-like damage: drop the last records, leave a torn line; --resume must finish
        lines = (out / "samples.jsonl").read_bytes().splitlines(keepends=True)
        assert len(lines) == N_SAMPLES
        (out / "samples.jsonl").write_bytes(b"".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
        (out / "results.json").unlink()
        rc, err = run_cli(*eval_args(replay, f"jsonl:{small_data}", out, "--log_crops", "--resume"))
        assert rc == 0, err
        resumed = read_run(out)
        assert sorted(r["key"] for r in resumed) == sorted(recorded)
        assert {r["key"]: r for r in resumed} == {r["key"]: r for r in rows}  # same records again


# -- preparation errors: one odd image is that sample's error, through the CLI --------------------


def test_aspect_ratio_250_image_is_that_samples_error_and_resume_works(
    tmp_path: Path, harness_instance: Harness
) -> None:
    folder = tmp_path / "mirror" / "craigwu" / "vstar_bench"
    folder.mkdir(parents=True)
    samples = harness_instance.task("vstar").synthesize(3, 0, folder)
    odd = samples[1]
    Image.new("RGB", (10000, 40), (200, 30, 30)).save(folder / odd.media[0])
    out = tmp_path / "run"
    args = [
        "eval",
        "--tasks",
        "vstar",
        "--model",
        "scripted:oracle",
        "--data",
        f"hub:mirror={tmp_path / 'mirror'}",
        "--output_path",
        str(out),
        "--no_progress",
    ]
    rc, err = run_cli(*args)
    assert rc == 0, err
    rows = {r["key"]: r for r in read_run(out)}
    assert set(rows) == {s.key for s in samples}
    assert "aspect ratio" in rows[odd.key]["trajectory"]["error"]
    assert rows[odd.key]["trajectory"]["end_reason"] == "error"
    assert {k: r["score"]["score"] for k, r in rows.items() if k != odd.key} == {
        s.key: 1.0 for s in samples if s.key != odd.key
    }
    result = _strict((out / "results.json").read_text("utf-8"))["results"]["vstar"]
    assert result["n"] == 3 and result["tool_stats"]["sample_error_rate"] == pytest.approx(1 / 3)

    # resume after losing the last two lines: the odd sample is an error again, never a crash loop
    lines = (out / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (out / "samples.jsonl").write_bytes(lines[0])
    rc, err = run_cli(*args, "--resume")
    assert rc == 0, err
    again = {r["key"]: r for r in read_run(out)}
    assert set(again) == set(rows) and "aspect ratio" in again[odd.key]["trajectory"]["error"]


# -- writing errors --------------------------------------------------------------------------------


class _FailingFile:
    """A samples.jsonl handle whose ``fail_at``-th write stores half its bytes, then hits ENOSPC."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def write(self, data: Any) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            self.inner.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n: int = self.inner.write(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def disk_full_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    def arm(fail_at: int) -> None:
        real_init = SamplesWriter.__init__

        def init(self: SamplesWriter, path: Path) -> None:
            real_init(self, path)
            self._fh = _FailingFile(self._fh, fail_at)  # type: ignore[assignment]

        monkeypatch.setattr(SamplesWriter, "__init__", init)

    return arm


def test_disk_full_stops_in_one_line_keeps_written_samples_and_resume_finishes(
    tmp_path: Path, small_data: Path, disk_full_at: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = write_replay(tmp_path / "replay.json", {f"vstar/{i}": ["\\boxed{A}"] for i in range(N_SAMPLES)})
    out = tmp_path / "run"
    args = eval_args(replay, f"jsonl:{small_data}", out, "--batch_size", "1")
    disk_full_at(2)
    rc, err = run_cli(*args)
    assert rc == 2
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "--resume" in lines[0] and "No space left" in lines[0], err
    data = (out / "samples.jsonl").read_bytes()
    assert data.count(b"\n") == 1 and not data.endswith(b"\n")  # one sample kept, a torn line
    kept = _strict(data.split(b"\n")[0].decode())["sample"]["id"]
    assert f"cannot write sample {str(1 - int(kept))!r} of task vstar" in lines[0]
    assert not (out / "results.json").exists()
    monkeypatch.undo()
    rc, err = run_cli(*args, "--resume")
    assert rc == 0, err
    assert sorted(r["key"] for r in read_run(out)) == [f"vstar/{i}" for i in range(N_SAMPLES)]


def _record(metadata: dict[str, Any]) -> SampleRecord:
    sample = Sample("vstar", "7", "q", "A", ("a.png",), options=("x", "y"), metadata=metadata)
    traj = Trajectory("vstar", "7", "vcot", "s", "p", (Turn(0, "\\boxed{A}"),), "answer", "\\boxed{A}")
    return SampleRecord(sample, traj, SampleScore("vstar", "7", "accuracy", 1.0, "A", ("A",)))


def test_a_record_that_cannot_be_serialised_is_written_as_that_samples_error(tmp_path: Path) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    path = tmp_path / "samples.jsonl"
    with SamplesWriter(path) as writer:
        writer.write(_record({"ok": 1}))
        with pytest.warns(UserWarning, match="sample vstar/7 could not be serialised"):
            writer.write(_record({"loop": circular}))
    first, second = read_samples(path, repair=False)[0], _strict(path.read_text("utf-8").splitlines()[1])
    assert first.score.score == 1.0
    assert second["trajectory"]["end_reason"] == "error"
    assert "could not be written" in second["trajectory"]["error"]
    assert second["score"]["score"] == 0.0 and second["sample"]["id"] == "7"


def test_write_error_names_the_sample(tmp_path: Path) -> None:
    writer = SamplesWriter(tmp_path / "samples.jsonl")
    writer._fh = _FailingFile(writer._fh, 1)  # type: ignore[assignment]
    with pytest.raises(SampleWriteError, match=r"cannot write sample '7' of task vstar .*--resume"):
        writer.write(_record({}))
    writer.close()


# -- records: non-finite numbers and surrogates round-trip ----------------------------------------


def test_non_finite_scores_round_trip_as_strings() -> None:
    for value, text in ((math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")):
        score = SampleScore("t", "1", "anls", value, None, ())
        line = json.dumps(score.to_dict(), allow_nan=False)
        assert _strict(line)["score"] == text
        back = SampleScore.from_dict(json.loads(line)).score
        assert (math.isnan(back) and math.isnan(value)) or back == value


def test_surrogates_are_cleaned_and_the_exact_reply_kept() -> None:
    turn = Turn(0, "a\ud83db\udc00")
    assert turn.reply == "a\ufffdb\ufffd" and json.loads(turn.raw_reply or "") == "a\ud83db\udc00"
    line = json.dumps(turn.to_dict(), ensure_ascii=False, allow_nan=False)
    line.encode("utf-8")  # strict: no surrogate left
    assert Turn.from_dict(json.loads(line)) == turn
    assert Turn(0, "plain \U0001f600").raw_reply is None


def test_media_given_as_a_string_is_refused_by_records() -> None:
    row = {"task": "t", "id": "1", "question": "q", "answer": "a", "media": "img.png"}
    with pytest.raises(TypeError, match=r"Sample.media: expected a list, got str"):
        Sample.from_dict(row)


# -- the protocol: strict tool-call JSON ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("1e400", "out of range"),
        ("9" * 400, "out of range"),
        ("9" * 5000, "out of range"),
        ("[" * (MAX_CALL_DEPTH + 1) + "1" + "]" * (MAX_CALL_DEPTH + 1), "nested deeper than"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ],
)
def test_non_finite_huge_and_deep_arguments_are_execution_errors(value: str, reason: str) -> None:
    parsed = parse_reply(
        f'<tool_call>\n{{"name": "crop_image_normalized", "arguments": {{"x": {value}}}}}\n</tool_call>'
    )
    assert parsed.is_tool_call and parsed.call is None
    assert parsed.error is not None and reason in parsed.error and len(parsed.error) < 200


def test_finite_and_moderately_nested_arguments_still_parse() -> None:
    deep = "[" * (MAX_CALL_DEPTH - 2) + "1" + "]" * (MAX_CALL_DEPTH - 2)
    parsed = parse_reply(
        f'<tool_call>{{"name": "t", "arguments": {{"x": {deep}, "y": 1e300, "z": -0}}}}</tool_call>'
    )
    assert parsed.call is not None and parsed.call.arguments["y"] == 1e300


# -- boxes: what the released tool does with zero-area and inverted boxes -------------------------


def released_padded_box(bbox: list[float], size: tuple[int, int]) -> tuple[float, ...]:
    """The released crop_image_normalized's box arithmetic (fractions, padding 0.1, clamped)."""
    w, h = size
    x1, y1, x2, y2 = (bbox[0] - 0.1, bbox[1] - 0.1, bbox[2] + 0.1, bbox[3] + 0.1)
    return tuple(min(max(0.0, v), 1.0) * s for v, s in zip((x1, y1, x2, y2), (w, h, w, h), strict=True))


@pytest.mark.parametrize("bbox", [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.45, 0.45], [0.3, 0.3, 0.25, 0.25]])
def test_zero_area_and_slightly_inverted_boxes_crop_as_released(bbox: list[float]) -> None:
    image = Image.new("RGB", (640, 480))
    crop, px, _ = crop_image_normalized(image, bbox)
    expected = tuple(round(v) for v in released_padded_box(bbox, image.size))
    assert px == expected and crop.size == (px[2] - px[0], px[3] - px[1])
    assert crop.size[0] > 28 and crop.size[1] > 28


@pytest.mark.parametrize(
    ("bbox", "match"),
    [
        ([0.8, 0.8, 0.2, 0.2], "is empty"),  # released: PIL's crop raises (right < left)
        ([0.5, 0.5, 0.25, 0.5], "is empty"),
        ([0.3, 0.3, 0.15, 0.15], "too small: 32x24"),  # released: the 28 px assert
    ],
)
def test_boxes_inverted_or_too_small_after_padding_are_errors(bbox: list[float], match: str) -> None:
    left, top, right, bottom = released_padded_box(bbox, (640, 480))
    assert right < left or bottom < top or min(round(right) - round(left), round(bottom) - round(top)) <= 28
    with pytest.raises(ToolError, match=match):
        crop_image_normalized(Image.new("RGB", (640, 480)), bbox)


# -- data files ----------------------------------------------------------------------------------


def _media_row(media: Any) -> str:
    return json.dumps({"task": "vstar", "id": "s1", "question": "q", "answer": "A", "media": media})


def test_media_as_a_string_is_one_path(tmp_path: Path) -> None:
    from harness.data import load_jsonl

    path = tmp_path / "d.jsonl"
    path.write_text(_media_row("dir/img.png") + "\n")
    assert load_jsonl(path)[0].media == ("dir/img.png",)


@pytest.mark.parametrize("media", [7, [1, 2], ["ok.png", ""], {"a": 1}, None])
def test_media_of_another_type_names_sample_and_field(tmp_path: Path, media: Any) -> None:
    from harness.data import DataError, load_jsonl

    path = tmp_path / "d.jsonl"
    path.write_text(_media_row(media) + "\n")
    with pytest.raises(DataError, match=r"d.jsonl:1 \(sample 's1'\): field 'media' must be a path or a list"):
        load_jsonl(path)


@pytest.fixture
def jsonl_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"task": "tallyqa", "id": "1", "question": "q", "answer": "2", "media": []}) + "\n"
    )
    yield {"empty": empty, "blank": blank, "other": other}


@pytest.mark.parametrize(
    ("name", "says"),
    [("empty", "has no samples"), ("blank", "has no samples"), ("other", "has tasks tallyqa")],
)
def test_jsonl_without_samples_of_the_task_is_an_error_not_n_0(
    tmp_path: Path, jsonl_files: dict[str, Path], name: str, says: str
) -> None:
    out = tmp_path / "run"
    rc, err = run_cli(
        "eval", "--tasks", "vstar", "--model", "scripted:oracle", "--data", f"jsonl:{jsonl_files[name]}",
        "--output_path", str(out), "--no_progress",
    )  # fmt: skip
    assert rc == 2
    assert f"no sample of task vstar (the file {says}" in err and err.count("\n") == 1, err
    assert not (out / "results.json").exists()


def test_limit_zero_is_an_error_not_n_0(small_data: Path, harness_instance: Harness) -> None:
    from harness.data import DataError
    from harness.run.evaluate import EvalConfig, evaluate

    config = EvalConfig(tasks="vstar", model="scripted:oracle", data=f"jsonl:{small_data}", limit=0)
    with pytest.raises(DataError, match=r"--limit 0: no samples of task vstar"):
        evaluate(config, harness_instance, show_progress=False)


# -- the conversation sent back to a server stays encodable ---------------------------------------


class _SurrogateServer:
    """A policy like an OpenAI-compatible server that sends lone surrogates and, as the openai
    client does, encodes every request as UTF-8 JSON (which fails on a lone surrogate)."""

    name = "surrogate-server"

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def generate(self, requests: list[Any]) -> list[Any]:
        from harness.backends.chat import to_openai_messages
        from harness.loop.policy import Reply

        out = []
        for r in requests:
            body = {"messages": to_openai_messages(r.messages)}
            self.bodies.append(json.dumps(body, ensure_ascii=False).encode("utf-8"))
            out.append(
                Reply(
                    SURROGATE_CALL.replace("<tool_call>", "zoom \ud83d\n<tool_call>")
                    if r.turn == 0
                    else "\\boxed{A}\udc00"
                )
            )
        return out


def test_a_lone_surrogate_from_a_server_is_not_sent_back(
    tmp_path: Path, small_data: Path, harness_instance: Harness
) -> None:
    from harness.run.evaluate import EvalConfig, evaluate

    policy = _SurrogateServer()
    config = EvalConfig(
        tasks="vstar", model="test", data=f"jsonl:{small_data}", output_path=str(tmp_path / "run")
    )
    result = evaluate(config, harness_instance, show_progress=False, policy=policy)
    assert result.results["vstar"].n == N_SAMPLES and len(policy.bodies) == 2 * N_SAMPLES
    # each sample's second request carries its first reply, cleaned (the first request would have
    # raised UnicodeEncodeError here otherwise)
    assert sum("zoom \ufffd" in body.decode() for body in policy.bodies) == N_SAMPLES
    rows = read_run(tmp_path / "run")
    assert [exact_reply(t) for t in rows[0]["trajectory"]["turns"]] == [
        SURROGATE_CALL.replace("<tool_call>", "zoom \ud83d\n<tool_call>"),
        "\\boxed{A}\udc00",
    ]


def test_results_json_non_finite_values_read_back_as_floats(tmp_path: Path) -> None:
    from harness.records import RunResult, TaskResult
    from harness.run.results import write_json_atomic

    task = TaskResult("tallyqa", 1, "accuracy", math.nan, math.inf, 0, tool_stats={"x": -math.inf})
    run = RunResult({"tallyqa": task}, {}, {"tallyqa": 1}, {}, 0, "m", 1.0, "now")
    write_json_atomic(tmp_path / "results.json", run.to_dict())
    data = _strict((tmp_path / "results.json").read_text("utf-8"))
    assert data["results"]["tallyqa"]["value"] == "NaN" and data["results"]["tallyqa"]["stderr"] == "Infinity"
    back = RunResult.from_dict(data).results["tallyqa"]
    assert math.isnan(back.value) and back.stderr == math.inf and back.tool_stats == {"x": -math.inf}


# -- scorers: any final reply gets a score (a raising scorer would lose a finished sample) ---------


@pytest.fixture(scope="module")
def one_sample_per_task(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, Sample]]:
    from harness.plugins import make_plugin_manager

    harness = Harness(make_plugin_manager(autoload=False))
    root = tmp_path_factory.mktemp("one-per-task")
    out = []
    for name in ("vstar", "tallyqa", "infovqa", "mvbench"):
        spec = harness.task(name)
        (root / name).mkdir()
        out.append((spec, spec.synthesize(1, 0, root / name)[0]))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(PROSE, CALLS, VALUES))
def test_every_scoring_mode_scores_any_final_reply(
    one_sample_per_task: list[tuple[Any, Sample]], reply: str
) -> None:
    from harness.plugins import make_plugin_manager
    from harness.scoring.modes import score_trajectory

    harness = Harness(make_plugin_manager(autoload=False))
    for spec, sample in one_sample_per_task:
        traj = Trajectory(sample.task, sample.id, "vcot", "", "", (Turn(0, reply),), "answer", reply)
        for name in ("official", "pixel_reasoner", "anls_paper", "mvbench_official"):
            try:
                score = score_trajectory(spec, sample, traj, harness.scoring_mode(name), name)
            except ValueError as exc:  # only: a mode that does not apply to this task says so
                assert f"applies to {spec.name} only" not in str(exc) and "only, not to task" in str(exc)
                continue
            assert isinstance(score.score, float) and math.isfinite(score.score)
            json.dumps(score.to_dict(), allow_nan=False, ensure_ascii=False).encode("utf-8")


def test_data_file_text_with_surrogates_and_nan_is_run_and_written(tmp_path: Path, small_data: Path) -> None:
    # a data file is outside input too: lone surrogates in its text, NaN in its metadata
    row = json.loads(small_data.read_text("utf-8").splitlines()[0])
    row.update(question="Colour of the \ud83d circle?", metadata={"weight": math.nan, "note\udc00": "x"})
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({**row, "root": str(small_data.parent)}) + "\n", encoding="utf-8")
    replay = write_replay(tmp_path / "replay.json", {"vstar/0": ["\\boxed{A}"]})
    rc, err = run_cli(*eval_args(replay, f"jsonl:{data}", tmp_path / "run"))
    assert rc == 0, err
    (written,) = read_run(tmp_path / "run")
    assert written["sample"]["question"] == "Colour of the \ufffd circle?"
    assert written["sample"]["metadata"] == {"weight": "NaN", "note\ufffd": "x"}
    assert "\ufffd circle?" in written["trajectory"]["prompt"] and written["score"]["score"] == 1.0


def test_results_json_write_error_is_one_line_and_resume_writes_it(
    tmp_path: Path, small_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.run.evaluate

    def disk_full(path: Path, data: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    replay = write_replay(tmp_path / "replay.json", {f"vstar/{i}": ["\\boxed{A}"] for i in range(N_SAMPLES)})
    args = eval_args(replay, f"jsonl:{small_data}", tmp_path / "run")
    with monkeypatch.context() as patch:
        patch.setattr(harness.run.evaluate, "write_json_atomic", disk_full)
        rc, err = run_cli(*args)
    assert rc == 2 and err.count("\n") == 1, err
    assert f"all {N_SAMPLES} samples are in" in err and "--resume" in err and "No space left" in err
    before = (tmp_path / "run" / "samples.jsonl").read_bytes()
    rc, err = run_cli(*args, "--resume")
    assert rc == 0, err
    assert (tmp_path / "run" / "samples.jsonl").read_bytes() == before  # nothing rerun
    assert (
        _strict((tmp_path / "run" / "results.json").read_text("utf-8"))["results"]["vstar"]["n"] == N_SAMPLES
    )
