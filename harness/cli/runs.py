"""``harness merge`` and ``harness export-lm-eval``: combine shard folders, export tasks to lm-eval."""

from __future__ import annotations

import argparse

from harness.cli.command import CliError, Command, SubParsers


def _add_merge(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "merge",
        help="merge shard folders (--shard I/N runs) into one run folder",
        description="Recompute every metric, standard error and breakdown from the shards' samples and "
        "write results.json / samples.jsonl as a single run does. Refuses differing fingerprints, "
        "a sample or shard given twice, and missing or unfinished shards.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="shard folders")
    p.add_argument("--output_path", required=True, help="folder for the merged run (must not hold a run)")
    p.add_argument(
        "--allow_partial",
        "--allow-partial",
        action="store_true",
        help="merge even when shards or samples are missing (recorded as partial in results.json)",
    )
    return p


def _cmd_merge(args: argparse.Namespace) -> int:
    from harness.run.evaluate import format_results
    from harness.run.merge import MergeError, merge

    try:
        result = merge(args.dirs, args.output_path, allow_partial=args.allow_partial)
    except MergeError as exc:  # shards that must not be merged as asked: the user's to fix
        raise CliError(str(exc)) from None
    print(format_results(result))
    info = result.merged or {}
    missing = ", ".join(info.get("missing_shards") or []) or "samples"
    note = f"; PARTIAL: missing {missing}" if result.partial else ""
    shards = f"{len(info.get('shards', []))} of {info.get('count')} shards"
    print(f"\nmerged {shards} into {args.output_path}{note}")
    return 0


def _add_export(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export-lm-eval",
        help="write an lm-eval task folder (notool mode) for the image tasks",
        description="Write lm-eval YAML tasks + utils.py + the samples for the single-turn notool mode; "
        "run them with lm_eval.simple_evaluate and harness.interop.lm_eval_bridge.HarnessLM. "
        "Video tasks (mvbench) cannot go through lm-eval.",
    )
    p.add_argument("directory", help="output folder (created)")
    p.add_argument(
        "--tasks", default="all", help="comma-separated image tasks, or 'all' (video tasks skipped)"
    )
    p.add_argument("--data", default="synthetic", help="data source, as for harness eval")
    p.add_argument("--limit", type=int, default=None, help="first N samples of each task")
    return p


def _cmd_export_lm_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.interop.lm_eval_bridge import export_tasks
    from harness.plugins import Harness

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be >= 1, got {args.limit}")
    specs = Harness().resolve_tasks(args.tasks)
    if args.tasks.strip() == "all":
        skipped = [s.name for s in specs if s.media_kind != "image"]
        specs = [s for s in specs if s.media_kind == "image"]
        if skipped:
            print(f"skipped video task(s) {', '.join(skipped)}: lm-eval has no video input")
    video = [s.name for s in specs if s.media_kind != "image"]
    if video:
        raise CliError(
            f"{', '.join(video)}: video task(s) cannot be exported: lm-eval has no video input; "
            "evaluate them with harness eval"
        )
    names = export_tasks(Path(args.directory), specs, args.data, args.limit)
    print(f"wrote {len(names)} lm-eval task(s) to {args.directory}: {', '.join(names)}")
    return 0


COMMANDS = (
    Command("export-lm-eval", _add_export, _cmd_export_lm_eval),
    Command("merge", _add_merge, _cmd_merge),
)
