"""The dynamic batcher: whatever waits runs in one call, up to max_batch; errors reach every caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from harness.backends.batcher import Batcher
from harness.loop.policy import Reply, Request, Sampling
from harness.records import Sample


def _request(k: int) -> Request:
    sample = Sample(task="t", id=str(k), question="Q", answer="A", media=())
    return Request([], Sampling(seed=k), sample, 0, k)


class Gate:
    """Blocks the first generate call until released, so later requests pile up behind it."""

    name = "gate"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[list[int]] = []

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        self.calls.append([r.seed for r in requests])
        self.release.wait(10)
        return [Reply(f"r{r.seed}") for r in requests]


def test_requests_waiting_while_the_model_is_busy_form_the_next_batches() -> None:
    policy = Gate()
    batcher = Batcher(policy, max_batch=3, window=0.0)
    first = batcher.submit(_request(0))
    while not policy.calls:  # the model is busy with request 0
        threading.Event().wait(0.01)
    rest = [batcher.submit(_request(k)) for k in range(1, 6)]
    policy.release.set()
    assert [f.result(10).text for f in [first, *rest]] == [f"r{k}" for k in range(6)]
    assert policy.calls == [[0], [1, 2, 3], [4, 5]]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(_request(9))


def test_an_exception_reaches_every_request_of_the_batch_and_the_batcher_goes_on() -> None:
    class Flaky:
        name = "flaky"
        calls = 0

        def generate(self, requests: Sequence[Request]) -> list[Reply]:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise OSError("device lost")
            return [Reply("ok") for _ in requests]

    batcher = Batcher(Flaky(), max_batch=4, window=0.2)
    futures = [batcher.submit(_request(k)) for k in range(2)]
    for f in futures:
        with pytest.raises(OSError, match="device lost"):
            f.result(10)
    assert batcher.submit(_request(3)).result(10).text == "ok"
    batcher.close()
