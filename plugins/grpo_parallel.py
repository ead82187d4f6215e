"""Data-parallel pieces of ``curiosity_grpo`` on accelerate (no process-group code of our own).

Under ``accelerate launch`` with N processes (the ``multi_gpu`` config, or N CPU processes),
every process holds the same ordered prompt list and the same config, so the rest is
deterministic bookkeeping:

* **Rollouts split by group**: process r collects the prompts ``batch[r::N]`` of a step, all
  ``num_generations`` rollouts of a prompt on one process (advantages stay group-local).
* **One global view**: each process's rollouts are sent to every process *without* their
  conversations and images (:func:`share`: record, score, trajectory, group), through
  ``accelerate.utils.gather_object``, and put back into the single-process order (generation,
  prompt). Every process then takes the same decisions (rewards, group drops, refill, shuffle,
  updates); a rollout whose conversation lives on another process is ``local=False`` and only
  its owner computes its loss.
* **The loss**: each process backpropagates its own rollouts' share of the single-process loss;
  the gradients are then summed over processes with one flat ``accelerator.reduce`` per update
  (:func:`sum_gradients`; a process without rollouts in an update sends zeros), so every process
  holds the single-process gradient of the same global batch and takes the same optimiser step.
  The model is not wrapped in DDP: processes run different numbers of forwards (their own
  rollouts), and DDP's collectives inside forward and backward (bucket rebuilds, buffer
  broadcasts, the reducer) require the same sequence on every process.
* **FSDP** (:func:`sharded`: an accelerate config with ``distributed_type: FSDP``, FSDP2): the
  model is ``accelerator.prepare``d (weights sharded), and since every FSDP forward all-gathers
  and every backward reduce-scatters, all processes agree on the number of forward passes
  (:func:`pad_count`: the largest over processes) and a process with fewer runs zero-weight
  padding passes (a real sequence, loss times 0). FSDP's reduce-scatter averages the gradients
  over processes, so :func:`sum_gradients` only multiplies the shards by the world size.
  Generation must not go through the sharded module (processes decode different numbers of
  tokens): it runs on a full-weight copy per process, a vLLM colocate engine or a second hf
  backend, which gets the weights gathered parameter by parameter (``DTensor.full_tensor``)
  before each collection. DeepSpeed is refused in one line.
* Metrics (loss, clipped tokens, largest ratio deviation, token counts) are reduced across
  processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.records import Sample
    from harness.task import TaskSpec

    from .grpo_collect import Rollout


def shard(batch: Sequence[Any], rank: int, world: int) -> list[Any]:
    """The prompts process ``rank`` collects: every ``world``-th from ``rank``."""
    return list(batch[rank::world])


def positions(
    rolls: Sequence[Rollout], local_items: Sequence[tuple[Any, Sample]], generations: int
) -> list[int]:
    """For each collected rollout (in ``collect_items``' order: generation, then item; episodes
    without a turn left out), the index ``k * len(local_items) + j`` of its (generation, item)."""
    expected = [(k, j) for k in range(generations) for j in range(len(local_items))]
    out, cursor = [], 0
    for roll in rolls:
        while local_items[expected[cursor][1]][1].key != roll.group:
            cursor += 1
        k, j = expected[cursor]
        out.append(k * len(local_items) + j)
        cursor += 1
    return out


def share(
    rolls: Sequence[Rollout],
    batch: Sequence[tuple[TaskSpec, Sample]],
    generations: int,
    accelerator: Any,
) -> list[Rollout]:
    """Every process's rollouts of this step, in the single-process order; the others' without
    their conversation (``local=False``)."""
    from accelerate.utils import gather_object

    rank, world = accelerator.process_index, accelerator.num_processes
    local_items = shard(batch, rank, world)
    mine = positions(rolls, local_items, generations)
    # global order key of local (generation k, item j): (k, rank + j * world)
    keys = [(p // max(len(local_items), 1), rank + (p % max(len(local_items), 1)) * world) for p in mine]
    light = [
        (key, rank, r.group, r.sample, r.trajectory, r.score) for key, r in zip(keys, rolls, strict=True)
    ]
    everything = gather_object(light)
    specs = {s.key: spec for spec, s in batch}
    local_by_key = dict(zip(keys, rolls, strict=True))
    out = []
    for key, owner, group, sample, trajectory, score in sorted(everything, key=lambda x: x[0]):
        if owner == rank:
            out.append(local_by_key[key])
        else:
            roll = local_by_key.get(key)
            assert roll is None
            from .grpo_collect import Rollout

            out.append(Rollout(specs[group], group, sample, trajectory, score, [], local=False))
    return out


def reduce_sum(accelerator: Any, values: Sequence[float]) -> list[float]:
    """``values`` summed over processes (as float64 on the accelerator's device)."""
    import torch

    if accelerator is None or accelerator.num_processes == 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=accelerator.device)
    return [float(x) for x in accelerator.reduce(t, reduction="sum")]


def reduce_max(accelerator: Any, value: float) -> float:
    import torch

    if accelerator is None or accelerator.num_processes == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=accelerator.device)
    return float(accelerator.gather(t).max())


def sharded(accelerator: Any) -> bool:
    """Whether the model is sharded by FSDP across several processes."""
    if accelerator is None or accelerator.num_processes == 1:
        return False
    return bool(accelerator.distributed_type.value == "FSDP")


def pad_count(accelerator: Any, passes: int) -> int:
    """Padding forward passes this process adds so that every process runs as many as the
    busiest one (FSDP only: each forward and backward is a collective); 0 otherwise."""
    if not sharded(accelerator):
        return 0
    return int(reduce_max(accelerator, float(passes))) - passes


def sum_gradients(params: Sequence[Any], accelerator: Any) -> None:
    """Replace each parameter's gradient by its sum over processes: one flat all-reduce through
    ``accelerator.reduce``, the same parameters in the same order on every process (a process
    without rollouts in this update contributes zeros). Under FSDP the backward already
    reduce-scattered the gradients as a mean over processes (a divide factor of 1 would need
    PREMUL_SUM, which gloo lacks): each shard is multiplied by the world size."""
    import torch

    if sharded(accelerator):
        for p in params:
            if p.grad is not None:
                p.grad.mul_(accelerator.num_processes)
        return

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="sum")
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n
