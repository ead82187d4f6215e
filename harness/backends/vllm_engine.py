"""vLLM backend: ``--model vllm:PATH_OR_HUB_ID`` (optional extra: ``pip install 'pixel-harness[vllm]'``).

Written against vLLM's public offline API: ``LLM(model, tensor_parallel_size, dtype, seed,
limit_mm_per_prompt, mm_processor_kwargs={"min_pixels", "max_pixels"}, ...)`` and
``LLM.generate(prompts, sampling_params)`` with ``{"prompt": text, "multi_modal_data": {"image":
[PIL...], "video": [frames array]}}`` prompts and one ``SamplingParams`` per request (its seed,
``stop`` strings plus ``stop_token_ids``, ``include_stop_str_in_output``; end-of-turn strings are
then cut by :func:`~harness.backends.chat.finish_text`). As in the released evaluation the stops
are ``<|im_end|>``/``<|endoftext|>`` only: ``</tool_call>`` is not a stop (``stop_at_tool_call=true``
makes it one, kept in the reply).

The prompt text is rendered with the checkpoint's chat template through the same function the
hf backend uses (:func:`harness.backends.hf.render_prompts`), so both backends give the model the
same tokens and the same pixels (tests check it on the tiny model, without vLLM).

By default (``engine=async``) the engine is vLLM's ``AsyncLLM`` (``AsyncEngineArgs`` with the
same arguments, prefix caching on): the rollout engine submits each episode's next request the
moment it is ready and vLLM batches at the token level, so no episode waits for another's reply.
``engine=offline`` uses ``vllm.LLM`` and one ``generate`` call per batch of waiting requests (the
GRPO colocate mode uses it: it loads weights into that engine's model).

vLLM lives in its own environment (it pins its own torch): CI builds ``.venv-vllm`` and runs this
backend's tests against the real ``SamplingParams``, ``EngineArgs``/``AsyncEngineArgs`` and prompt
building there (see .ci/run); without vLLM ``--model vllm:...`` fails with the install hint.
Generation needs a GPU: ``examples/gpu_check.sh`` checks it against the hf backend on one.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from harness import hookimpl
from harness.backends import BackendContext, BackendFactory
from harness.backends.batcher import Batcher
from harness.backends.chat import collect_media, finish_text
from harness.backends.engine_args import VLLM_INSTALL_HINT, split_model_args, vllm_engine_args
from harness.backends.options import MissingExtra, parse_options
from harness.errors import OptionError, UserError
from harness.loop.policy import DEFAULT_STOP, FinishReason, Policy, Reply, Request, Sampling
from harness.loop.protocol import TOOL_END

INSTALL_HINT = VLLM_INSTALL_HINT


@dataclass(frozen=True)
class VLLMOptions:
    """``--model_args`` of the vllm backend."""

    tensor_parallel_size: int = 1
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False
    trust_remote_code: bool = False
    min_pixels: int | None = 4 * 28 * 28  # the processor's bounds, wide: the episode sizes images
    max_pixels: int | None = 16384 * 28 * 28
    max_images: int = 16  # limit_mm_per_prompt (the episode's max_images)
    max_videos: int = 1
    video_fps: float = 2.0
    stop_at_tool_call: bool = False  # true: </tool_call> is a stop too (not as released)
    engine: str = "async"  # async: AsyncLLM, each request on its own; offline: vllm.LLM, batches
    prefix_caching: bool = True  # a conversation's earlier turns are not prefilled again
    logprobs: bool = False  # fill Reply.logprobs: each sampled token's id and log-probability

    def __post_init__(self) -> None:
        if self.engine not in ("async", "offline"):
            raise OptionError(f"vllm: --model_args engine must be async or offline, got {self.engine!r}")
        if self.tensor_parallel_size < 1:
            raise OptionError(
                f"vllm: --model_args tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}"
            )
        if not 0 < self.gpu_memory_utilization <= 1:
            raise OptionError("vllm: --model_args gpu_memory_utilization must be in (0, 1]")
        if self.max_images < 1 or self.max_videos < 0:
            raise OptionError("vllm: --model_args max_images must be >= 1 and max_videos >= 0")


def engine_kwargs(
    model: str, options: VLLMOptions, seed: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM(...)``; ``extra`` are the other ``--model_args``, checked
    against vLLM's ``EngineArgs`` (:mod:`harness.backends.engine_args`) and passed as they are."""
    mm: dict[str, Any] = {}
    if options.min_pixels is not None:
        mm["min_pixels"] = options.min_pixels
    if options.max_pixels is not None:
        mm["max_pixels"] = options.max_pixels
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": options.tensor_parallel_size,
        "dtype": options.dtype,
        "seed": seed,
        "gpu_memory_utilization": options.gpu_memory_utilization,
        "enforce_eager": options.enforce_eager,
        "trust_remote_code": options.trust_remote_code,
        "limit_mm_per_prompt": {"image": options.max_images, "video": options.max_videos},
        "mm_processor_kwargs": mm,
        "enable_prefix_caching": options.prefix_caching,
    }
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    kwargs.update(extra or {})
    return kwargs


