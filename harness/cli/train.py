"""``harness train``: run a trainer plugin from a YAML config (``--config``, ``--set KEY=VALUE``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli.command import CliError, Command, SubParsers


def _add_train(sub: SubParsers) -> argparse.ArgumentParser:
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
    return p


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


COMMANDS = (Command("train", _add_train, _cmd_train),)
