"""The core (``harness/``) knows no benchmark: task names appear only in its prose.

Every ``harness/**/*.py`` is tokenized; comments and docstrings are prose and are skipped. What is
left must not name a built-in task: no identifier (``tallyqa_root``), no string literal in code
(``if spec.name == "mvbench"``). User-facing text of the command line (``harness/cli/``: help
and its examples) may name tasks in its strings, never in its identifiers.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

import harness
from harness.data import DataError, load_samples
from harness.records import Sample, SampleRecord, Trajectory
from harness.scoring.aggregate import task_result
from harness.scoring.modes import score_trajectory
from harness.task import Scored, TaskSpec

TASK_NAMES = re.compile(r"vstar|tallyqa|infovqa|mvbench", re.IGNORECASE)
ROOT = Path(harness.__file__).parent
# Strings here are help text and messages for people (examples may name a task).
PROSE_STRINGS = ("cli/",)
# Files with a task-specific part still to be made generic by its owner: listed here so that the
# rest stays checked; test_exemptions_still_needed fails once one is clean, to remove it.
EXEMPT: tuple[str, ...] = ()


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def task_names_in_code(source: str, *, strings_are_prose: bool = False) -> list[str]:
    """``line: token`` for every code token of ``source`` that names a task (comments and
    docstrings skipped; other string literals too when ``strings_are_prose``)."""
    docstrings = _docstring_lines(ast.parse(source))
    hits = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
            continue
        if tok.type == tokenize.STRING and (strings_are_prose or tok.start[0] in docstrings):
            continue
        if TASK_NAMES.search(tok.string):
            hits.append(f"{tok.start[0]}: {tok.string[:80]}")
    return hits


def _modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_scanner_finds_names_in_code_only() -> None:
    source = '''"""Scores vstar."""
# mvbench below
def f(spec):
    """For infovqa."""
    return spec.name == "mvbench" or tallyqa_root()
'''
    assert task_names_in_code(source) == ['5: "mvbench"', "5: tallyqa_root"]
    assert task_names_in_code(source, strings_are_prose=True) == ["5: tallyqa_root"]
    assert task_names_in_code('x = f"{a} vstar"\n') == ['1: f"{a} vstar"']


def test_the_core_names_no_task() -> None:
    modules = _modules()
    assert len(modules) > 40 and any(_rel(p) == "task.py" for p in modules)
    found = {}
    for path in modules:
        rel = _rel(path)
        if rel in EXEMPT:
            continue
        hits = task_names_in_code(
            path.read_text(encoding="utf-8"), strings_are_prose=rel.startswith(PROSE_STRINGS)
        )
        if hits:
            found[rel] = hits
    assert found == {}, "task names in the core's code (move the rule into the task's module):\n" + "\n".join(
        f"harness/{rel}:{hit}" for rel, hits in found.items() for hit in hits
    )


def test_exemptions_still_needed() -> None:
    for rel in EXEMPT:
        path = ROOT / rel
        if path.exists():
            assert task_names_in_code(path.read_text(encoding="utf-8")), (
                f"harness/{rel} is clean: remove it from EXEMPT"
            )


def _unknown_task() -> TaskSpec:
    """A task the core has never heard of: its own metric (lower is better), no synthetic data,
    its own ``--data`` source."""

    def load(arg: str) -> list[Sample]:
        return [Sample("errs", f"e{i}", "how far?", str(i), ("x.png",)) for i in range(int(arg))]

    return TaskSpec(
        name="errs",
        version=1,
        description="distance",
        media_kind="image",
        metric="distance",
        higher_is_better=False,
        subsets=(),
        question=lambda s: s.question,
        official_prompt=lambda s: s.question,
        score=lambda reply, s: Scored(float(reply or 0), reply),
        breakdown=lambda s: {},
        chance_answers=lambda s: (),
        sources={"mine": load},
    )


def test_a_task_declares_its_metric_direction_and_sources() -> None:
    spec = _unknown_task()
    samples = load_samples(spec, "mine:3")
    assert [s.id for s in samples] == ["e0", "e1", "e2"]
    with pytest.raises(DataError, match="no synthetic data"):
        load_samples(spec, "synthetic")
    with pytest.raises(DataError, match="unknown --data source 'parquet:x.parquet'"):
        load_samples(spec, "parquet:x.parquet")
    trajectory = Trajectory("errs", "e0", "vcot", "", "q", (), "answer", "2.5")
    records = [SampleRecord(s, trajectory, score_trajectory(spec, s, trajectory)) for s in samples]
    result = task_result(spec, records)
    assert (result.metric, result.value, result.higher_is_better) == ("distance", 2.5, {"distance": False})


def test_the_package_exports_the_whole_plugin_api_lazily() -> None:
    """``from harness import ...`` gives every type a plugin needs; the tool, backend, trainer and
    section types load on first use, so ``import harness`` alone pulls in no image library."""
    import subprocess
    import sys

    code = (
        "import sys, harness\n"
        "assert 'PIL' not in sys.modules, 'import harness loaded PIL'\n"
        "from harness import BackendContext, Section, ToolContext, ToolResult, ToolSpec, TrainerSpec\n"
        "from harness.backends import BackendContext as B\n"
        "from harness.tools import ToolSpec as T\n"
        "assert (BackendContext, ToolSpec) == (B, T)\n"
        "missing = [n for n in harness.__all__ if not hasattr(harness, n)]\n"
        "assert not missing, missing\n"
        "try:\n"
        "    harness.NoSuchThing\n"
        "except AttributeError as e:\n"
        "    assert 'NoSuchThing' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
