"""kill -9 soak: a slowed scripted run (``harness eval`` through the real entry point) is killed at
random points, resumed each time, and finally compared with an uninterrupted run: every sample
exactly once, the same records and the same metrics. Every lock a killed run left is taken over,
and said, by the run after it."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.plugins import Harness, make_plugin_manager
from harness.run.evaluate import EvalConfig, evaluate
from harness.run.runlock import LOCK_NAME, LockInfo

KILLS = 5
SEED = 20260
TASKS, LIMIT, MODEL = "vstar,tallyqa", 6, "scripted:random"
TOTAL = 2 * LIMIT
VOLATILE = {"config", "fingerprint", "wall_seconds", "created", "git"}  # delay=..., clock, revision
TAKEOVER = re.compile(r"taking over the lock left by harness eval, pid (\d+)@")


def complete_lines(path: Path) -> list[str]:
    """samples.jsonl without a torn last line (what --resume keeps)."""
    if not path.exists():
        return []
    data = path.read_text(encoding="utf-8")
    return data[: data.rfind("\n") + 1].splitlines()


def comparable(run: Path) -> tuple[dict[str, Any], list[str]]:
    results = json.loads((run / "results.json").read_text())
    return {k: v for k, v in results.items() if k not in VOLATILE}, sorted(
        complete_lines(run / "samples.jsonl")
    )


def spawn(out: Path) -> subprocess.Popen[str]:
    argv = ["eval", "--tasks", TASKS, "--model", MODEL, "--model_args", "delay=0.15", "--seed", "1"]
    argv += [
        "--limit",
        str(LIMIT),
        "--batch_size",
        "2",
        "--output_path",
        str(out),
        "--resume",
        "--no_progress",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def test_kill_9_soak_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    baseline = tmp_path / "uninterrupted"
    config = EvalConfig(tasks=TASKS, model=MODEL, seed=1, limit=LIMIT, output_path=str(baseline))
    evaluate(config, Harness(make_plugin_manager(autoload=False)), show_progress=False)

    out = tmp_path / "killed"
    samples = out / "samples.jsonl"
    rng = random.Random(SEED)
    killed, left_locks, stderr = 0, [], []
    for _ in range(KILLS):
        proc = spawn(out)
        target = rng.randrange(0, TOTAL - 1)  # kill once this many samples are on disk (0: while starting)
        deadline = time.monotonic() + 120
        while proc.poll() is None and len(complete_lines(samples)) < target:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=60)
        stderr.append(proc.communicate()[1])
        assert rc in (0, -signal.SIGKILL), stderr[-1]
        killed += rc == -signal.SIGKILL
        keys = [json.loads(line)["key"] for line in complete_lines(samples)]
        assert len(keys) == len(set(keys)), "a sample was written twice"
        if (out / LOCK_NAME).exists():  # the killed run held the lock: the next one must take it over
            info = LockInfo.parse((out / LOCK_NAME).read_text())
            assert info is not None
            if not left_locks or left_locks[-1] != info.pid:
                assert (
                    info.pid == proc.pid
                )  # else it is still the lock an earlier kill left (killed while starting)
                left_locks.append(info.pid)
    final = spawn(out)
    assert final.wait(timeout=120) == 0, final.communicate()[1]
    stderr.append(final.communicate()[1])

    assert killed >= 3, f"only {killed} of {KILLS} runs were interrupted"
    assert left_locks, "no kill landed while the lock was held"
    taken_over = [int(pid) for err in stderr for pid in TAKEOVER.findall(err)]
    assert taken_over == left_locks  # each stale lock taken over once, in order, and said
    assert not (out / LOCK_NAME).exists()
    results, lines = comparable(out)
    want_results, want_lines = comparable(baseline)
    assert len(lines) == len({json.loads(line)["key"] for line in lines}) == TOTAL
    assert lines == want_lines  # every record, byte for byte
    assert results == want_results  # every metric, stderr, breakdown and tool statistic
