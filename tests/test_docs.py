"""The docs are tested: every hook and task is documented, the README's commands are the real ones,
every docs page is reachable from the README, and every link and code path in the docs resolves."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from harness import hookspecs
from harness.plugins import Harness

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *DOCS]
HOOKS = [
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("harness_")
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A path into this repository: a top-level folder of ours, then more path; globs and placeholders
# (DIR, NAME, <...>) are not paths.
REPO_PATH = re.compile(r"^(?:harness|tasks|plugins|leaderboards|tests|examples|docs|\.ci)/[\w./-]*$")
TEST_ID = re.compile(r"^(tests/[\w/.-]+\.py)::(\w+)$")  # a pytest node id: file::test


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(_text(path)), re.M):
        base, n = slug(heading), 1
        name = base
        while name in found:  # GitHub numbers repeated headings: x, x-1, x-2
            name, n = f"{base}-{n}", n + 1
        found.add(name)
    return found


def _setup_commands() -> list[str]:
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", README, re.S)
    assert block, "README has no set-up block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    fn = getattr(hookspecs, hook)
    assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{hook} needs a docstring"
    guide = _text(ROOT / "docs" / "plugins.md")
    assert f"`{hook}`" in guide, f"{hook} is missing from docs/plugins.md"


def test_every_task_is_documented(harness_instance: Harness) -> None:
    table = _text(ROOT / "docs" / "tasks.md")
    for name in harness_instance.tasks:
        assert f"| `{name}` |" in table, f"task {name} is missing from the task table in docs/tasks.md"


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one() -> None:
    main, tests = _setup_commands()
    assert "harness eval" in main
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_benchmark_command_is_documented() -> None:
    assert "pytest tests/benchmarks --benchmark-only" in README
    assert "pytest tests/benchmarks --benchmark-only" in _text(ROOT / "CONTRIBUTING.md")


@pytest.mark.parametrize("page", DOCS, ids=_rel)
def test_the_readme_links_every_docs_page(page: Path) -> None:
    assert f"]({_rel(page)})" in README, f"README.md does not link {_rel(page)}"


def test_slug_is_githubs() -> None:
    assert slug("Distributed training (`accelerate launch`)") == "distributed-training-accelerate-launch"
    assert slug("Does training move the numbers? (CPU, tiny model, synthetic V*)") == (
        "does-training-move-the-numbers-cpu-tiny-model-synthetic-v"
    )
    assert slug("## `curiosity_grpo`".lstrip("# ")) == "curiosity_grpo"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(_text(page))):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {_rel(dest)}")
    assert broken == [], f"{_rel(page)}: broken links"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_code_path_exists(page: Path) -> None:
    named = {span for span in CODE_SPAN.findall(_text(page)) if REPO_PATH.match(span)}
    named |= {t for t in LINK.findall(_text(page)) if REPO_PATH.match(t)}  # README-relative links
    missing = sorted(p for p in named if not (ROOT / p.split("#")[0]).exists())
    assert missing == [], f"{_rel(page)} names paths that do not exist"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_test_exists(page: Path) -> None:
    missing = []
    for span in CODE_SPAN.findall(_text(page)):
        match = TEST_ID.match(span)
        if match and not re.search(
            rf"^\s*(?:async )?def {match.group(2)}\(",
            _text(ROOT / match.group(1)) if (ROOT / match.group(1)).exists() else "",
            re.M,
        ):
            missing.append(span)
    assert missing == [], f"{_rel(page)} names tests that do not exist"


def test_the_path_check_sees_paths() -> None:
    spans = CODE_SPAN.findall(_text(ROOT / "CONTRIBUTING.md"))
    assert "harness/hookspecs.py" in spans and REPO_PATH.match("harness/hookspecs.py")
    assert not REPO_PATH.match("plugins/configs/*.yaml") and not REPO_PATH.match("harness_plugins/x")
    named = [s for p in PAGES for s in CODE_SPAN.findall(_text(p)) if TEST_ID.match(s)]
    assert len(named) > 10, "the pytest node ids the docs name are no longer found"
