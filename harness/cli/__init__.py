"""Command line: ``harness eval | tasks | plugins | leaderboard | view | rescore | make-tiny-model |
serve | export-lm-eval | merge | train``.

One module per group of commands (:mod:`~harness.cli.eval`, :mod:`~harness.cli.train`,
:mod:`~harness.cli.reports`, :mod:`~harness.cli.models`, :mod:`~harness.cli.runs`), each listing
its :class:`~harness.cli.command.Command` entries; :mod:`harness.cli.app` joins them into the one
registry, builds the parser and runs ``main`` (the ``harness`` console script:
``harness.cli:main``). Errors a user can fix end in one line (exit status 2); a bug shows its
traceback (exit status 1).
"""

from __future__ import annotations

from harness.cli.app import COMMANDS, build_parser, main
from harness.cli.command import CliError

__all__ = ["COMMANDS", "CliError", "build_parser", "main"]
