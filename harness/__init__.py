"""pixel-harness: evaluate and train VLMs that reason in pixel space.

The whole plugin API is importable from here: ``hookimpl`` (the marker every plugin's hooks
carry; the hooks themselves are in :mod:`harness.hookspecs`), the records, ``Limits``,
``TaskSpec``, the policy types, ``ToolSpec`` / ``ToolContext`` / ``ToolResult`` (tools),
``BackendContext`` (backends), ``TrainerSpec`` (trainers) and ``Section`` (report sections).
Importing this package imports no model library (torch, transformers, trl, vllm); the tool,
backend, trainer and section types load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

hookimpl = pluggy.HookimplMarker("harness")

from harness.loop.limits import Limits  # noqa: E402
from harness.loop.policy import Policy, Reply, Request, Sampling  # noqa: E402
from harness.records import (  # noqa: E402
    MetricValue,
    Observation,
    RunResult,
    Sample,
    SampleScore,
    TaskResult,
    ToolCall,
    Trajectory,
    Turn,
)
from harness.task import Scored, TaskSpec  # noqa: E402

if TYPE_CHECKING:
    from harness.backends import BackendContext
    from harness.sections import Section
    from harness.tools import ToolContext, ToolResult, ToolSpec
    from harness.trainer import TrainerSpec

__version__ = "0.1.0"

#: Names loaded on first access (their modules pull in PIL or the plugin manager's helpers).
_LAZY = {
    "BackendContext": "harness.backends",
    "Section": "harness.sections",
    "ToolContext": "harness.tools",
    "ToolResult": "harness.tools",
    "ToolSpec": "harness.tools",
    "TrainerSpec": "harness.trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = [
    "BackendContext",
    "Limits",
    "MetricValue",
    "Observation",
    "Policy",
    "Reply",
    "Request",
    "RunResult",
    "Sample",
    "SampleScore",
    "Sampling",
    "Scored",
    "Section",
    "TaskResult",
    "TaskSpec",
    "ToolCall",
    "ToolContext",
    "ToolResult",
    "ToolSpec",
    "TrainerSpec",
    "Trajectory",
    "Turn",
    "__version__",
    "hookimpl",
]
