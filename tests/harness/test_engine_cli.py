"""The asynchronous rollout engine end to end through ``harness eval`` (the real CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

TIMING = ("seconds",)


def _strip_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def _samples(out: Path) -> list[str]:
    """samples.jsonl lines without timing fields, in a fixed order (files list in finish order)."""
    lines = (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    return sorted(json.dumps(_strip_timing(json.loads(x)), sort_keys=True) for x in lines)


def test_random_run_is_identical_with_batch_1_and_16_and_any_workers(tmp_path: Path) -> None:
    runs = []
    for batch, workers in ((1, 1), (16, 3)):
        out = tmp_path / f"b{batch}"
        code = main(
            [
                "eval",
                "--tasks=all",
                "--model=scripted:random",
                "--limit=4",
                "--seed=3",
                f"--batch_size={batch}",
                f"--workers={workers}",
                "--no_progress",
                "--output_path",
                str(out),
            ]
        )
        assert code == 0
        runs.append(_samples(out))
    assert len(runs[0]) > 4
    assert runs[0] == runs[1]
    turns = [json.loads(x)["trajectory"]["turns"] for x in runs[0]]
    assert any(len(t) > 1 for t in turns)  # some episodes used a tool: multi-turn order is exercised


def test_oracle_scores_one_on_every_task(tmp_path: Path) -> None:
    out = tmp_path / "oracle"
    assert main(["eval", "--tasks=all", "--model=scripted:oracle", "--limit=5", "--no_progress",
                 "--output_path", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())["results"]
    assert results and all(r["value"] == 1.0 for r in results.values()), results


def test_workers_flag_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--tasks=vstar", "--model=scripted:oracle", "--workers=0"])
    assert "--workers: must be an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "expected"), [((), None), (("--workers=3",), 3)])
def test_workers_flag_reaches_the_worker_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: tuple[str, ...], expected: int | None
) -> None:
    import harness.loop.rollout as rollout_module
    from harness.data.media_pool import default_workers, worker_pool

    sizes: list[int | None] = []

    def recording_pool(workers: int | None = None, name: str = "harness-media") -> Any:
        sizes.append(workers)
        return worker_pool(workers, name)

    monkeypatch.setattr(rollout_module, "worker_pool", recording_pool)
    out = tmp_path / "run"
    main(["eval", "--tasks=vstar", "--model=scripted:oracle", "--limit=2", f"--output_path={out}", *flag])
    assert sizes == [expected if expected is not None else default_workers()]
    assert json.loads((out / "run_config.json").read_text())["workers"] == expected
