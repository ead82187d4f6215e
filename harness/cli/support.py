"""Pieces of the command line shared by the subcommands (kept out of :mod:`harness.cli`).

- :class:`HarnessParser`: ``argparse`` with each subcommand's own usage on errors, no prefix
  abbreviations (``--lim`` is an error, not a guess), defaults shown in ``--help`` and a
  "did you mean" for a mistyped flag or choice.
- lm-eval / lmms-eval conventions of ``harness eval``: :func:`parse_limit` (a fraction of each
  task below 1), :func:`parse_gen_kwargs` (``--gen_kwargs temperature=0,max_new_tokens=512``).
- :func:`default_run_dir`: the fresh ``runs/MODEL__TASKS__TIME`` folder of a run given no
  ``--output_path`` (a run always leaves its files).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from pathlib import Path
from typing import NoReturn

from harness.cli.suggest import suggestion

#: ``--gen_kwargs`` keys and the flag or ``--episode_limits`` key each one sets.
GEN_KWARGS = {
    "temperature": "--temperature",
    "top_p": "--top_p",
    "max_new_tokens": "--episode_limits max_new_tokens",
    "max_gen_toks": "--episode_limits max_new_tokens",  # lm-eval's spelling
    "do_sample": "--temperature",
}


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default in ("", [])
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: {default})"


class HarnessParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors name the subcommand and suggest the closest spelling."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2)) or [
                c.strip() for c in match.group(2).split(",")
            ]
            message += suggestion(match.group(1), choices)
        super().error(message)

    def options(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

    def unrecognized(self, extra: list[str]) -> NoReturn:
        """Report arguments this (sub)parser did not take, with its usage and a suggestion."""
        flag = next((x for x in extra if x.startswith("-")), "")
        hint = suggestion(flag.split("=", 1)[0], self.options()) if flag else ""
        self.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


def parse_limit(text: str) -> int | float:
    """``--limit``: a whole number of samples (>= 1) or, below 1, a fraction of each task."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    if value < 1:
        return value
    if value != int(value):
        raise argparse.ArgumentTypeError(
            f"a whole number of samples (>= 1) or a fraction below 1, got {text}"
        )
    return int(value)


def parse_gen_kwargs(text: str) -> dict[str, float | int]:
    """``temperature=0,top_p=0.9,max_new_tokens=512`` -> values (``do_sample=false`` is temperature 0)."""
    out: dict[str, float | int] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in GEN_KWARGS:
            raise ValueError(
                f"--gen_kwargs: unknown or malformed item {item!r}{suggestion(key, list(GEN_KWARGS))}; "
                f"valid keys: {', '.join(GEN_KWARGS)}"
            )
        try:
            if key in ("max_new_tokens", "max_gen_toks"):
                out["max_new_tokens"] = int(raw)
            elif key == "do_sample":
                if raw.lower() not in ("false", "0", "no"):
                    raise ValueError(raw)
                out.setdefault("temperature", 0.0)
            else:
                out[key] = float(raw)
        except ValueError:
            kind = "false (greedy)" if key == "do_sample" else "a number"
            raise ValueError(f"--gen_kwargs: {key} needs {kind}, got {raw!r}") from None
    return out


def _slug(text: str, width: int) -> str:
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", text).strip("-.")[:width] or "run"


def default_run_dir(model: str, tasks: str, root: Path = Path("runs")) -> Path:
    """A fresh ``runs/MODEL__TASKS__YYYYmmdd-HHMMSS`` folder name (a suffix if it exists)."""
    prefix, _, name = model.partition(":")
    name = name.rstrip("/").rsplit("/", 1)[-1].lstrip("@") if name else ""
    model_part = _slug(f"{prefix}-{name}" if name else prefix, 48)
    task_part = _slug("+".join(t.strip() for t in tasks.split(",") if t.strip()), 48)
    base = root / f"{model_part}__{task_part}__{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def note(command: str, text: str) -> None:
    print(f"harness {command}: {text}", file=sys.stderr)


