"""Command line: ``harness eval | tasks | plugins | leaderboard | view | rescore | make-tiny-model | serve | merge | train``.

Errors a user can fix (unknown task or model, bad flag values, a run folder that exists) end the
command with a one-line message and exit status 2; results already written stay on disk.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any, cast

from harness.cli.support import (
    EvalArgs,
    HarnessParser,
    closing_lines,
    default_run_dir,
    drop_if_empty,
    parse_limit,
)
from harness.loop.limits import Limits

EPILOG = (
    "Scripted policies (scripted:oracle, scripted:random, scripted:replay:FILE) are test doubles, not models."
)


class CliError(Exception):
    pass


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _cmd_eval(args: argparse.Namespace) -> int:
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
        data=args.data,
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


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="run a trainer plugin (trl_sft, curiosity_grpo, ...) from a YAML config",
        description="Run a trainer registered through harness_register_trainers; `harness plugins` "
        "lists them. Keys of --config and --set are validated against the trainer's config.",
        epilog=_train_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument(
        "-h",
        "--help",
        action=_TrainHelp,
        help="show this help and exit; after --plugin NAME also every config key with its default",
    )
    p.add_argument("--plugin", default=None, help="trainer name, e.g. trl_sft or curiosity_grpo")
    p.add_argument(
        "--show-config",
        action="store_true",
        help="print the resolved config (defaults, then --config, then --set) as YAML and exit",
    )
    p.add_argument(
        "--accelerate-config",
        default=None,
        metavar="NAME",
        help="print the installed path of a shipped accelerate config (listed below) and exit",
    )
    p.add_argument("--config", default=None, help="YAML mapping of config keys (optional)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in output_dir (same config; trainers with a resume key)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (value read as YAML; repeatable)",
    )


class _TrainHelp(argparse.Action):
    """``-h``: the usual help, then (when ``--plugin`` came first) the trainer's config keys."""

    def __init__(
        self, option_strings: list[str], dest: str = argparse.SUPPRESS, help: str | None = None
    ) -> None:
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, *_: Any) -> None:
        parser.print_help()
        plugin = getattr(namespace, "plugin", None)
        if plugin:
            from harness.plugins import Harness
            from harness.trainer import config_listing

            try:
                listing = config_listing(Harness().trainer(plugin))
            except Exception as exc:  # noqa: BLE001 (an unknown trainer: say so, still exit 0 after help)
                listing = f"(no config listing: {exc})"
            print(f"\nconfig keys of {plugin} (defaults; --config FILE.yaml / --set KEY=VALUE):")
            print(listing)
        parser.exit()


def _train_epilog() -> str:
    from harness.trainer import accelerate_configs

    configs = accelerate_configs()
    if not configs:
        return ""
    lines = ["accelerate configs shipped with the trainers (accelerate launch --config_file PATH):"]
    lines += [f"  {name:<16} {path}" for name, path in configs.items()]
    lines += [
        "example:",
        "  accelerate launch --config_file $(harness train --accelerate-config deepspeed_zero2) \\",
        "    -m harness train --plugin trl_sft --config CONFIG.yaml",
        "curiosity_grpo runs data parallel under accelerate launch too (rollouts split by group);",
        "its generation also scales through vLLM: --set use_vllm=true --set vllm_mode=colocate|server.",
    ]
    return "\n".join(lines)


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from harness.plugins import Harness
    from harness.trainer import accelerate_configs, load_config

    if args.accelerate_config is not None:
        configs = accelerate_configs()
        if args.accelerate_config not in configs:
            raise CliError(
                f"--accelerate-config {args.accelerate_config!r}: unknown; shipped: {', '.join(configs) or 'none'}"
            )
        print(configs[args.accelerate_config])
        return 0
    if args.plugin is None:
        raise CliError("--plugin is required (e.g. trl_sft or curiosity_grpo; `harness plugins` lists them)")
    harness = Harness()
    spec = harness.trainer(args.plugin)
    if args.config is not None and not Path(args.config).is_file():
        raise CliError(f"--config {args.config}: no such file")
    overrides = list(args.overrides)
    if args.resume:
        if "resume" not in {f.name for f in dataclasses.fields(spec.config_class)}:
            raise CliError(f"--resume: trainer {spec.name!r} has no resume support (no 'resume' config key)")
        overrides.append("resume=true")
    config = load_config(spec, Path(args.config) if args.config else None, overrides)
    if args.show_config:
        from harness.trainer import config_listing

        print(config_listing(spec, config))
        return 0
    try:
        out = spec.train(config, harness)
    except KeyboardInterrupt as exc:  # a trainer that checkpointed says how to resume
        print(f"harness train: {exc.args[0] if exc.args else 'interrupted'}", file=sys.stderr)
        return 130
    print(f"harness train: {spec.name} wrote {out} (evaluate with: harness eval --model hf:{out} ...)")
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


