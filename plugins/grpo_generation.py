"""Where ``curiosity_grpo``'s rollouts are generated, and how the engine gets the updated weights.

Three choices, with TRL's GRPO config names (``use_vllm``, ``vllm_mode``, ``vllm_server_*``):

* ``use_vllm: false`` (default): the hf eval backend on the model being trained; nothing to sync.
  Under FSDP (sharded weights) every forward of the trained model is a collective, and processes
  decode different numbers of tokens, so generation instead runs on a full-weight copy of the
  model per process (:func:`hf_copy`: a second hf backend, refreshed from the gathered weights
  like a colocated vLLM engine; one more copy of the weights in memory, no optimiser state).
* ``vllm_mode: colocate``: the harness's vllm backend (:class:`~harness.backends.vllm_engine.VLLMPolicy`,
  the engine ``harness eval --model vllm:...`` uses, same prompts and pixels) in this process,
  sharing the GPU (``vllm_gpu_memory_utilization``, 0.3 as in TRL) and started, as TRL's colocate
  mode starts it, with ``distributed_executor_backend="external_launcher"`` so that the model
  lives in this process. After each optimiser step every changed parameter is loaded into the
  engine's model with its ``load_weights`` (vLLM maps the transformers names), then the prefix
  cache is reset: TRL's colocate sync.
* ``vllm_mode: server``: rollouts go to a ``vllm serve`` OpenAI server through the harness's
  openai backend (the engine renders the chat template, as with ``harness eval --model
  openai:...``). Weights travel over NCCL through TRL's
  :class:`trl.generation.vllm_client.VLLMClient` (``init_communicator``, ``update_named_params``,
  ``reset_prefix_cache``): TRL's server sync, which needs vLLM importable in the trainer's
  environment too and a CUDA device for the trained model.

With vLLM all of a step's episodes (``num_generations`` x ``prompts_per_step``) ride the
harness's rollout engine at once (:func:`harness.loop.rollout.run_jobs`): in server mode each request
goes out as soon as its episode is ready (the openai backend's ``submit``), in colocate mode the
engine gets whatever requests are waiting whenever it is free (the rollout engine's batcher), so
vLLM schedules the step's episodes together.

The first sync, before the first rollout, pushes every parameter (so the engine starts from the
trainer's weights even if it loaded another copy); later ones push only trainable parameters
(a frozen vision tower does not change). The engine holds the trained weights at every rollout,
but its kernels and dtype differ from the trainer's: in colocate mode the engine also returns
each sampled token's log-probability and the loss applies TRL's truncated importance-sampling
correction (:mod:`harness_plugins.grpo_importance`; ``vllm_importance_sampling_correction``). In
server mode the same numbers come over the OpenAI API (``logprobs`` with vLLM's
``return_tokens_as_token_ids``); a server that does not return token ids gets no correction
(the step's log says ``is_tokens: 0``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.loop.policy import Policy, Reply, Request

if TYPE_CHECKING:
    from .grpo_config import GRPOTrainConfig

SERVER_HINT = (
    "curiosity_grpo vllm_mode=server syncs weights with TRL's VLLMClient, which needs vLLM in the "
    "trainer's environment: pip install 'trl[vllm]'"
)


@dataclass
class Generator:
    """A rollout policy and the function that pushes the trained model's weights into it."""

    policy: Policy
    push: Callable[[Iterator[tuple[str, Any]], list[tuple[str, str, list[int]]]], None] | None = None
    pushes: int = 0
    closers: list[Callable[[], None]] = field(default_factory=list)

    def sync(self, model: Any) -> None:
        """Bring the engine to ``model``'s weights (all of them the first time, then trainable ones)."""
        if self.push is None:
            return
        params = [(n, p) for n, p in model.named_parameters() if self.pushes == 0 or p.requires_grad]
        metadata = [(n, str(p.dtype).removeprefix("torch."), list(p.shape)) for n, p in params]
        # FSDP: each parameter's full tensor, all-gathered from the shards (every process, in order)
        self.push(
            ((n, p.detach().full_tensor() if hasattr(p, "full_tensor") else p.data) for n, p in params),
            metadata,
        )
        self.pushes += 1

    def close(self) -> None:
        for closer in self.closers:
            closer()


class Batched:
    """A policy for concurrent callers: requests submitted together go to ``inner`` in one call.

    (The rollout engine batches a batch-only policy itself; this wrapper is for callers with
    their own threads.) Each caller's requests are queued and one worker thread (the harness's
    :class:`~harness.backends.batcher.Batcher`) hands
    everything queued within ``window`` seconds to the engine at once, so vLLM schedules a
    whole step's episodes together rather than ``prompts_per_step`` at a time. The engine is only
    ever called from that one thread.
    """

    def __init__(self, inner: Policy, max_batch: int, window: float = 0.01) -> None:
        from harness.backends.batcher import Batcher

        self.name = inner.name
        self.batcher = Batcher(inner, max_batch=max_batch, window=window)

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        futures = [self.batcher.submit(r) for r in requests]
        return [f.result() for f in futures]


def preflight(config: GRPOTrainConfig) -> None:
    """Fail before any model is loaded when the chosen generation cannot run here."""
    if not config.use_vllm:
        return
    if config.vllm_mode not in ("colocate", "server"):
        raise UserError(f"curiosity_grpo: vllm_mode must be colocate or server, got {config.vllm_mode!r}")
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        from harness.backends.options import MissingExtra
        from harness.backends.vllm_engine import INSTALL_HINT

        raise MissingExtra(INSTALL_HINT if config.vllm_mode == "colocate" else SERVER_HINT) from exc


