"""pixel-harness: evaluate and train VLMs that reason in pixel space.

Public surface: ``hookimpl`` for plugins, the records, ``Limits``, ``TaskSpec`` and the policy
types. Importing this package imports no model library (torch, transformers, trl, vllm).
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
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
    "TaskResult",
    "TaskSpec",
    "ToolCall",
    "Trajectory",
    "Turn",
    "__version__",
    "hookimpl",
]
