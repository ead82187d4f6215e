"""A local OpenAI-compatible stand-in server with simulated decode latency (for the scheduling
benchmark): no model, just the timing of one.

Each request's reply takes ``tokens * token_time`` seconds, ``tokens`` drawn from a long-tailed
length mix (85% of replies 50-300 tokens, 15% 1000-2048) by a hash of the episode and turn, so
the same episode gets the same latencies in every run and under any scheduling. An episode has
1 to 5 turns (also by hash): every turn but the last replies with a crop tool call, the last
with a boxed answer. The episode is recognised by the request's ``seed`` (the harness sends
``sample seed + turn``) and the turn by the number of assistant messages.

Run it in its own process (``python engine_standin.py TOKEN_TIME`` prints its port; ``GET
/stats`` returns the episodes in order of first arrival and the most requests seen at once), as a
real server is, so that its JSON work does not compete with the harness for the GIL.

``ideal_makespan`` is the wall time of the ideal continuous schedule of the same latencies:
``slots`` episodes in flight, each moving on the instant its own reply is back, a finished one
replaced at once, with zero harness time.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

CROP = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.2, 0.2, 0.6, 0.6], "target_image": 1}}\n</tool_call>'


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def n_turns(episode: int) -> int:
    return 1 + int(_unit("turns", episode) * 5)


def reply_tokens(episode: int, turn: int) -> int:
    u, v = _unit("long", episode, turn), _unit("len", episode, turn)
    return 1000 + int(v * 1049) if u < 0.15 else 50 + int(v * 251)


def ideal_makespan(episodes: Iterable[float], slots: int) -> float:
    """Makespan of ``episodes`` (total latencies, in admission order) on ``slots`` slots."""
    free = [0.0] * slots
    end = 0.0
    for length in episodes:
        start = heapq.heappop(free)
        heapq.heappush(free, start + length)
        end = max(end, start + length)
    return end


@dataclass
class StandIn:
    """The server: ``start()`` it, point ``openai:`` at ``url``, ``stop()`` it."""

    token_time: float = 0.001
    host: str = "127.0.0.1"
    port: int = 0
    first_seen: dict[int, int] = field(default_factory=dict)  # episode -> arrival rank
    max_in_flight: int = 0
    _in_flight: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> StandIn:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="standin-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def ideal(self, slots: int) -> float:
        """The ideal continuous schedule of every episode seen, in order of first arrival."""
        order = sorted(self.first_seen, key=self.first_seen.__getitem__)
        return ideal_makespan(
            (sum(reply_tokens(e, t) for t in range(n_turns(e))) * self.token_time for e in order), slots
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length)) if length else {}
                if head.startswith(b"GET /stats"):
                    order = sorted(self.first_seen, key=self.first_seen.__getitem__)
                    payload: dict[str, object] = {"episodes": order, "max_in_flight": self.max_in_flight}
                else:
                    payload = await self._complete(body)
                data = json.dumps(payload).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _complete(self, body: dict[str, object]) -> dict[str, object]:
        messages = body.get("messages") or []
        assert isinstance(messages, list)
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        episode = int(body.get("seed") or 0) - turn  # type: ignore[call-overload]
        self.first_seen.setdefault(episode, len(self.first_seen))
        tokens = reply_tokens(episode, turn)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            await asyncio.sleep(tokens * self.token_time)
        finally:
            self._in_flight -= 1
        text = CROP if turn < n_turns(episode) - 1 else "The answer is \\boxed{A}."
        return {
            "id": f"standin-{episode}-{turn}",
            "object": "chat.completion",
            "created": 0,
            "model": str(body.get("model")),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": tokens, "total_tokens": 100 + tokens},
        }


class Remote:
    """The stand-in server in a child process (``with Remote(token_time) as server: ...``)."""

    def __init__(self, token_time: float) -> None:
        self.token_time = token_time

    def __enter__(self) -> Remote:
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(self.token_time)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def stats(self) -> dict[str, object]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as response:
            data: dict[str, object] = json.loads(response.read())
        return data

    def ideal(self, slots: int) -> float:
        episodes = self.stats()["episodes"]
        assert isinstance(episodes, list)
        return ideal_makespan(
            (sum(reply_tokens(e, t) for t in range(n_turns(e))) * self.token_time for e in episodes), slots
        )

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


if __name__ == "__main__":
    import sys

    server = StandIn(token_time=float(sys.argv[1])).start()
    print(server.port, flush=True)
    threading.Event().wait()
