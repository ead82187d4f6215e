"""What every ``harness`` subcommand is: a name, a parser builder and a function that runs it.

Each command module (:mod:`harness.cli.eval`, ``train``, ``reports``, ``models``, ``runs``)
lists its commands as ``COMMANDS``; :mod:`harness.cli.app` joins those lists into the one
registry that both builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from harness.errors import UserError

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EPILOG = (
    "Scripted policies (scripted:oracle, scripted:random, scripted:replay:FILE) are test doubles, not models."
)


class CliError(UserError):
    """A bad combination of flags (or a flag's value): printed in one line, exit status 2."""


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add(sub)`` adds its parser (with its flags) and ``run(args)`` runs it."""

    name: str
    add: Callable[[SubParsers], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


def plain(name: str, help: str) -> Callable[[SubParsers], argparse.ArgumentParser]:
    """The parser builder of a command without flags."""

    def add(sub: SubParsers) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help)

    return add


def print_warnings(command: str, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"harness {command}: warning: {w.message}", file=sys.stderr)
