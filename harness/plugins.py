"""The plugin manager and a typed facade over ``pm.hook``.

Built-in tools, backends and tasks are ordinary plugin modules registered through the same
``pm.register`` path as third-party code. Third-party plugins come from the ``harness``
entry-point group unless ``HARNESS_DISABLE_PLUGIN_AUTOLOAD`` is set; ``HARNESS_BLOCK_PLUGINS``
(comma-separated names) blocks named plugins, built-ins included. After loading,
``check_pending()`` turns a misspelled hook implementation into a start-up error.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pluggy

from harness import hookspecs
from harness.cli.suggest import suggestion

if TYPE_CHECKING:
    from harness.backends import BackendFactory
    from harness.records import RunResult, SampleScore, Trajectory
    from harness.scoring.modes import ScoringMode
    from harness.sections import Section
    from harness.task import TaskSpec
    from harness.tools import ToolSpec
    from harness.trainer import TrainerSpec

PROJECT = "harness"
ENTRY_POINT_GROUP = "harness"
ENV_DISABLE_AUTOLOAD = "HARNESS_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "HARNESS_BLOCK_PLUGINS"

#: The built-in task modules are named by the tasks package itself (``harness_tasks.PLUGINS``):
#: the core knows no task.
BUILTIN_TASK_PACKAGE = "harness_tasks"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "harness.tools",
    "harness.scoring.modes",
    "harness.scoring.compat",
    "harness.backends.scripted",
    "harness.backends.hf",
    "harness.backends.vllm_engine",
    "harness.backends.openai_api",
    *importlib.import_module(BUILTIN_TASK_PACKAGE).PLUGINS,
    "harness_leaderboards.breakdowns",
    "harness_plugins.trl_sft",
    "harness_plugins.curiosity_grpo",
)


class PluginError(Exception):
    """A plugin is broken or two plugins collide; the message names them."""


class UnknownNameError(LookupError):
    """An unknown task/backend/tool name; the message lists the valid ones."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def make_plugin_manager(
    *, autoload: bool | None = None, extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins, entry-point plugins and ``extra`` objects."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (n.strip() for n in os.environ.get(ENV_BLOCK, "").split(","))):
        pm.set_blocked(name)
    for modname in BUILTIN_PLUGINS:
        if pm.is_blocked(modname):
            continue
        pm.register(importlib.import_module(modname), name=modname)
    if autoload is None:
        autoload = not _env_flag(ENV_DISABLE_AUTOLOAD)
    if autoload:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from exc
    return pm


def _collect(pm: pluggy.PluginManager, hook: str, key: Any) -> list[tuple[str, Any]]:
    """Call ``hook`` on every plugin, flattening results and remembering which plugin gave each."""
    out: list[tuple[str, Any]] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        items = impl.function()
        if items is None:
            continue
        seq = items.items() if isinstance(items, Mapping) else ((key(x), x) for x in items)
        out.extend((impl.plugin_name, kv) for kv in seq)
    return out


def _unique(kind: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for plugin, (name, value) in pairs:
        if name in found:
            raise PluginError(f"{kind} {name!r} is registered by both {owner[name]!r} and {plugin!r}")
        found[name], owner[name] = value, plugin
    return found


@dataclass(frozen=True)
class PluginInfo:
    name: str
    hooks: tuple[str, ...]
    distribution: str | None


class Harness:
    """Typed access to everything the plugins registered."""

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self.pm = pm if pm is not None else make_plugin_manager()

    @cached_property
    def tasks(self) -> dict[str, TaskSpec]:
        pairs = _collect(self.pm, "harness_register_tasks", lambda t: t.name)
        return dict(sorted(_unique("task", pairs).items()))

    @cached_property
    def backends(self) -> dict[str, BackendFactory]:
        return _unique("backend", _collect(self.pm, "harness_register_backends", None))

    @cached_property
    def tools(self) -> list[ToolSpec]:
        pairs = _collect(self.pm, "harness_register_tools", lambda t: t.name)
        return list(_unique("tool", pairs).values())

    @cached_property
    def scoring_modes(self) -> dict[str, ScoringMode]:
        return _unique("scoring mode", _collect(self.pm, "harness_register_scoring_modes", None))

    def scoring_mode(self, name: str) -> ScoringMode:
        try:
            return self.scoring_modes[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown scoring mode {name!r}{suggestion(name, self.scoring_modes)}; "
                f"valid modes: {', '.join(sorted(self.scoring_modes))}"
            ) from None

    @cached_property
    def trainers(self) -> dict[str, TrainerSpec]:
        pairs = _collect(self.pm, "harness_register_trainers", lambda t: t.name)
        return dict(sorted(_unique("trainer", pairs).items()))

    def trainer(self, name: str) -> TrainerSpec:
        try:
            return self.trainers[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown trainer {name!r}{suggestion(name, self.trainers)}; "
                f"valid trainers: {', '.join(self.trainers) or 'none'}"
            ) from None

    def task(self, name: str) -> TaskSpec:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown task {name!r}{suggestion(name, self.tasks)}; valid tasks: {', '.join(self.tasks)}"
            ) from None

    def resolve_tasks(self, spec: str) -> list[TaskSpec]:
        """``"all"`` or a comma-separated list of names (order kept, duplicates dropped)."""
        names = (
            list(self.tasks) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
        )
        if not names:
            raise UnknownNameError(f"no task given; valid tasks: {', '.join(self.tasks)}")
        return [self.task(n) for n in dict.fromkeys(names)]

    def backend(self, prefix: str) -> BackendFactory:
        try:
            return self.backends[prefix]
        except KeyError:
            raise UnknownNameError(
                f"unknown model backend {prefix!r}{suggestion(prefix, self.backends)}; "
                f"valid backends: {', '.join(sorted(self.backends))}"
            ) from None

    def on_trajectory(self, trajectory: Trajectory, score: SampleScore) -> None:
        self.pm.hook.harness_on_trajectory(trajectory=trajectory, score=score)

    def leaderboard_sections(self, results: Mapping[str, RunResult]) -> list[Section]:
        """Every plugin's report sections, in plugin registration order (built-ins first)."""
        parts: list[list[Section]] = self.pm.hook.harness_leaderboard_sections(results=results)
        return [section for part in reversed(parts) for section in part or ()]

    def plugin_info(self) -> list[PluginInfo]:
        dists = {id(p): d.project_name for p, d in self.pm.list_plugin_distinfo()}
        out = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            out.append(PluginInfo(name=name, hooks=hooks, distribution=dists.get(id(plugin))))
        return out
