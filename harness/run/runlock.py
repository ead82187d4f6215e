"""One writer per run folder: an exclusive lock held for the life of a run.

``harness eval`` (fresh, ``--resume`` or ``--shard``), ``harness merge`` (its output folder) and
``harness rescore`` take :class:`RunLock` on the folder they write. The lock is the file
``DIR/.harness.lock``, locked with ``flock(LOCK_EX | LOCK_NB)`` and holding the holder's pid, host,
start time and command (JSON). A second process is refused with a one-line :class:`RunLockError`
naming the holder (``pid@host``, since when) before it writes anything.

Stale locks: the kernel drops a ``flock`` when its holder dies (``kill -9`` included), so a lock
file whose lock is free was left by a process that is gone; the next run takes it over and says
so on stderr, naming the pid that left it. Where the filesystem has no ``flock`` (``ENOLCK``,
``ENOSYS``, ``EOPNOTSUPP``: some FUSE and Lustre mounts) the lock falls back to creating the file
with ``O_EXCL``; then a lock left by a dead process *on the same host* is taken over (the pid is
checked), and one left on another host is refused with the path to delete by hand. On NFS,
``flock`` is emulated with POSIX locks, which the server enforces across hosts.

Releasing removes the lock file, so a finished run folder holds none; a folder the lock created
is removed again when the run leaves it empty (a refused or failed start leaves no empty folder).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.run.results import RunDirError

LOCK_NAME = ".harness.lock"
# flock errors that mean "this filesystem cannot lock", not "someone holds it".
NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
ATTEMPTS = 20  # lock files replaced under us (released, taken over) before giving up


class RunLockError(RunDirError):
    """The run folder is locked by another process, or cannot be locked; one line."""


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds (or held) a run folder's lock."""

    pid: int
    host: str
    started: str  # ISO 8601, UTC
    command: str

    def to_json(self) -> str:
        return json.dumps(
            {"pid": self.pid, "host": self.host, "started": self.started, "command": self.command}
        )

    @classmethod
    def parse(cls, text: str) -> LockInfo | None:
        """The holder written in a lock file; ``None`` for an empty or unreadable one."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"]))
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()

    def describe(self) -> str:
        return f"harness {self.command}, pid {self.pid}@{self.host}, since {self.started}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie counts as ended)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read(fd: int) -> str:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


class RunLock:
    """Exclusive lock on ``folder`` for one run; use as a context manager.

    ``command`` names the holder in refusals (``eval``, ``merge``, ``rescore``). ``create``
    makes the folder when missing (and removes it on release if the run left it empty).
    ``notify`` receives the one-line notice of a stale lock taken over (default: stderr).
    """

    def __init__(
        self,
        folder: Path | str,
        command: str,
        *,
        create: bool = True,
        notify: Callable[[str], Any] = _stderr,
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.create = create
        self.notify = notify
        self._fd: int | None = None
        self._created_folder = False
        self.info: LockInfo | None = None

    # ------------------------------------------------------------------ acquire / release

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise RunLockError(f"{self.folder}: this lock is already held")
        self._make_folder()
        try:
            self._fd = self._acquire()
        except BaseException:
            self._remove_empty_folder()
            raise
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)  # while still locked: nobody can take a lock being removed
        finally:
            os.close(fd)
            self._remove_empty_folder()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    # ------------------------------------------------------------------ internals

    def _make_folder(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise RunLockError(f"{self.folder}: exists and is a file, not a folder")
        if self.folder.is_dir():
            return
        if not self.create:
            raise RunLockError(f"{self.folder}: no such folder")
        try:
            self.folder.mkdir(parents=True)
        except FileExistsError:
            if not self.folder.is_dir():  # a file appeared, or a parent is a file
                raise RunLockError(
                    f"{self.folder}: cannot create the folder (a file is in the way)"
                ) from None
            return  # another process made it at the same time: the lock decides
        except OSError as exc:
            raise RunLockError(f"{self.folder}: cannot create the folder ({exc.strerror})") from None
        self._created_folder = True

    def _remove_empty_folder(self) -> None:
        if self._created_folder:
            self._created_folder = False
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only succeeds when empty

    def _me(self) -> LockInfo:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        return LockInfo(os.getpid(), socket.gethostname(), now, self.command)

    def _refuse(self, holder: LockInfo | None) -> RunLockError:
        if holder is None:
            who = "another process (it has not written its name yet)"
        else:
            who = holder.describe()
            if holder.local and not pid_alive(holder.pid):
                who += " (that pid has ended; a process it started still holds the lock)"
        return RunLockError(
            f"run folder {self.folder} is in use by {who}; wait for it to finish or use another folder"
        )

    def _took_over(self, previous: LockInfo | None) -> None:
        if previous is None:
            return  # an empty file: its maker died before writing itself, or it is ours
        self.notify(
            f"harness: run folder {self.folder}: taking over the lock left by {previous.describe()}, "
            "which is no longer running"
        )

    def _open_error(self, exc: OSError) -> RunLockError:
        return RunLockError(f"{self.path}: cannot create the lock file ({exc.strerror})")

    def _acquire(self) -> int:
        import fcntl

        for _ in range(ATTEMPTS):
            try:
                fd, created = _open_or_create(self.path)
            except OSError as exc:
                raise self._open_error(exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = LockInfo.parse(_read(fd))
                os.close(fd)
                raise self._refuse(holder) from None
            except OSError as exc:
                if exc.errno in NO_FLOCK and created:  # the exclusive creation is the lock
                    self._write(fd)
                    return fd
                os.close(fd)
                if exc.errno in NO_FLOCK:
                    return self._acquire_exclusive()
                raise self._open_error(exc) from None
            if not _same_file(fd, self.path):  # released (unlinked) between our open and flock
                os.close(fd)
                continue
            previous = LockInfo.parse(_read(fd))
            self._write(fd)
            self._took_over(previous)
            return fd
        raise RunLockError(f"{self.path}: the lock file keeps changing; is another run starting there?")

    def _acquire_exclusive(self) -> int:
        """Lock by creating the file with ``O_EXCL`` (filesystems without ``flock``)."""
        for _ in range(ATTEMPTS):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                pass
            except OSError as exc:
                raise self._open_error(exc) from None
            else:
                self._write(fd)
                return fd
            try:
                holder = LockInfo.parse(self.path.read_text(encoding="utf-8", errors="replace"))
            except FileNotFoundError:
                continue  # released meanwhile
            if holder is None or not holder.local:
                error = self._refuse(holder)
                raise RunLockError(
                    f"{error}; if no harness process uses it any more, delete {self.path}"
                ) from None
            if pid_alive(holder.pid):
                raise self._refuse(holder)
            # Stale: move it aside under a name only this process uses; renaming is atomic, so of
            # two processes taking over the same stale file only one moves it.
            aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue
            moved = LockInfo.parse(aside.read_text(encoding="utf-8", errors="replace"))
            if moved != holder:  # we moved a newer, live lock: put it back (unless replaced) and give up
                with contextlib.suppress(OSError):
                    os.link(aside, self.path)
                aside.unlink(missing_ok=True)
                raise self._refuse(moved)
            aside.unlink(missing_ok=True)
            self._took_over(holder)
        raise RunLockError(f"{self.path}: the lock file keeps changing; is another run starting there?")

    def _write(self, fd: int) -> None:
        self.info = self._me()
        os.ftruncate(fd, 0)
        os.pwrite(fd, (self.info.to_json() + "\n").encode(), 0)
        os.fsync(fd)


def _open_or_create(path: Path) -> tuple[int, bool]:
    """(descriptor, whether this call created the file)."""
    flags = os.O_RDWR | os.O_CLOEXEC
    for _ in range(ATTEMPTS):
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            pass
        try:
            return os.open(path, flags), False
        except FileNotFoundError:
            continue  # removed between the two opens
    raise OSError(errno.EAGAIN, "the lock file keeps appearing and disappearing")


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def holder(folder: Path | str) -> str | None:
    """Who holds ``folder``'s lock now, described (``None`` when nobody does); takes nothing.

    For readers (``harness merge`` checks its input folders) that must not read a folder while
    a run is writing it.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            info = LockInfo.parse(_read(fd))
            return info.describe() if info is not None else "another process"
        except OSError as exc:
            if exc.errno not in NO_FLOCK:
                raise
            info = LockInfo.parse(_read(fd))
            if info is None or not info.local or pid_alive(info.pid):
                return info.describe() if info is not None else "another process"
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
