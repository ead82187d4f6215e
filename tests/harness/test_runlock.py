"""One writer per run folder (harness/run/runlock.py): a second eval, resume, merge or rescore on a
folder in use is refused in one line naming the holder and writes nothing; a lock left by a dead
process is taken over and said; results files get the umask's mode, not mkstemp's 0600."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.plugins import Harness, make_plugin_manager
from harness.run import runlock
from harness.run.evaluate import EvalConfig, evaluate
from harness.run.merge import MergeError, merge
from harness.run.results import RunDirError, read_samples
from harness.run.runlock import LOCK_NAME, LockInfo, RunLock, RunLockError

CONFIG = EvalConfig(tasks="vstar", model="scripted:oracle", limit=3, batch_size=2)


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness(make_plugin_manager(autoload=False))


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped) on this host."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_lock(folder: Path, pid: int, host: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    info = LockInfo(pid, host or socket.gethostname(), "2026-01-01T00:00:00Z", "eval")
    (folder / LOCK_NAME).write_text(info.to_json() + "\n")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------------- the lock itself


def test_a_second_lock_is_refused_in_one_line_naming_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run", "eval"), pytest.raises(RunLockError) as info:
        RunLock(tmp_path / "run", "merge").acquire()
    message = str(info.value)
    assert "\n" not in message
    assert f"pid {os.getpid()}@{socket.gethostname()}" in message and "since 20" in message
    assert "harness eval" in message and str(tmp_path / "run") in message


def test_release_removes_the_lock_and_the_folder_it_made_if_left_empty(tmp_path: Path) -> None:
    with RunLock(tmp_path / "new", "eval"):
        assert (tmp_path / "new" / LOCK_NAME).is_file()
    assert not (tmp_path / "new").exists()
    with RunLock(tmp_path / "used", "eval"):
        (tmp_path / "used" / "samples.jsonl").write_text("")
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["samples.jsonl"]
    (tmp_path / "existing").mkdir()
    with RunLock(tmp_path / "existing", "eval"):
        pass
    assert (tmp_path / "existing").is_dir()  # not ours to remove
    with RunLock(tmp_path / "existing", "eval"):  # released: free again
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_said(tmp_path: Path) -> None:
    pid = dead_pid()
    stale_lock(tmp_path, pid)
    said: list[str] = []
    with RunLock(tmp_path, "eval", notify=said.append) as lock:
        held = LockInfo.parse((tmp_path / LOCK_NAME).read_text())
        assert held == lock.info and held is not None and held.pid == os.getpid()
    assert len(said) == 1 and f"pid {pid}@{socket.gethostname()}" in said[0]
    assert "taking over" in said[0] and "no longer running" in said[0]


def test_a_folder_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("mine")
    with pytest.raises(RunLockError, match="is a file"):
        RunLock(tmp_path / "f", "eval").acquire()
    with pytest.raises(RunLockError, match="cannot create the folder"):
        RunLock(tmp_path / "f" / "sub", "eval").acquire()
    assert (tmp_path / "f").read_text() == "mine"


@pytest.fixture
def no_flock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A filesystem without flock (some FUSE / Lustre mounts): the O_EXCL fallback."""
    import fcntl

    def refuse(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    yield


@pytest.mark.usefixtures("no_flock")
def test_without_flock_exclusive_creation_refuses_live_holders_and_takes_over_dead_ones(
    tmp_path: Path,
) -> None:
    with RunLock(tmp_path / "a", "eval"):
        with pytest.raises(RunLockError, match=f"pid {os.getpid()}@"):
            RunLock(tmp_path / "a", "eval").acquire()
        assert runlock.holder(tmp_path / "a") is not None
    assert not (tmp_path / "a").exists()
    pid = dead_pid()
    stale_lock(tmp_path / "b", pid)
    said: list[str] = []
    with RunLock(tmp_path / "b", "eval", notify=said.append):
        assert LockInfo.parse((tmp_path / "b" / LOCK_NAME).read_text()).pid == os.getpid()  # type: ignore[union-attr]
    assert len(said) == 1 and f"pid {pid}@" in said[0]
    stale_lock(tmp_path / "c", pid, host="elsewhere")  # cannot tell if it lives: refused, with the way out
    with pytest.raises(RunLockError, match=rf"pid {pid}@elsewhere.*delete .*{LOCK_NAME}"):
        RunLock(tmp_path / "c", "eval").acquire()


# ---------------------------------------------------------------------------- the commands


def test_eval_into_a_locked_folder_is_refused_and_writes_nothing(tmp_path: Path, harness: Harness) -> None:
    out = tmp_path / "run"
    evaluate(dataclasses.replace(CONFIG, output_path=str(out)), harness, show_progress=False)
    before = snapshot(out)
    with RunLock(out, "eval"):
        for resume in (False, True):
            config = dataclasses.replace(CONFIG, output_path=str(out), resume=resume, model="scripted:random")
            with pytest.raises(RunLockError, match="is in use by harness eval"):
                evaluate(config, harness, show_progress=False)
        assert {k: v for k, v in snapshot(out).items() if k != LOCK_NAME} == before
    with RunLock(tmp_path / "fresh", "eval"):
        with pytest.raises(RunLockError):
            evaluate(dataclasses.replace(CONFIG, output_path=str(tmp_path / "fresh")), harness)
        assert [p.name for p in (tmp_path / "fresh").iterdir()] == [LOCK_NAME]


def test_eval_output_path_naming_a_file_is_one_line(tmp_path: Path, harness: Harness) -> None:
    (tmp_path / "f").write_text("mine")
    with pytest.raises(RunDirError, match=r"--output_path \S+ is a file") as info:
        evaluate(dataclasses.replace(CONFIG, output_path=str(tmp_path / "f")), harness)
    assert "\n" not in str(info.value) and (tmp_path / "f").read_text() == "mine"
    proc = spawn(
        "eval", "--tasks", "vstar", "--model", "scripted:oracle", "--output_path", str(tmp_path / "f")
    )
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 2 and err.count("\n") == 1 and "is a file" in err, err


def test_merge_and_rescore_refuse_a_locked_folder(tmp_path: Path, harness: Harness) -> None:
    from harness_leaderboards.rescore import rescore

    run = tmp_path / "run"
    evaluate(dataclasses.replace(CONFIG, output_path=str(run)), harness, show_progress=False)
    before = snapshot(run)
    with RunLock(run, "eval"):
        with pytest.raises(RunLockError, match="in use by harness eval"):
            rescore(run, "official", harness)
        with pytest.raises(MergeError, match="a run is still writing it"):
            merge([run], tmp_path / "M", harness=harness)  # an input still being written
        assert not (tmp_path / "M").exists()
    with RunLock(tmp_path / "M", "merge"), pytest.raises(RunLockError, match="in use by harness merge"):
        merge([run], tmp_path / "M", harness=harness)
    assert snapshot(run) == before
    assert rescore(run, "official", harness).changed == 0  # free again


def test_results_files_get_the_umask_mode(tmp_path: Path, harness: Harness) -> None:
    from harness_leaderboards.rescore import rescore
    from harness_tasks.synthetic import atomic_write_bytes

    old = os.umask(0o027)
    try:
        run = tmp_path / "run"
        evaluate(dataclasses.replace(CONFIG, output_path=str(run)), harness, show_progress=False)
        merge([run], tmp_path / "M", harness=harness)
        rescore(run, "official", harness)
        atomic_write_bytes(tmp_path / "data.bin", b"x")
        os.umask(0o002)
        merge([run], tmp_path / "M2", harness=harness)
    finally:
        os.umask(old)
    files = [run / n for n in ("results.json", "samples.jsonl", "run_config.json")]
    files += [run / "results.official.json", run / "samples.official.jsonl", tmp_path / "data.bin"]
    files += [tmp_path / "M" / n for n in ("results.json", "samples.jsonl", "run_config.json")]
    assert {str(f): oct(f.stat().st_mode & 0o777) for f in files} == {str(f): "0o640" for f in files}
    assert oct((tmp_path / "M2" / "results.json").stat().st_mode & 0o777) == "0o664"


# ---------------------------------------------------------------------------- two processes at once


def spawn(*args: str) -> subprocess.Popen[str]:
    """``python -m harness ARGS --no_progress`` with its stderr captured."""
    cmd = [sys.executable, "-m", "harness", *args, "--no_progress"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_concurrent_evals_on_one_folder(tmp_path: Path) -> None:
    """A runs slowly; B (another model) and C (a --resume of A) start while it runs: both are
    refused in one line naming A, write nothing, and A finishes with every sample once."""
    out = tmp_path / "run"
    common = ["--tasks", "vstar", "--limit", "12", "--batch_size", "1", "--output_path", str(out)]
    slow = ["--model", "scripted:oracle", "--model_args", "delay=0.6"]
    first = spawn("eval", *slow, *common)
    samples = out / "samples.jsonl"
    try:
        wait_for(lambda: samples.exists() and samples.stat().st_size > 0)
        config_before = (out / "run_config.json").read_bytes()
        others = [
            spawn("eval", "--model", "scripted:random", *common),
            spawn("eval", *slow, "--resume", *common),
        ]
        outcomes = [(p.wait(timeout=120), p.communicate()[1]) for p in others]
        assert first.poll() is None, "the first run ended before the others tried: raise its delay"
        assert (out / "run_config.json").read_bytes() == config_before
    finally:
        rc = first.wait(timeout=120)
    assert rc == 0, first.communicate()[1]
    for code, err in outcomes:
        assert code == 2 and err.count("\n") == 1, err
        assert f"is in use by harness eval, pid {first.pid}@{socket.gethostname()}, since " in err
    records = read_samples(samples)
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys)) == 12
    assert all(r.score.score == 1.0 for r in records)  # the oracle's lines only, no random ones
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "scripted:oracle" and results["n_samples"] == {"vstar": 12}
    assert not (out / LOCK_NAME).exists()


def test_a_lock_kept_by_a_child_of_a_dead_holder_is_reported_as_such(tmp_path: Path) -> None:
    """A forked worker inherits the lock: the folder stays locked after its parent dies, and the
    refusal says that the pid named has ended."""
    code = (
        "import os, sys, time\n"
        "from harness.run.runlock import RunLock\n"
        f"RunLock({str(tmp_path)!r}, 'eval').acquire()\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    null = os.open(os.devnull, os.O_RDWR)\n"
        "    os.dup2(null, 1)\n"
        "    os.dup2(null, 2)\n"  # let the parent's pipes close
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(child, flush=True)\n"
        "os._exit(0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    child = int(proc.stdout.strip())
    try:
        with pytest.raises(
            RunLockError, match=r"pid \d+@\S+, since .*that pid has ended; a process it started still holds"
        ):
            RunLock(tmp_path, "eval").acquire()
    finally:
        os.kill(child, 9)
    wait_for(lambda: runlock.holder(tmp_path) is None)
    said: list[str] = []
    with RunLock(tmp_path, "eval", notify=said.append):
        pass
    assert len(said) == 1 and "taking over" in said[0]
