"""Every hook of pixel-harness, in one place (pluggy project name ``"harness"``).

Plugins implement these with ``from harness import hookimpl``. The built-in tools, tasks and
backends register through exactly these hooks, like any third-party plugin. Third-party plugins
are found through the ``harness`` entry-point group; a misspelled hook name fails at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from harness.backends import BackendFactory
    from harness.records import RunResult, SampleScore, Trajectory
    from harness.scoring.modes import ScoringMode
    from harness.sections import Section
    from harness.task import TaskSpec
    from harness.tools import ToolSpec
    from harness.trainer import TrainerSpec

hookspec = pluggy.HookspecMarker("harness")


@hookspec
def harness_register_tasks() -> list[TaskSpec]:
    """Return the benchmarks this plugin provides.

    Called once when the plugin manager is built. Task names must be unique across all
    plugins; a collision is an error that names both plugins.
    """
    raise NotImplementedError


@hookspec
def harness_register_backends() -> dict[str, BackendFactory]:
    """Return model backends as ``{prefix: factory}``.

    ``--model PREFIX:REST`` calls ``factory(REST, context)`` with a
    :class:`harness.backends.BackendContext` (model args, seed, tasks) and must get a
    :class:`harness.loop.policy.Policy`. Prefixes must be unique. Factories import their heavy dependencies lazily, when called.
    """
    raise NotImplementedError


@hookspec
def harness_register_tools() -> list[ToolSpec]:
    """Return visual tools (name, advertised JSON schema, media they apply to, and the function).

    Tool names must be unique. The tools advertised in the ``vcot`` system message are those
    registered here, in registration order.
    """
    raise NotImplementedError


@hookspec
def harness_register_scoring_modes() -> dict[str, ScoringMode]:
    """Return scoring modes as ``{name: mode(spec, sample, trajectory) -> Scored}``.

    Selected with ``harness eval --scoring NAME`` and ``harness rescore --scoring NAME``; the
    built-in ``official`` mode applies each task's own scorer to the final reply. Names must be
    unique; a mode that does not apply to a task raises ``ValueError``.
    """
    raise NotImplementedError


@hookspec
def harness_register_trainers() -> list[TrainerSpec]:
    """Return trainers (:class:`harness.trainer.TrainerSpec`: name, config dataclass, ``train``).

    Run with ``harness train --plugin NAME --config FILE.yaml [--set key=value ...]``; ``train``
    gets the validated config and the :class:`harness.plugins.Harness` and returns the checkpoint
    folder it wrote (loadable by ``harness eval --model hf:PATH``). Names must be unique. Trainer
    modules import torch/TRL only inside ``train``.
    """
    raise NotImplementedError


@hookspec
def harness_on_trajectory(trajectory: Trajectory, score: SampleScore) -> None:
    """Observe each finished and scored episode (logging, live statistics).

    Called in the evaluating process right after the sample is written to ``samples.jsonl``.
    Return values are ignored; an exception here aborts the run (results so far are kept).
    """


@hookspec
def harness_leaderboard_sections(results: Mapping[str, RunResult]) -> list[Section]:
    """Return extra tables for ``harness leaderboard`` reports.

    Called once per report with every run being reported, as ``{row label: RunResult}`` (the
    label is how the run's row is named in every table; runs whose results file could not be
    read are already left out). Return :class:`harness.sections.Section` tables; they are
    rendered after the built-in tables into the Markdown, HTML and JSON reports. Reports are a
    pure function of the result files: read only ``results``, never a model.
    The built-in per-task breakdown tables come from this hook too.
    """
    raise NotImplementedError
