"""Test doubles for users' and our own tests (a pytest plugin, loaded through ``pytest11``).

Fixtures:
- ``harness_instance``: a :class:`harness.plugins.Harness` with entry-point autoload off, so
  only the built-in plugins (and what the test registers) are present.
- ``make_samples(task, n, seed=0)``: synthetic samples of a built-in task, generated in a
  per-session cache folder.
- ``scripted_policy(kind)``: ``"oracle"`` or ``"random"`` scripted policy (test doubles).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.backends import BackendContext
from harness.loop.policy import Policy
from harness.plugins import Harness, make_plugin_manager
from harness.records import Sample


@pytest.fixture
def harness_instance() -> Harness:
    return Harness(make_plugin_manager(autoload=False))


@pytest.fixture(scope="session")
def _synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("harness-synthetic")


@pytest.fixture
def make_samples(harness_instance: Harness, _synthetic_root: Path) -> Callable[..., list[Sample]]:
    def make(task: str, n: int, seed: int = 0) -> list[Sample]:
        spec = harness_instance.task(task)
        if spec.synthesize is None:
            raise ValueError(f"task {task} has no synthetic data generator")
        root = _synthetic_root / f"{spec.name}-v{spec.version}-seed{seed}"
        root.mkdir(parents=True, exist_ok=True)
        return spec.synthesize(n, seed, root)[:n]

    return make


@pytest.fixture
def scripted_policy(harness_instance: Harness) -> Callable[[str], Policy]:
    def make(kind: str) -> Policy:
        factory = harness_instance.backend("scripted")
        return factory(kind, BackendContext(tasks=harness_instance.tasks))

    return make