def _add_reports(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    p = sub.add_parser("view", help="HTML trajectory viewer: every turn, tool call, crop and score")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (or globs)")
    p.add_argument("--out", required=True, help="folder for one page per run")
    p.add_argument("--embed", action="store_true", help="embed crops and images (self-contained, larger)")
    p = sub.add_parser(
        "rescore",
        help="recompute every score of a run from samples.jsonl, without a model",
        description="Write results.MODE.json and samples.MODE.jsonl beside the originals (never overwritten).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="a run folder with samples.jsonl")
    p.add_argument("--scoring", required=True, help="scoring mode (`harness plugins` lists them)")


def _print_warnings(command: str, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"harness {command}: warning: {w.message}", file=sys.stderr)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness_leaderboards.build import leaderboard

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, files = leaderboard(args.runs, Path(args.out), train_logs=args.train_log)
    _print_warnings("leaderboard", caught)
    print(f"wrote {len(files)} files to {args.out} (open {Path(args.out) / 'leaderboard.html'})")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness_leaderboards.viewer import view

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pages = view(args.runs, Path(args.out), embed=args.embed)
    _print_warnings("view", caught)
    for page in pages:
        print(f"wrote {page}")
    return 0


def _cmd_rescore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.run.evaluate import format_results
    from harness_leaderboards.rescore import rescore

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = rescore(Path(args.run), args.scoring)
    _print_warnings("rescore", caught)
    print(format_results(done.result))
    n = sum(done.result.n_samples.values())
    print(f"\nrescored {n} samples with {args.scoring!r} ({done.changed} scores changed)")
    print(f"wrote {done.results_path} and {done.samples_path}")
    return 0


def _add_models(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "make-tiny-model",
        help="build the tiny random-weight Qwen2.5-VL (offline, seeded) into DIR",
        description="Build a tiny random-weight Qwen2.5-VL (real classes, ~0.3M parameters) with "
        "save_pretrained; use it as --model hf:DIR. Its replies are noise: a pipeline check, not a model.",
    )
    p.add_argument("dir", metavar="DIR", help="output folder (must not exist or be empty)")
    p.add_argument("--seed", type=int, default=0, help="weight seed (same seed, same files)")
    from harness.interop.serve import ServeOptions

    serve_defaults = ServeOptions()
    p = sub.add_parser(
        "serve",
        help="serve a model backend as an OpenAI-compatible endpoint (127.0.0.1 by default)",
        description="POST /v1/chat/completions and GET /v1/models on HOST:PORT (uvicorn + Starlette). "
        "Limits and refusals: docs/reliability.md, section harness serve.",
    )
    p.add_argument("--model", required=True, help="PREFIX:NAME, e.g. hf:PATH_OR_HUB_ID or hf:@tiny")
    p.add_argument("--model_args", default="", help="key=value,... passed to the backend")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: local only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed at start)")
    p.add_argument("--max_batch", type=int, default=8, help="requests generated together at most")
    p.add_argument(
        "--api-key", "--api_key", dest="api_key", metavar="KEY", help="require Authorization: Bearer KEY"
    )
    p.add_argument("--api_key_env", metavar="VAR", help="like --api-key, the key read from variable VAR")
    p.add_argument(
        "--max_request_pixels",
        type=int,
        default=serve_defaults.max_request_pixels,
        help="pixels of all images of one request together, read from headers before decoding "
        "(default %(default)s: 16 images of 5120*28*28)",
    )
    p.add_argument(
        "--max_body_mb", type=int, default=serve_defaults.max_body_bytes >> 20, help="request body limit"
    )
    p.add_argument(
        "--read_timeout", type=float, default=serve_defaults.read_timeout, help="seconds (head, body, idle)"
    )
    p.add_argument("--backlog", type=int, default=serve_defaults.backlog, help="listen queue length")
    p.add_argument("--verbose", action="store_true", help="log every request line")


def _cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from harness.backends.options import MissingExtra
    from harness.backends.tiny import build_tiny_model

    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "make-tiny-model needs torch and transformers: pip install 'pixel-harness[hf]'"
        ) from None
    try:
        out = build_tiny_model(args.dir, seed=args.seed)
    except FileExistsError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote a tiny random-weight Qwen2.5-VL to {out} (use --model hf:{out})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from harness.backends import parse_model_args
    from harness.interop.serve import ServeOptions, serve

    api_key = args.api_key
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise CliError(f"--api_key_env: variable {args.api_key_env} is not set or empty")
    try:
        options = ServeOptions(
            host=args.host,
            port=args.port,
            max_batch=args.max_batch,
            api_key=api_key,
            max_request_pixels=args.max_request_pixels,
            max_body_bytes=args.max_body_mb << 20,
            read_timeout=args.read_timeout,
            backlog=args.backlog,
            verbose=args.verbose,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    serve(args.model, parse_model_args(args.model_args), options)
    return 0


def _add_merge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _cmd_merge(args: argparse.Namespace) -> int:
    from harness.run.evaluate import format_results
    from harness.run.merge import merge

    result = merge(args.dirs, args.output_path, allow_partial=args.allow_partial)
    print(format_results(result))
    info = result.merged or {}
    missing = ", ".join(info.get("missing_shards") or []) or "samples"
    note = f"; PARTIAL: missing {missing}" if result.partial else ""
    shards = f"{len(info.get('shards', []))} of {info.get('count')} shards"
    print(f"\nmerged {shards} into {args.output_path}{note}")
    return 0


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    names = export_tasks(Path(args.directory), specs, args.data, args.limit)
    print(f"wrote {len(names)} lm-eval task(s) to {args.directory}: {', '.join(names)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from harness import __version__

    parser = HarnessParser(prog="harness", description="Evaluate and train pixel-space reasoning VLMs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True),
    )
    _add_eval(sub)
    sub.add_parser("tasks", help="list tasks with subsets, metric, prompt modes and version")
    sub.add_parser("plugins", help="list plugins and the hooks each implements")
    _add_reports(sub)
    _add_models(sub)
    _add_export(sub)
    _add_merge(sub)
    _add_train(sub)
    return parser


COMMANDS = {
    "eval": _cmd_eval,
    "tasks": _cmd_tasks,
    "plugins": _cmd_plugins,
    "leaderboard": _cmd_leaderboard,
    "view": _cmd_view,
    "rescore": _cmd_rescore,
    "make-tiny-model": _cmd_make_tiny_model,
    "serve": _cmd_serve,
    "export-lm-eval": _cmd_export_lm_eval,
    "merge": _cmd_merge,
    "train": _cmd_train,
}


def main(argv: Sequence[str] | None = None) -> int:
    from harness.data import DataError
    from harness.plugins import PluginError, UnknownNameError
    from harness.run.results import RunDirError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's own parser: its usage, and the closest flag
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub_parser = sub.choices[args.command]
        assert isinstance(sub_parser, HarnessParser)
        sub_parser.unrecognized(extra)
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
        out = getattr(args, "output_path", None)
        where = f" in {out} (rerun with --resume --output_path {out})" if out else " (rerun with --resume)"
        print(f"harness: interrupted; finished samples are kept{where}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
