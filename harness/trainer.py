"""Trainer plugins: what ``harness_register_trainers`` returns and how ``harness train`` configures one.

A trainer is a name, a config dataclass and ``train(config, harness) -> Path`` (the checkpoint
folder it wrote, loadable by ``harness eval --model hf:PATH``). ``harness train --plugin NAME
--config FILE.yaml --set key=value`` reads the YAML mapping, applies the overrides and validates
every key and value against the dataclass; an unknown key or a wrong type is a one-line error.
PyYAML is imported only when a file or override is read.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.coerce import check
from harness.errors import OptionError

if TYPE_CHECKING:
    from harness.plugins import Harness


@dataclass(frozen=True)
class TrainerSpec:
    """A trainer: ``train(config, harness)`` runs it with an instance of ``config_class``."""

    name: str
    config_class: type[Any]
    train: Callable[[Any, Harness], Path]
    description: str = ""

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config_class):
            raise TypeError(f"trainer {self.name!r}: config_class must be a dataclass")


def build_config(spec: TrainerSpec, values: Mapping[str, Any]) -> Any:
    """An instance of ``spec.config_class`` from ``values``; ``ValueError`` names a bad key or value."""
    fields = {f.name: f for f in dataclasses.fields(spec.config_class)}
    hints = typing.get_type_hints(spec.config_class)
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise OptionError(
            f"trainer {spec.name!r}: unknown config key {unknown[0]!r}; valid keys: {', '.join(fields)}"
        )
    try:
        checked = {k: check(f"trainer {spec.name!r}: {k}", hints[k], v) for k, v in values.items()}
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    try:
        return spec.config_class(**checked)
    except TypeError as exc:  # a required field missing
        raise OptionError(f"trainer {spec.name!r}: {exc}") from None


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` with each value read as YAML (``lr=1e-4`` a float, ``x=[1,2]`` a list)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:  # not YAML (e.g. @tiny): the raw text
            value = text
        out[key.strip()] = _yaml_number(value, text)
    return out


def _yaml_number(value: Any, text: str) -> Any:
    """PyYAML (YAML 1.1) reads ``1e-4`` as a string; read such texts as floats."""
    if isinstance(value, str):
        try:
            return float(text)
        except ValueError:
            return value
    return value


def accelerate_configs() -> dict[str, Path]:
    """The accelerate config files shipped with the trainer plugins: name -> installed path.

    ``accelerate launch --config_file PATH -m harness train ...``; empty when the bundled plugins
    (``harness_plugins``) are not installed.
    """
    import importlib.util

    try:
        found = importlib.util.find_spec("harness_plugins")
    except (ImportError, ValueError):
        found = None
    if found is None:
        return {}
    roots = [Path(found.origin).parent] if found.origin else []
    roots += [Path(p) for p in found.submodule_search_locations or ()]
    for root in roots:
        if (root / "accelerate").is_dir():
            return {p.stem: p for p in sorted((root / "accelerate").glob("*.yaml"))}
    return {}


def load_config(spec: TrainerSpec, path: Path | None, overrides: Sequence[str] = ()) -> Any:
    """Read ``path`` (a YAML mapping, optional), apply ``--set`` overrides, build the config."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise OptionError(f"{path}: not valid YAML: {first}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise OptionError(f"{path}: a trainer config must be a YAML mapping")
        values = {str(k): _yaml_number(v, str(v)) for k, v in (loaded or {}).items()}
    values.update(parse_overrides(overrides))
    return build_config(spec, values)


def config_listing(spec: TrainerSpec, config: Any = None) -> str:
    """Every config key of ``spec`` with its value (``config``'s, else the default) and type, one
    per line as YAML (``key: value  # type``), for ``harness train --help`` and ``--show-config``."""
    import json

    hints = typing.get_type_hints(spec.config_class)
    lines = []
    for f in dataclasses.fields(spec.config_class):
        if config is not None:
            value = getattr(config, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        text = "null" if value is None else json.dumps(value) if isinstance(value, str) else str(value)
        text = text.lower() if isinstance(value, bool) else text
        tp = hints[f.name]
        if typing.get_origin(tp) is Literal:
            kind = "one of " + " | ".join(str(a) for a in typing.get_args(tp))
        else:
            kind = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
        lines.append(f"{f.name}: {text}  # {kind}")
    return "\n".join(lines)
