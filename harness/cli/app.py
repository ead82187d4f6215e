"""The ``harness`` command: the one registry of subcommands, the parser built from it, and ``main``.

Errors a user can fix (:class:`harness.errors.UserError` and its kinds: unknown task or model,
bad flag values, bad data, a run folder that exists; the plugin manager's ``PluginError`` and
``UnknownNameError``, ``RunDirError``, a missing file) end the command with a one-line message
and exit status 2; results already written stay on disk. Any other exception is a bug: its
traceback is printed with a line asking for a report, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import cast

from harness.cli import eval as eval_commands
from harness.cli import models, reports, runs, train
from harness.cli.command import Command, SubParsers
from harness.cli.support import HarnessParser

#: Every subcommand, in the order ``harness --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    *eval_commands.COMMANDS,
    *reports.COMMANDS,
    *models.COMMANDS,
    *runs.COMMANDS,
    *train.COMMANDS,
)
BY_NAME = {c.name: c for c in COMMANDS}
assert len(BY_NAME) == len(COMMANDS), "two commands share a name"

REPORT_HINT = "this is a bug in pixel-harness (or a plugin): please report it with the traceback above"


def build_parser() -> argparse.ArgumentParser:
    from harness import __version__

    parser = HarnessParser(prog="harness", description="Evaluate and train pixel-space reasoning VLMs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = cast(SubParsers, parser.add_subparsers(dest="command", required=True))
    for command in COMMANDS:
        command.add(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions ``main`` reports in one line (imported now: they live in their own modules)."""
    from harness.errors import UserError
    from harness.plugins import PluginError, UnknownNameError
    from harness.run.results import RunDirError

    return (UserError, UnknownNameError, RunDirError, PluginError, FileNotFoundError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's own parser: its usage, and the closest flag
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub_parser = sub.choices[args.command]
        assert isinstance(sub_parser, HarnessParser)
        sub_parser.unrecognized(extra)
    expected = user_errors()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return BY_NAME[args.command].run(args)
    except expected as exc:
        msg = exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)
        print(f"harness {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "output_path", None)
        where = f" in {out} (rerun with --resume --output_path {out})" if out else " (rerun with --resume)"
        print(f"harness: interrupted; finished samples are kept{where}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 (a bug: show where, ask for a report)
        traceback.print_exc()
        print(
            f"harness {args.command}: internal error ({type(exc).__name__}): {REPORT_HINT}", file=sys.stderr
        )
        return 1
