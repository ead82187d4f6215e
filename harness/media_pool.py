"""The worker pool that keeps media work off the rollout's critical path (``--workers``).

Opening, decoding and resizing a sample's media, running tools (crops, frame selection) and a
backend's image encoding run on a pool of threads: PIL releases the GIL while it decodes and
resizes, so on N cores up to N samples are prepared at once while the engine waits for replies.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_default: int | None = None


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """``--workers`` when given in this process, else the CPU count (at least 2, at most 32)."""
    return _default if _default is not None else min(32, max(2, cpu_count()))


def set_default_workers(n: int | None) -> None:
    """Set the process-wide default of ``--workers`` (``None``: back to the CPU count)."""
    global _default
    if n is not None and n < 1:
        raise ValueError(f"--workers must be >= 1, got {n}")
    _default = n


def worker_pool(workers: int | None = None, name: str = "harness-media") -> ThreadPoolExecutor:
    """A thread pool of ``workers`` (default :func:`default_workers`) threads."""
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {n}")
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix=name)


class WorkersAction(argparse.Action):
    """``--workers N``: validated, and made this process's default (:func:`set_default_workers`)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        try:
            n = int(str(values))
            set_default_workers(n)
        except ValueError:
            parser.error(f"--workers must be an integer >= 1, got {values!r}")
        setattr(namespace, self.dest, n)
