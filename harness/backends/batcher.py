"""A dynamic batcher: requests submitted one at a time, run in batches whenever the model is free.

One worker thread owns the wrapped policy (so a backend that is not thread-safe, like the hf
model, is only ever called from that thread). Each time it is free it takes every request that is
waiting, up to ``max_batch``, waits at most ``window`` seconds for more to arrive, and hands them to
``policy.generate`` in one call. This is how a backend that implements only ``generate(batch)``
(the hf backend, a third-party backend) serves the per-episode asynchronous rollout engine: the
engine submits each episode's next request as soon as it is ready, and whatever accumulated while
the model was busy forms the next batch.

Replies never depend on which batch a request landed in: each request carries its own seed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

from harness.loop.policy import Policy, Reply, Request

_STOP = object()


class Batcher:
    """Run ``policy.generate`` on one worker thread over whatever requests are waiting."""

    def __init__(self, policy: Policy, max_batch: int = 8, window: float = 0.002) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.policy, self.max_batch, self.window = policy, max_batch, window
        self.name = policy.name
        self._queue: queue.SimpleQueue[tuple[Request, Future[Reply]] | object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="harness-batcher", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> Future[Reply]:
        """Queue ``request``; the future holds its reply (or the exception ``generate`` raised)."""
        if self._closed:
            raise RuntimeError("submit() on a closed Batcher")
        future: Future[Reply] = Future()
        self._queue.put((request, future))
        return future

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        """The batch interface, for callers that want it: submit all, wait for all."""
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop the worker after the requests already queued (does not close the policy)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            if threading.current_thread() is not self._thread:
                self._thread.join()

    def _take(self) -> tuple[list[tuple[Request, Future[Reply]]], bool]:
        """The next batch, and whether the stop marker was seen."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.window
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True  # type: ignore[return-value]
            batch.append(item)
        return batch, False  # type: ignore[return-value]

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if not batch:
                continue
            requests = [r for r, _ in batch]
            try:
                replies = self.policy.generate(requests)
                if len(replies) != len(requests):
                    raise RuntimeError(
                        f"policy {self.policy.name!r} returned {len(replies)} replies "
                        f"for {len(requests)} requests"
                    )
            except BaseException as exc:  # noqa: BLE001 (every waiting caller gets the error)
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                future.set_result(reply)
