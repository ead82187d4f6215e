"""``harness``'s two kinds of failure: a user error is one line (exit 2), a bug shows its traceback
and a request to report it (exit 1); and the one registry of subcommands."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from harness.cli import COMMANDS, CliError, app, build_parser, main
from harness.data import DataError
from harness.errors import OptionError, UserError


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--episode_limits", "bogus=1"],
            "unknown or malformed item 'bogus=1'",
        ),
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--model_args", "novalue"],
            "--model_args: expected key=value, got 'novalue'",
        ),
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--data", "nowhere:x"],
            "unknown --data source 'nowhere:x'",
        ),
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--data", "synthetic:abc"],
            "--data synthetic:SEED needs an integer seed, got 'abc'",
        ),
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--data", "hub:mirror"],
            "--data hub: bad option 'mirror'; expected KEY=VALUE",
        ),
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--shard", "2/2"],
            "--shard: expected I/N",
        ),
        (["eval", "--tasks", "vstar", "--model", "scripted:nobody"], "unknown scripted policy 'nobody'"),
        (
            ["eval", "--tasks", "vstar", "--model", "scripted:oracle", "--batch_size", "0"],
            "batch_size must be >= 1, got 0",
        ),
        (["merge", "/nonexistent/shard-a", "--output_path", "/nonexistent/out"], "harness merge: error:"),
    ],
)
def test_user_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert main([*argv, "--no_progress"] if argv[0] == "eval" else argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def _failing(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setitem(app.BY_NAME, "tasks", dataclasses.replace(app.BY_NAME["tasks"], run=run))


@pytest.mark.parametrize(
    "exc",
    [ValueError("an internal invariant broke"), KeyError("x"), RuntimeError("boom"), TypeError("bad")],
    ids=["ValueError", "KeyError", "RuntimeError", "TypeError"],
)
def test_a_bug_shows_its_traceback_and_asks_for_a_report(
    exc: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing(exc, monkeypatch)
    assert main(["tasks"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == (
        f"harness tasks: internal error ({type(exc).__name__}): {app.REPORT_HINT}"
    )


@pytest.mark.parametrize(
    "exc",
    [
        CliError("bad flags"),
        OptionError("bad option"),
        DataError("bad data"),
        UserError("bad"),
        FileNotFoundError("no such file"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_user_error_classes_are_one_line(
    exc: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing(exc, monkeypatch)
    assert main(["tasks"]) == 2
    assert capsys.readouterr().err == f"harness tasks: error: {exc}\n"


def test_user_errors_stay_value_errors() -> None:
    """Code that caught ``ValueError`` before still catches every user error."""
    for cls in (UserError, OptionError, CliError, DataError):
        assert issubclass(cls, ValueError)


def test_one_registry_builds_the_parser_and_dispatches() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [c.name for c in COMMANDS]
    assert [c.name for c in COMMANDS] == [
        "eval",
        "tasks",
        "plugins",
        "leaderboard",
        "view",
        "rescore",
        "make-tiny-model",
        "serve",
        "export-lm-eval",
        "merge",
        "train",
    ]
    assert set(app.BY_NAME) == {c.name for c in COMMANDS}
