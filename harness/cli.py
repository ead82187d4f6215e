"""Command line: ``harness eval | tasks | plugins``.

Errors a user can fix (unknown task or model, bad flag values, a run folder that exists) end the
command with a one-line message and exit status 2; results already written stay on disk.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from .limits import Limits

EPILOG = (
    "Scripted policies (scripted:oracle, scripted:random, scripted:replay:FILE) are test doubles, not models."
)


class CliError(Exception):
    pass


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model with tool-enabled multi-turn scoring",
        description="Evaluate a model on the given tasks. " + EPILOG,
    )
    p.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    p.add_argument("--model", required=True, help="PREFIX:NAME, e.g. scripted:oracle")
    p.add_argument("--model_args", default="", help="key=value,... passed to the backend")
    p.add_argument("--data", default="synthetic", help="synthetic[:SEED] (default) or jsonl:PATH")
    p.add_argument("--limit", type=int, default=None, help="first N samples of each task")
    p.add_argument("--seed", type=int, default=0, help="run seed (sampling, chance baselines)")
    p.add_argument("--prompt", default="vcot", choices=("vcot", "notool", "direct"), help="prompt mode")
    p.add_argument(
        "--limits", default="", help=f"episode limits key=value,... (keys: {', '.join(Limits.__slots__)})"
    )
    p.add_argument(
        "--scoring", default="official", help="scoring mode (default: each task's official metric)"
    )
    p.add_argument("--batch_size", type=int, default=8, help="episodes in flight at once")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top_p", type=float, default=1.0)
    p.add_argument("--output_path", default=None, help="folder for results.json and samples.jsonl")
    p.add_argument("--log_crops", action="store_true", help="also save every crop/frame shown as a PNG")
    p.add_argument("--resume", action="store_true", help="continue the run in --output_path")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")


def _cmd_eval(args: argparse.Namespace) -> int:
    from .backends import parse_model_args
    from .evaluate import EvalConfig, evaluate, format_results
    from .plugins import Harness

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be >= 1, got {args.limit}")
    if args.resume and not args.output_path:
        raise CliError("--resume needs --output_path")
    if args.log_crops and not args.output_path:
        raise CliError("--log_crops needs --output_path")
    try:
        limits = Limits.parse(args.limits)
        model_args = parse_model_args(args.model_args)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    config = EvalConfig(
        tasks=args.tasks,
        model=args.model,
        model_args=model_args,
        data=args.data,
        limit=args.limit,
        seed=args.seed,
        mode=args.prompt,
        limits=limits,
        temperature=args.temperature,
        top_p=args.top_p,
        scoring=args.scoring,
        batch_size=args.batch_size,
        output_path=args.output_path,
        log_crops=args.log_crops,
        resume=args.resume,
    )
    harness = Harness()
    result = evaluate(config, harness, show_progress=not args.no_progress)
    print(format_results(result))
    if args.output_path:
        print(f"\nwrote {args.output_path}/results.json and samples.jsonl")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from .plugins import Harness

    for spec in Harness().tasks.values():
        print(
            f"{spec.name}  v{spec.version}  {spec.media_kind}  metric={spec.metric}  prompts={','.join(spec.prompt_modes)}"
        )
        print(f"    {spec.description}")
        print(f"    subsets: {', '.join(spec.subsets)}")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import Harness

    harness = Harness()
    for info in harness.plugin_info():
        origin = f" ({info.distribution})" if info.distribution else ""
        print(f"{info.name}{origin}")
        for hook in info.hooks:
            print(f"    {hook}")
    print(f"\ntasks: {', '.join(harness.tasks)}")
    print(f"backends: {', '.join(sorted(harness.backends))}")
    print(f"tools: {', '.join(t.name for t in harness.tools)}")
    print(f"scoring modes: {', '.join(sorted(harness.scoring_modes))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Evaluate and train pixel-space reasoning VLMs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_eval(sub)
    sub.add_parser("tasks", help="list tasks with subsets, metric, prompt modes and version")
    sub.add_parser("plugins", help="list plugins and the hooks each implements")
    return parser


COMMANDS = {"eval": _cmd_eval, "tasks": _cmd_tasks, "plugins": _cmd_plugins}


def main(argv: Sequence[str] | None = None) -> int:
    from .data import DataError
    from .plugins import PluginError, UnknownNameError
    from .results import RunDirError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return COMMANDS[args.command](args)
    except (
        CliError,
        UnknownNameError,
        DataError,
        RunDirError,
        PluginError,
        ValueError,
        FileNotFoundError,
    ) as exc:
        msg = exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)
        print(f"harness {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; finished samples are kept (rerun with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
