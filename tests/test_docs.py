"""The docs are tested: every hook and task is documented, the README's commands are the real ones."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from harness import hookspecs
from harness.plugins import Harness

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HOOKS = [
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("harness_")
]


def _setup_commands() -> list[str]:
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", README, re.S)
    assert block, "README has no set-up block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    fn = getattr(hookspecs, hook)
    assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{hook} needs a docstring"
    assert f"`{hook}`" in README, f"{hook} is missing from the README's plugin section"


def test_every_task_is_documented(harness_instance: Harness) -> None:
    for name in harness_instance.tasks:
        assert f"| `{name}` |" in README, f"task {name} is missing from the README's task table"


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one() -> None:
    main, tests = _setup_commands()
    assert "harness eval" in main
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_benchmark_command_is_documented() -> None:
    assert "pytest tests/benchmarks --benchmark-only" in README