class EvalArgs:
    """``harness eval``'s flags resolved: gen_kwargs merged, --limits alias, tiny default, --device."""

    def __init__(self, args: argparse.Namespace) -> None:
        from harness.backends import parse_model_args
        from harness.backends.tiny import DEFAULT_MODEL, DEMO_MAX_NEW_TOKENS, DEMO_NOTE, is_tiny_model

        gen = parse_gen_kwargs(args.gen_kwargs)
        limits_text: str = args.episode_limits
        if args.limits is not None:
            note("eval", "--limits is deprecated (too close to --limit); use --episode_limits")
            if limits_text:
                raise ValueError("give --episode_limits only (--limits is its deprecated spelling)")
            limits_text = args.limits
        limit_keys = {item.partition("=")[0].strip() for item in limits_text.split(",") if item.strip()}
        self.temperature = _merge(gen, "temperature", args.temperature, 0.0, "--temperature")
        self.top_p = _merge(gen, "top_p", args.top_p, 1.0, "--top_p")
        if "max_new_tokens" in gen:
            if "max_new_tokens" in limit_keys:
                raise ValueError(
                    "--gen_kwargs max_new_tokens conflicts with --episode_limits max_new_tokens; give one"
                )
            limits_text = ",".join(filter(None, (limits_text, f"max_new_tokens={gen['max_new_tokens']}")))
        self.model: str = args.model or DEFAULT_MODEL
        if is_tiny_model(self.model):
            if "max_new_tokens" not in gen and "max_new_tokens" not in limit_keys:
                limits_text = ",".join(filter(None, (f"max_new_tokens={DEMO_MAX_NEW_TOKENS}", limits_text)))
            how = "no --model given" if args.model is None else f"--model {self.model}"
            note("eval", f"{how}: {DEMO_NOTE}")
        self.limits_text = limits_text
        self.model_args = parse_model_args(args.model_args)
        if args.device is not None:
            self._set_device(args.device)

    def _set_device(self, device: str) -> None:
        prefix = self.model.partition(":")[0]
        if prefix == "hf":
            old = self.model_args.get("device")
            if old is not None and old != device:
                raise ValueError(f"--device {device} conflicts with --model_args device={old}; give one")
            self.model_args["device"] = device
        elif prefix == "vllm":
            raise ValueError(
                "--device: vLLM places the model itself; choose GPUs with CUDA_VISIBLE_DEVICES and "
                "--model_args tensor_parallel_size=N"
            )
        else:
            note("eval", f"--device {device} ignored: the {prefix} backend runs no local model")


def _merge(gen: dict[str, float | int], key: str, flag: float | None, default: float, name: str) -> float:
    if key in gen:
        if flag is not None and float(flag) != float(gen[key]):
            raise ValueError(f"--gen_kwargs {key}={gen[key]} conflicts with {name} {flag}; give one")
        return float(gen[key])
    return default if flag is None else float(flag)


def closing_lines(out: str) -> str:
    """Where a run's files are and how to look at them."""
    return "\n".join(
        (
            f"\nwrote {out}/results.json and {out}/samples.jsonl",
            f"  every sample, turn by turn: harness view {out} --out {out}/view",
            f"  compare runs:               harness leaderboard {out} OTHER_RUN... --out leaderboard",
        )
    )


def drop_if_empty(folder: Path) -> None:
    """Remove a run folder this command created when no sample reached it (only its config)."""
    samples = folder / "samples.jsonl"
    if samples.exists() and samples.stat().st_size > 0:
        return
    for name in ("run_config.json", "samples.jsonl"):
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # anything else there (a lock, crops) keeps the folder
        folder.rmdir()
    if folder.parent.name == "runs":
        with contextlib.suppress(OSError):
            folder.parent.rmdir()
