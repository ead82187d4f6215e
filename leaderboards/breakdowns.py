"""Built-in report plugin: the per-task breakdown tables, through ``harness_leaderboard_sections``.

V* categories, TallyQA simple / complex, InfoVQA answer types (and evidence, operation) and
MVBench's 20 tasks come to the leaderboard through the same hook a third-party plugin uses.
Registered in ``harness.plugins.BUILTIN_PLUGINS``; pandas is imported only when a report is made.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness import hookimpl
from harness.records import RunResult
from harness.sections import Section


@hookimpl
def harness_leaderboard_sections(results: Mapping[str, RunResult]) -> list[Section]:
    from .tables import breakdown_sections

    return breakdown_sections(results)
