"""``harness eval``, ``harness tasks`` and ``harness plugins``: run an evaluation, list what it can use."""

from __future__ import annotations

import argparse

from harness.cli.command import EPILOG, CliError, Command, SubParsers, plain
from harness.cli.support import EvalArgs, closing_lines, default_run_dir, drop_if_empty, parse_limit
from harness.loop.limits import Limits


def _add_eval(sub: SubParsers) -> argparse.ArgumentParser:
    from harness.data import DEFAULT_SYNTHETIC_SIZE

    p = sub.add_parser(
        "eval",
        help="evaluate a model with tool-enabled multi-turn scoring",
        description="Evaluate a model on the given tasks. " + EPILOG,
    )
    p.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    p.add_argument(
        "--model",
        default=None,
        help="PREFIX:NAME, e.g. hf:PATH_OR_HUB_ID, vllm:..., openai:..., scripted:oracle "
        "(default: the embedded tiny random-weight model hf:@tiny, a pipeline demo)",
    )
    p.add_argument("--model_args", default="", help="key=value,... passed to the backend")
    p.add_argument(
        "--data",
        default="synthetic",
        help="synthetic[:SEED] (default), hub[:mirror=DIR,tallyqa=DIR,...], parquet:PATH or jsonl:PATH",
    )
    p.add_argument(
        "--limit",
        type=parse_limit,
        default=None,
        help="first N samples of each task; below 1, that fraction of each task (lm-eval's --limit 0.1) "
        f"(default: all; {DEFAULT_SYNTHETIC_SIZE} for synthetic data)",
    )
    p.add_argument("--seed", type=int, default=0, help="run seed (sampling, chance baselines)")
    p.add_argument("--prompt", default="vcot", choices=("vcot", "notool", "official"), help="prompt mode")
    p.add_argument(
        "--episode_limits",
        default="",
        help=f"episode limits key=value,... (keys: {', '.join(Limits.__slots__)})",
    )
    p.add_argument("--limits", default=None, help="deprecated spelling of --episode_limits")
    p.add_argument(
        "--scoring", default="official", help="scoring mode (default: each task's official metric)"
    )
    p.add_argument(
        "--protocol",
        default="crop_image_normalized",
        choices=("crop_image_normalized", "crop_image"),
        help="crop tool schema advertised: the released crop_image_normalized (default) or the "
        "earlier crop_image (pixel-coordinate wording)",
    )
    p.add_argument("--batch_size", type=int, default=8, help="episodes in flight at once")
    from harness.data.media_pool import default_workers, workers_arg

    p.add_argument(
        "--workers",
        type=workers_arg,
        default=None,
        metavar="N",
        help=f"threads opening/resizing media, running tools, encoding images (default: CPUs, "
        f"here {default_workers()}); results do not depend on it",
    )
    p.add_argument(
        "--temperature", type=float, default=None, help="sampling temperature (default: 0, greedy)"
    )
    p.add_argument("--top_p", type=float, default=None, help="nucleus sampling (default: 1.0)")
    p.add_argument(
        "--gen_kwargs",
        default="",
        metavar="K=V,...",
        help="lm-eval style: temperature, top_p, max_new_tokens (or max_gen_toks), do_sample=false; "
        "giving a key here and its own flag too is an error",
    )
    p.add_argument(
        "--device",
        default=None,
        help="device of a local backend (hf: cpu, cuda, cuda:N; sets --model_args device) (default: auto)",
    )
    p.add_argument(
        "--output_path",
        "--output_dir",
        default=None,
        help="folder for results.json and samples.jsonl (default: a fresh runs/MODEL__TASKS__TIME folder)",
    )
    p.add_argument(
        "--log_samples",
        action="store_true",
        help="accepted for lm-eval compatibility: every sample is always logged to samples.jsonl",
    )
    p.add_argument("--log_crops", action="store_true", help="also save every crop/frame shown as a PNG")
    p.add_argument("--resume", action="store_true", help="continue the run in --output_path (which it needs)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="evaluate only shard I of N (0-based; membership hashed from task and sample id); "
        "combine the N folders with `harness merge`",
    )
    return p


def _cmd_eval(args: argparse.Namespace) -> int:
    from harness.data.source import DataSource
    from harness.plugins import Harness
    from harness.run.evaluate import EvalConfig, evaluate, format_results
    from harness.run.launch import accelerate_process, evaluate_launched

    if args.resume and not args.output_path:
        raise CliError("--resume needs --output_path (the run folder to continue)")
    try:
        resolved = EvalArgs(args)
        limits = Limits.parse(resolved.limits_text)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    data = DataSource.parse(args.data)  # a bad seed or hub option: one line naming --data
    process = accelerate_process()  # None unless started by a multi-process launcher
    fresh = None
    if args.output_path is None and process is None:  # a run always leaves its files
        fresh = default_run_dir(resolved.model, args.tasks)
        args.output_path = str(fresh)
        print(f"harness eval: no --output_path: writing to {args.output_path}", flush=True)
    config = EvalConfig(
        tasks=args.tasks,
        model=resolved.model,
        model_args=resolved.model_args,
        data=data,
        limit=args.limit,
        seed=args.seed,
        mode=args.prompt,
        limits=limits,
        temperature=resolved.temperature,
        top_p=resolved.top_p,
        scoring=args.scoring,
        protocol=args.protocol,
        batch_size=args.batch_size,
        workers=args.workers,
        output_path=args.output_path,
        log_crops=args.log_crops,
        resume=args.resume,
        shard=args.shard,
    )
    harness = Harness()
    if process is not None:
        merged = evaluate_launched(config, harness, process, show_progress=not args.no_progress)
        if merged is None:  # not the main process: its shard is written, the main one merges
            return 0
        result = merged
    else:
        try:
            result = evaluate(config, harness, show_progress=not args.no_progress)
        except BaseException:
            if fresh is not None:
                drop_if_empty(fresh)  # a run that failed before its first sample leaves no folder
            raise
    print(format_results(result))
    if args.output_path:
        print(closing_lines(args.output_path))
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from harness.plugins import Harness

    for spec in Harness().tasks.values():
        print(
            f"{spec.name}  v{spec.version}  {spec.media_kind}  metric={spec.metric}  prompts={','.join(spec.prompt_modes)}"
        )
        print(f"    {spec.description}")
        print(f"    subsets: {', '.join(spec.subsets)}")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from harness.plugins import Harness

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
    print(f"trainers: {', '.join(harness.trainers) or 'none'}")
    return 0


COMMANDS = (
    Command("eval", _add_eval, _cmd_eval),
    Command("tasks", plain("tasks", "list tasks with subsets, metric, prompt modes and version"), _cmd_tasks),
    Command("plugins", plain("plugins", "list plugins and the hooks each implements"), _cmd_plugins),
)
