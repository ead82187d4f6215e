"""``harness leaderboard``, ``harness view`` and ``harness rescore``: reports from run folders.

This module is the one place where the core reaches the leaderboards package
(``harness_leaderboards``): each command imports it when it runs, never at import time, and
turns its ``ReportError`` (a bad run folder, an unusable --out) into the one-line
:class:`~harness.cli.command.CliError`. No other module of ``harness`` names that package
(``tests/harness/test_imports.py`` checks it).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.cli.command import CliError, Command, SubParsers, print_warnings


@contextmanager
def _report_errors(command: str) -> Iterator[None]:
    """Warnings printed as ``harness COMMAND: warning: ...``; a ``ReportError`` as a :class:`CliError`."""
    from harness_leaderboards.load import ReportError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ReportError as exc:  # the warnings so far are dropped, as the error ends the command
            raise CliError(str(exc)) from None
    print_warnings(command, caught)


def _add_leaderboard(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "leaderboard",
        help="tables, plots and a self-contained HTML page from run folders",
        description="Build leaderboard.{md,html,csv,json} (+ plots/) from run folders; reads result files only.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, results files, or globs of them")
    p.add_argument("--out", required=True, help="folder for the leaderboard files")
    p.add_argument(
        "--train_log",
        action="append",
        default=[],
        metavar="FILE",
        help="trainer_state.json or JSON-lines training log to plot (repeatable)",
    )
    return p


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness_leaderboards.build import leaderboard

    with _report_errors("leaderboard"):
        _, files = leaderboard(args.runs, Path(args.out), train_logs=args.train_log)
    print(f"wrote {len(files)} files to {args.out} (open {Path(args.out) / 'leaderboard.html'})")
    return 0


def _add_view(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser("view", help="HTML trajectory viewer: every turn, tool call, crop and score")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (or globs)")
    p.add_argument("--out", required=True, help="folder for one page per run")
    p.add_argument("--embed", action="store_true", help="embed crops and images (self-contained, larger)")
    return p


def _cmd_view(args: argparse.Namespace) -> int:
    from harness_leaderboards.viewer import view

    with _report_errors("view"):
        pages = view(args.runs, Path(args.out), embed=args.embed)
    for page in pages:
        print(f"wrote {page}")
    return 0


def _add_rescore(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "rescore",
        help="recompute every score of a run from samples.jsonl, without a model",
        description="Write results.MODE.json and samples.MODE.jsonl beside the originals (never overwritten).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="a run folder with samples.jsonl")
    p.add_argument("--scoring", required=True, help="scoring mode (`harness plugins` lists them)")
    return p


def _cmd_rescore(args: argparse.Namespace) -> int:
    from harness.run.evaluate import format_results
    from harness_leaderboards.rescore import rescore

    with _report_errors("rescore"):
        done = rescore(Path(args.run), args.scoring)
    print(format_results(done.result))
    n = sum(done.result.n_samples.values())
    print(f"\nrescored {n} samples with {args.scoring!r} ({done.changed} scores changed)")
    print(f"wrote {done.results_path} and {done.samples_path}")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("leaderboard", _add_leaderboard, _cmd_leaderboard),
    Command("view", _add_view, _cmd_view),
    Command("rescore", _add_rescore, _cmd_rescore),
)

__all__ = ["COMMANDS"]
