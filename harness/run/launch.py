"""``accelerate launch -m harness eval ...``: one shard per process, merged by the main process.

When a launcher started several processes (``WORLD_SIZE`` > 1, or an MPI world size), rank and
world size come from accelerate's :class:`accelerate.PartialState` (which also gives each
process its own GPU: ``--model_args device=auto`` then means that GPU). Process ``I`` of ``N``
evaluates shard ``I/N`` (:mod:`harness.run.shard`) into ``OUT/shard-I-of-N``; after accelerate's
barrier (``wait_for_everyone``) the main process merges them into ``OUT`` with
:func:`harness.run.merge.merge`, so ``OUT`` is exactly what a single-process run writes.
``--resume`` resumes every shard folder. There is no process-group code here: accelerate owns
it. The barrier waits up to :data:`BARRIER_TIMEOUT` for the slowest shard.

On CPU, accelerate 1.x starts several processes with ``--multi_gpu --num_processes N`` (they
use gloo); ``--cpu --num_processes N`` starts one process unless MPI is set up
(``--mpirun_hostfile``). Each process needs the same ``--output_path`` (a shared filesystem on
several nodes).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import OptionError
from harness.run.results import SAMPLES, RunDirError
from harness.run.shard import Shard

if TYPE_CHECKING:
    from harness.plugins import Harness
    from harness.records import RunResult
    from harness.run.evaluate import EvalConfig

WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
BARRIER_TIMEOUT = datetime.timedelta(hours=24)
INSTALL_HINT = "a multi-process launch needs accelerate: pip install 'pixel-harness[hf]' (or accelerate)"


@dataclass(frozen=True)
class Process:
    """This process's place in the launch, and accelerate's barrier."""

    index: int
    count: int
    is_main: bool
    wait_for_everyone: Callable[[], None]
    finish: Callable[[], None] = lambda: None

    @property
    def shard(self) -> Shard:
        return Shard(self.index, self.count)


def launched_world_size() -> int:
    """How many processes a launcher (torchrun / accelerate / MPI) says there are; 1 if none."""
    for name in WORLD_SIZE_VARS:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 1


def accelerate_process() -> Process | None:
    """This process's rank and world size from ``accelerate.PartialState``; ``None`` when the
    command was not started by a multi-process launcher (the single-process path needs neither
    torch nor accelerate)."""
    if launched_world_size() <= 1:
        return None
    try:
        import torch
        from accelerate import PartialState
    except ImportError:
        from harness.backends.options import MissingExtra

        raise MissingExtra(INSTALL_HINT) from None
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in {"1", "true"} or not torch.cuda.is_available()
    state = PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)
    return Process(
        index=int(state.process_index),
        count=int(state.num_processes),
        is_main=bool(state.is_main_process),
        wait_for_everyone=state.wait_for_everyone,
        finish=state.destroy_process_group,
    )


def shard_folder(out: Path, shard: Shard) -> Path:
    return out / shard.folder_name


def evaluate_launched(
    config: EvalConfig, harness: Harness, process: Process, *, show_progress: bool = True
) -> RunResult | None:
    """Evaluate this process's shard; on the main process merge all shards into ``output_path``.

    Returns the merged result on the main process and ``None`` on the others.
    """
    from harness.run.evaluate import evaluate
    from harness.run.merge import merge

    if config.shard:
        raise OptionError(
            f"--shard {config.shard} cannot be combined with a {process.count}-process launch: "
            "each process already evaluates shard RANK/WORLD_SIZE"
        )
    if not config.output_path:
        raise OptionError(
            "a multi-process launch needs --output_path (each process writes OUT/shard-I-of-N, "
            "the main process merges them into OUT)"
        )
    out = Path(config.output_path)
    if (out / SAMPLES).exists() and not config.resume:
        raise RunDirError(f"{out / SAMPLES} already exists; pass --resume to continue that run")
    mine = dataclasses.replace(
        config, shard=str(process.shard), output_path=str(shard_folder(out, process.shard))
    )
    evaluate(mine, harness, show_progress=show_progress)
    process.wait_for_everyone()
    if not process.is_main:
        process.finish()
        return None
    folders = [shard_folder(out, Shard(i, process.count)) for i in range(process.count)]
    try:
        return merge(folders, out, overwrite=True, harness=harness)
    finally:
        process.finish()
