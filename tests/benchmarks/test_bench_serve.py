"""``harness serve`` under load (run: ``python -m pytest tests/benchmarks/test_bench_serve.py --benchmark-only -s``).

The real CLI (``--model scripted:random``: no model cost, so this is the HTTP stack's own) in a
subprocess; ``BENCH_CLIENTS`` (default 1000) clients connect at the same moment, each sends one
chat completion and reads the answer. Printed: wall time, answers, connection errors (resets,
refusals), the server's peak RSS (VmHWM) and the same after five 13000x13000 1-bit PNGs (20 KB
each) in one body. ``BENCH_SERVE_TREE=DIR`` runs the server from another source tree (e.g. an
older commit's ``git archive``, put first on ``PYTHONPATH``) for a before/after comparison.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import time
from typing import Any

from PIL import Image

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
TREE = os.environ.get("BENCH_SERVE_TREE")


def start() -> tuple[subprocess.Popen[str], tuple[str, int]]:
    cmd = [sys.executable, "-m", "harness", "serve", "--model", "scripted:random", "--port", "0"]
    env = dict(os.environ, PYTHONPATH=TREE) if TREE else None
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=TREE
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    host_port = line.split("http://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    return proc, (host, int(port))


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        kib = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
    return kib / 1024


def request(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


async def client(address: tuple[str, int], body: bytes) -> int:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        return int(head.split()[1])
    finally:
        writer.close()


def test_bench_serve_concurrent_clients(benchmark: Any) -> None:
    proc, address = start()
    try:
        body = request({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})

        async def burst() -> list[int | BaseException]:
            return await asyncio.gather(
                *(client(address, body) for _ in range(CLIENTS)), return_exceptions=True
            )

        start_time = time.perf_counter()
        results = benchmark.pedantic(lambda: asyncio.run(burst()), rounds=1, iterations=1)
        wall = time.perf_counter() - start_time
        errors = [r for r in results if not isinstance(r, int)]
        ok = sum(r == 200 for r in results)
        rss = peak_rss_mib(proc.pid)
        buf = io.BytesIO()
        Image.new("1", (13000, 13000)).save(buf, format="PNG", optimize=True)
        url = f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"
        bombs = {
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}] * 5}]
        }
        status = asyncio.run(client(address, request(bombs)))
        info = {
            "clients": CLIENTS,
            "wall_s": round(wall, 2),
            "answered_200": ok,
            "connection_errors": len(errors),
            "peak_rss_mib": round(rss, 1),
            "bomb_status": status,
            "bomb_png_bytes": len(buf.getvalue()),
            "peak_rss_mib_after_bombs": round(peak_rss_mib(proc.pid), 1),
        }
        benchmark.extra_info.update(info)
        print(f"\nharness serve, {CLIENTS} simultaneous clients: {info}")
        assert not errors and ok == CLIENTS and status == 413
    finally:
        proc.terminate()
        proc.wait(timeout=30)
