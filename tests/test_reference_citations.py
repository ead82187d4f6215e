"""Every citation of the reference facts resolves to a page in the repository.

Code and docs cite ``docs/reference.md section N``; each N must be a numbered section of that
page, and no citation may point at a document the repository does not have (the old bare
"REFERENCE section N" pointed at a file outside it).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reference.md"
SOURCES = [
    p
    for folder in ("harness", "tasks", "plugins", "leaderboards", "tests", "docs", "examples")
    for p in (ROOT / folder).rglob("*")
    if p.suffix in (".py", ".md", ".yaml", ".sh") and p.is_file()
] + [ROOT / "README.md"]
CITE = re.compile(r"docs/reference\.md\)? section (\d+)")
BARE = re.compile(r"\bREFERENCE(?:\.md)?(?: section \d+|'s|\b(?!_))")


def sections() -> set[str]:
    return set(re.findall(r"^## (\d+)\. ", PAGE.read_text(encoding="utf-8"), re.M))


def test_reference_page_has_numbered_sections() -> None:
    assert sections() >= {"1", "2", "3", "4", "5"}


def test_every_citation_names_an_existing_section() -> None:
    known = sections()
    cited = {
        (path.relative_to(ROOT).as_posix(), n)
        for path in SOURCES
        for n in CITE.findall(path.read_text(encoding="utf-8", errors="replace"))
    }
    assert cited, "no citation found: the pattern is wrong"
    assert [c for c in cited if c[1] not in known] == []


def test_no_citation_points_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{no}: {line.strip()}"
        for path in SOURCES
        if path.resolve() != this
        for no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if BARE.search(line)
    ]
    assert offenders == []
