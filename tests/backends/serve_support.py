"""Helpers of the ``harness serve`` tests: the real CLI in a subprocess, raw HTTP, the server's RSS."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Served:
    """A running ``harness serve``: its base URL (``.../v1``) and process."""

    url: str
    proc: subprocess.Popen[str]

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) of the server process, from /proc/PID/status, in KiB."""
        out = {}
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
        return out


@contextmanager
def harness_serve(
    args: Sequence[str], env: Mapping[str, str] | None = None, start_timeout: float = 180
) -> Iterator[Served]:
    """``python -m harness serve ARGS`` (add ``--port 0``); yields once it printed its URL.

    stderr goes to a file (a pipe nobody reads would fill up and block the server's logging).
    """
    environ = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable, "-m", "harness", "serve", *args]
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=environ)
        try:
            deadline, line = time.monotonic() + start_timeout, ""
            while "http://" not in line:
                ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready or proc.poll() is not None:
                    proc.kill()
                    proc.wait()
                    stderr.seek(0)
                    raise AssertionError(f"harness serve did not start:\n{stderr.read()}")
                line = proc.stdout.readline() if proc.stdout else ""
            yield Served("http://" + line.split("http://", 1)[1].split()[0], proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_reply(sock: socket.socket) -> RawReply:
    """One HTTP/1.1 response from ``sock`` (Content-Length framed, as the server sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection without a response (got {data[:200]!r})")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawReply(status, headers, rest[:length])


def raw_request(address: tuple[str, int], data: bytes, timeout: float = 30) -> RawReply:
    """Send ``data`` as is (a whole request, head and body) on a new connection; read the reply."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        return read_reply(sock)


def post(path: str, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """A POST request's bytes, with Content-Length unless ``headers`` sets its own."""
    head = {
        "Host": "test",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **(headers or {}),
    }
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"POST {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1") + body


def get(path: str, headers: Mapping[str, str] | None = None) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "test", **(headers or {})}.items())
    return f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1")
