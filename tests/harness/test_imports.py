"""The import graph of the four packages has no cycle, and every module stays small.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import``, at
module level and inside functions (a function-level import is still an edge: it runs whenever
the function does), except those under ``if TYPE_CHECKING:`` (never run). ``from a.b import c``
is an edge to the module ``a.b.c`` when that is a module, else to ``a.b``. Importing ``a.b.c``
also runs the ``__init__`` of ``a`` and ``a.b``; those implicit edges are left out, so a module
that imports a sibling through its package is not a cycle unless an explicit
``from package import name`` (an edge to the package's ``__init__``) closes one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import harness

REPO = Path(harness.__file__).resolve().parent.parent
PACKAGES = {
    "harness": "harness",
    "harness_tasks": "tasks",
    "harness_plugins": "plugins",
    "harness_leaderboards": "leaderboards",
}
MAX_LINES = 400
#: The one module of the core that may reach the leaderboards package (lazily).
LEADERBOARD_ADAPTER = "harness.cli.reports"


def module_files(repo: Path = REPO) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` of the four packages."""
    out = {}
    for package, folder in PACKAGES.items():
        for path in sorted((repo / folder).rglob("*.py")):
            parts = list(path.relative_to(repo / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (n for child in node.orelse for n in _imports_in(child))
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` (file ``path``) imports."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        out.update(t for t in targets if t in known)
    out.discard(name)
    return out


def import_graph(repo: Path = REPO) -> dict[str, set[str]]:
    files = module_files(repo)
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The reader itself: a cycle closed by a function-level import is found, a TYPE_CHECKING one is not."""
    for folder in PACKAGES.values():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "harness" / "a.py").write_text("from harness.b import thing\n")
    (tmp_path / "harness" / "b.py").write_text("def thing():\n    from . import a\n")
    (tmp_path / "harness" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import harness.d\n"
    )
    (tmp_path / "harness" / "d.py").write_text("import harness.c\n")
    graph = import_graph(tmp_path)
    assert graph["harness.b"] == {"harness.a"} and graph["harness.c"] == set()
    assert cycles(graph) == [["harness.a", "harness.b"]]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_only_the_report_adapter_reaches_the_leaderboards() -> None:
    graph = import_graph()
    reaching = sorted(
        name
        for name, targets in graph.items()
        if name.startswith("harness.") and any(t.startswith("harness_leaderboards") for t in targets)
    )
    assert reaching == [LEADERBOARD_ADAPTER]


def test_every_module_is_small() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in module_files().items()
    }
    big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"
