"""The worker pool that keeps media work off the rollout's critical path (``--workers``).

Opening, decoding and resizing a sample's media, running tools (crops, frame selection) and a
backend's image encoding run on a pool of threads: PIL releases the GIL while it decodes and
resizes, so on N cores up to N samples are prepared at once while the engine waits for replies.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """The default of ``--workers``: the CPU count (at least 2, at most 32)."""
    return min(32, max(2, cpu_count()))


def workers_arg(text: str) -> int:
    """``--workers N``: an integer >= 1 (argparse ``type``)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


def worker_pool(workers: int | None = None, name: str = "harness-media") -> ThreadPoolExecutor:
    """A thread pool of ``workers`` (default :func:`default_workers`) threads."""
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {n}")
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix=name)
