"""``harness leaderboard | view | rescore`` through the real entry point (``python -m harness``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300
    )


def test_leaderboard_view_and_rescore(scripted_runs: dict[str, Path], tmp_path: Path) -> None:
    root = scripted_runs["oracle"].parent
    out = tmp_path / "report"
    proc = harness("leaderboard", str(root / "*"), str(tmp_path / "missing"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "leaderboard.html" in proc.stdout
    assert f"harness leaderboard: warning: {tmp_path / 'missing' / 'results.json'}: missing" in proc.stderr
    assert (out / "leaderboard.html").stat().st_size > 10_000

    proc = harness("view", str(scripted_runs["oracle"]), "--out", str(tmp_path / "view"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "view" / "oracle.html").exists()

    run = tmp_path / "random"
    shutil.copytree(scripted_runs["random"], run)
    proc = harness("rescore", str(run), "--scoring", "official")
    assert proc.returncode == 0, proc.stderr
    assert "0 scores changed" in proc.stdout
    assert (run / "results.official.json").exists() and (run / "samples.official.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["leaderboard", "{tmp}/nothing", "--out", "{tmp}/out"], "no readable results file"),
        (["leaderboard", "{oracle}", "--out", "{tmp}/file.txt"], "is not a folder"),
        (["view", "{tmp}/nothing", "--out", "{tmp}/out"], "no readable samples.jsonl"),
        (["rescore", "{tmp}/nothing", "--scoring", "official"], "no such file"),
        (["rescore", "{oracle}", "--scoring", "nope"], "unknown scoring mode 'nope'; valid modes:"),
    ],
)
def test_user_errors_are_one_line_with_status_2(
    scripted_runs: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    filled = [a.format(tmp=tmp_path, oracle=scripted_runs["oracle"]) for a in args]
    proc = harness(*filled)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