def stop_strings(sampling: Sampling, options: VLLMOptions) -> tuple[list[str], tuple[str, ...]]:
    """(every stop string, the ones kept in the reply)."""
    keep = (TOOL_END,) if options.stop_at_tool_call else ()
    return list(dict.fromkeys((*sampling.stop, *keep))), keep


def sampling_kwargs(
    sampling: Sampling, options: VLLMOptions, stop_token_ids: Sequence[int] = ()
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams(...)`` for one request."""
    stops, _ = stop_strings(sampling, options)
    logprobs = {"logprobs": 0} if options.logprobs else {}  # 0: the sampled token's only
    return {
        **logprobs,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p if sampling.temperature > 0 else 1.0,
        "top_k": sampling.top_k if sampling.temperature > 0 and sampling.top_k > 0 else 0,  # 0: off
        "max_tokens": sampling.max_new_tokens,
        "stop": stops,
        "stop_token_ids": list(stop_token_ids),
        "include_stop_str_in_output": True,
        "skip_special_tokens": True,
        "seed": sampling.seed,
    }


def build_prompt(prompt: str, messages: Sequence[dict[str, Any]], options: VLLMOptions) -> dict[str, Any]:
    """vLLM's prompt dict: the rendered text plus the conversation's images and videos in order."""
    import numpy as np

    images, videos = collect_media(messages)
    data: dict[str, Any] = {}
    if images:
        data["image"] = images
    if videos:
        data["video"] = [np.stack([np.asarray(f.convert("RGB")) for f in frames]) for frames in videos]
    out: dict[str, Any] = {"prompt": prompt}
    if data:
        out["multi_modal_data"] = data
    if videos:
        out["mm_processor_kwargs"] = {"fps": options.video_fps}
    return out


def build_prompts(processor: Any, requests: Sequence[Request], options: VLLMOptions) -> list[dict[str, Any]]:
    """The prompts of a round, rendered with the hf backend's template function."""
    from harness.backends.hf import render_prompts

    texts = render_prompts(processor, [r.messages for r in requests])
    return [build_prompt(t, r.messages, options) for t, r in zip(texts, requests, strict=True)]


def to_reply(output: Any, sampling: Sampling, options: VLLMOptions, seconds: float) -> Reply:
    """A vLLM ``RequestOutput`` as a :class:`Reply` (stop handling as the hf backend's)."""
    completion = output.outputs[0]
    stops, keep = stop_strings(sampling, options)
    text, found = finish_text(completion.text, stops, keep)
    reason: FinishReason = "length" if completion.finish_reason == "length" and not found else "stop"
    return Reply(
        text=text,
        finish_reason=reason,
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(completion.token_ids),
        seconds=seconds,
        logprobs=sampled_logprobs(completion) if options.logprobs else None,
    )


def sampled_logprobs(completion: Any) -> tuple[tuple[int, float], ...] | None:
    """(token id, log-probability) of every sampled token of a vLLM ``CompletionOutput`` asked
    for with ``SamplingParams(logprobs=0)`` (each position's dict holds the sampled token; vLLM's
    default ``logprobs_mode`` gives the model's raw log-probabilities); ``None`` without them."""
    positions = getattr(completion, "logprobs", None)
    if positions is None or len(positions) != len(completion.token_ids):
        return None
    return tuple((int(t), float(p[t].logprob)) for t, p in zip(completion.token_ids, positions, strict=True))


class VLLMPolicy:
    """A vLLM engine behind the :class:`~harness.loop.policy.Policy` interface."""

    def __init__(
        self, model: str, options: VLLMOptions, seed: int = 0, engine_args: Mapping[str, Any] | None = None
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise MissingExtra(INSTALL_HINT) from exc
        from harness.backends.hf import resolve_model
        from harness.backends.lazy import transformers_module

        source = resolve_model(model)
        self.vllm, self.options, self.name = vllm, options, f"vllm:{model}"
        self.processor = transformers_module().AutoProcessor.from_pretrained(
            source, trust_remote_code=options.trust_remote_code
        )
        kwargs = engine_kwargs(source, options, seed, engine_args)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batcher: Batcher | None = None
        self._ids = itertools.count()
        if options.engine == "async":
            self._start_async(kwargs)
        else:
            self.llm = vllm.LLM(**kwargs)
        tokenizer = self.processor.tokenizer
        ends = (*DEFAULT_STOP, *((TOOL_END,) if options.stop_at_tool_call else ()))
        ids = [tokenizer.encode(s, add_special_tokens=False) for s in ends]
        self.stop_token_ids = [t[0] for t in ids if len(t) == 1]

    # -- asynchronous engine (engine=async, the default) -------------------------------------

    def _start_async(self, kwargs: dict[str, Any]) -> None:
        """vLLM's ``AsyncLLM`` (token-level continuous batching) on an event-loop thread of ours."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from harness.data.media_pool import worker_pool

        args = AsyncEngineArgs(**kwargs)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="harness-vllm-async", daemon=True).start()
        self._loop, self._encoder = loop, worker_pool(name="harness-vllm-prompts")

        async def build() -> Any:
            return AsyncLLM.from_engine_args(args)

        self.engine = asyncio.run_coroutine_threadsafe(build(), loop).result()

    def submit(self, request: Request) -> Future[Reply]:
        """Start one request (the rollout engine's interface): with ``engine=async`` it goes to
        ``AsyncLLM.generate`` at once, its prompt rendered on the worker pool; with
        ``engine=offline`` it waits for the next ``LLM.generate`` batch (a :class:`Batcher`)."""
        if self._loop is None:
            if self._batcher is None:
                self._batcher = Batcher(self, max_batch=1024)
            return self._batcher.submit(request)
        return asyncio.run_coroutine_threadsafe(self._aone(request), self._loop)

    async def _aone(self, request: Request) -> Reply:
        from vllm.sampling_params import RequestOutputKind

        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            prompts = await loop.run_in_executor(
                self._encoder, build_prompts, self.processor, [request], self.options
            )
        except Exception as exc:  # one bad conversation must not take down the run
            return Reply(f"vllm backend: cannot encode the conversation: {exc}", "error")
        params = self.vllm.SamplingParams(
            **sampling_kwargs(request.sampling, self.options, self.stop_token_ids),
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        final: Any = None
        try:
            async for output in self.engine.generate(prompts[0], params, f"harness-{next(self._ids)}"):
                final = output
        except ValueError as exc:  # e.g. the prompt is past max_model_len
            return Reply(f"vllm backend: {exc}", "error", seconds=time.perf_counter() - start)
        if final is None:
            return Reply("vllm backend: the engine returned no output", "error")
        return to_reply(final, request.sampling, self.options, time.perf_counter() - start)

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
        loop, self._loop = self._loop, None
        if loop is not None:
            self.engine.shutdown()
            loop.call_soon_threadsafe(loop.stop)
            self._encoder.shutdown(wait=False)

    # -- offline engine (engine=offline: vllm.LLM, one generate per batch) ---------------------

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        if self._loop is not None:
            futures = [self.submit(r) for r in requests]
            return [f.result() for f in futures]
        start = time.perf_counter()
        replies: dict[int, Reply] = {}
        prompts: list[dict[str, Any]] = []
        good: list[int] = []
        for i, r in enumerate(requests):
            try:
                prompts += build_prompts(self.processor, [r], self.options)
                good.append(i)
            except Exception as exc:  # one bad conversation must not take down the round
                replies[i] = Reply(f"vllm backend: cannot encode the conversation: {exc}", "error")
        params = [
            self.vllm.SamplingParams(
                **sampling_kwargs(requests[i].sampling, self.options, self.stop_token_ids)
            )
            for i in good
        ]
        try:
            outputs: list[Any] = self.llm.generate(prompts, params, use_tqdm=False) if good else []
        except ValueError:  # e.g. one prompt past max_model_len: find it, run the others
            outputs = []
            for i, prompt, param in zip(list(good), prompts, params, strict=True):
                try:
                    outputs += self.llm.generate([prompt], [param], use_tqdm=False)
                except ValueError as exc:
                    replies[i] = Reply(f"vllm backend: {exc}", "error")
                    good.remove(i)
        seconds = time.perf_counter() - start
        for i, output in zip(good, outputs, strict=True):
            replies[i] = to_reply(output, requests[i].sampling, self.options, seconds)
        return [replies[i] for i in range(len(requests))]


def make_vllm(rest: str, ctx: BackendContext) -> Policy:
    """Factory for ``--model vllm:...``: imports vLLM only now (one-line hint when it is missing)."""
    own, extra = split_model_args(ctx.model_args, VLLMOptions)  # the rest: vLLM's EngineArgs
    options = parse_options(VLLMOptions, own, "vllm")
    if not rest:
        raise UserError("vllm needs a model: --model vllm:PATH_OR_HUB_ID")
    engine_args = vllm_engine_args(extra, VLLMOptions) if extra else {}
    return VLLMPolicy(rest, options, ctx.seed, engine_args)


FACTORIES: dict[str, Callable[[str, BackendContext], Policy]] = {"vllm": make_vllm}


@hookimpl
def harness_register_backends() -> dict[str, BackendFactory]:
    return dict(FACTORIES)