def server_url(config: GRPOTrainConfig) -> str:
    """The vLLM server's base URL (no ``/v1``), as TRL builds it."""
    url = config.vllm_server_base_url or f"http://{config.vllm_server_host}:{config.vllm_server_port}"
    return url.rstrip("/").removesuffix("/v1")


def vllm_client(base_url: str, group_port: int, timeout: float) -> Any:
    """TRL's client of a ``vllm serve`` server (a seam: tests replace it with a test double)."""
    try:
        from trl.generation.vllm_client import VLLMClient

        return VLLMClient(base_url=base_url, group_port=group_port, connection_timeout=timeout)
    except ImportError as exc:
        raise UserError(SERVER_HINT) from exc
    except OSError as exc:  # requests' ConnectionError: no server within the timeout
        from harness.backends.options import first_line

        raise UserError(f"curiosity_grpo vllm_mode=server: {first_line(exc)}") from None


def colocate(config: GRPOTrainConfig, seed: int) -> Generator:
    """The vllm backend in this process, as TRL's colocate mode starts vLLM."""
    from harness.backends import parse_model_args
    from harness.backends.engine_args import split_model_args, vllm_engine_args
    from harness.backends.options import parse_options
    from harness.backends.vllm_engine import VLLMOptions, VLLMPolicy

    own, extra = split_model_args(parse_model_args(config.vllm_model_args), VLLMOptions)
    own = {
        "gpu_memory_utilization": str(config.vllm_gpu_memory_utilization),
        **({"max_model_len": str(config.vllm_max_model_length)} if config.vllm_max_model_length else {}),
        **own,
        "engine": "offline",  # the weight sync loads into vllm.LLM's model (not AsyncLLM's)
    }
    if config.vllm_importance_sampling_correction:
        own["logprobs"] = "true"  # the sampled tokens' log-probabilities (grpo_importance.py)
    options = parse_options(VLLMOptions, own, "curiosity_grpo vllm_model_args")
    if options.tensor_parallel_size != 1:
        raise UserError(
            "curiosity_grpo: vllm_mode=colocate runs one engine in the trainer's single process "
            "(tensor_parallel_size must be 1); for tensor or data parallel generation use "
            "vllm_mode=server with vllm serve --tensor-parallel-size/--data-parallel-size"
        )
    preflight(config)  # vLLM importable, before the environment is touched
    engine_args = {"distributed_executor_backend": "external_launcher"}
    engine_args.update(vllm_engine_args(extra, VLLMOptions) if extra else {})
    # external_launcher joins a torch.distributed group of this one process (TRL sets the same).
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(name, value)
    from trl.trainer.utils import ensure_master_addr_port

    ensure_master_addr_port()
    policy = VLLMPolicy(config.model, options, seed, engine_args)

    def push(params: Iterator[tuple[str, Any]], metadata: list[tuple[str, str, list[int]]]) -> None:
        model = policy.llm.llm_engine.model_executor.driver_worker.model_runner.model
        for name, tensor in params:
            model.load_weights([(name, tensor)])
        policy.llm.reset_prefix_cache()

    return Generator(policy, push)


def server(config: GRPOTrainConfig, device: Any) -> Generator:
    """Rollouts through ``vllm serve``'s OpenAI API; weights through TRL's VLLMClient."""
    from harness.backends.openai_api import OpenAIOptions, OpenAIPolicy

    base = server_url(config)
    client = vllm_client(base, config.vllm_group_port, config.vllm_server_timeout)
    try:
        client.init_communicator(device=device)
    except NotImplementedError as exc:  # TRL: the NCCL weight transfer needs a CUDA device
        raise UserError(f"curiosity_grpo vllm_mode=server: {exc}") from None
    options = OpenAIOptions(
        base_url=f"{base}/v1",
        concurrency=max(8, config.prompts_per_step * config.num_generations),
        logprobs=config.vllm_importance_sampling_correction,  # vLLM's token ids and log-probabilities
    )
    policy = OpenAIPolicy(client.model, options)

    def push(params: Iterator[tuple[str, Any]], metadata: list[tuple[str, str, list[int]]]) -> None:
        client.update_named_params(metadata, params)
        client.reset_prefix_cache()

    return Generator(policy, push, closers=[policy.close, client.close_communicator])


def hf_copy(config: GRPOTrainConfig, device: str) -> Generator:
    """A full-weight hf backend beside a sharded (FSDP) trained model, for generation only."""
    import torch

    from harness.backends.hf import HFOptions, HFPolicy

    policy = HFPolicy(config.model, HFOptions(device=device, dtype=config.dtype))
    target = dict(policy.model.named_parameters())
    for param in target.values():
        param.requires_grad_(False)

    def push(params: Iterator[tuple[str, Any]], metadata: list[tuple[str, str, list[int]]]) -> None:
        with torch.no_grad():
            for name, tensor in params:
                if name not in target:
                    raise RuntimeError(f"curiosity_grpo: the generation copy has no parameter {name!r}")
                target[name].copy_(tensor)

    return Generator(policy, push)


def generator(
    config: GRPOTrainConfig, hf_policy: Policy, device: Any, seed: int, sharded: bool = False
) -> Generator:
    """The rollout policy the config asks for (``hf_policy`` is the trained model's own backend;
    ``sharded``: its weights are FSDP shards, so hf generation needs a full copy)."""
    if not config.use_vllm:
        return hf_copy(config, str(device)) if sharded else Generator(hf_policy)
    preflight(config)  # a known vllm_mode, vLLM importable
    return colocate(config, seed) if config.vllm_mode == "colocate" else server(config, device)
