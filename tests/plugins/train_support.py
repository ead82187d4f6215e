"""Shared by the trainer tests (imported by name; ``conftest`` is ambiguous when several test
folders run in one pytest command): the train-extra skip mark, small episode limits, a free
port for ``accelerate launch`` and the train-log reader."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path
from typing import Any

import pytest

HAVE_TRAIN = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "trl", "yaml"))
TRAIN_REASON = "needs the train extra: pip install -e '.[hf,train]'"
# Small images keep a CPU step in the seconds (64 image tokens per input, at most 64 per crop).
SMALL_LIMITS = (
    "min_pixels=12544,max_pixels=50176,crop_min_pixels=3136,crop_max_pixels=50176,max_new_tokens=12"
)

needs_train = pytest.mark.skipif(not HAVE_TRAIN, reason=TRAIN_REASON)


def free_port() -> int:
    """A TCP port free on this machine now (for a launcher's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_log(output_dir: Path) -> list[dict[str, Any]]:
    """``OUTPUT_DIR/train_log.jsonl``, one dict per step."""
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
