"""transformers backend: ``--model hf:PATH_OR_HUB_ID`` (Qwen2.5-VL family and other image-text models).

The conversation is rendered with the processor's chat template and the episode's PIL images and
video frames are passed as they are: the episode owns the pixel budget, so the processor's pixel
bounds default to a range wide enough (``min_pixels=3136``, ``max_pixels=12845056``) that it never
resizes them again (a warning says so if it ever does). Requests are generated in batches of
``batch_size`` with left padding. Decoding uses only the request's parameters (greedy when
``temperature`` is 0; the checkpoint's own repetition penalty or top-k are not applied), so hf
and vLLM decode alike. Generation stops only at an end-of-turn string (``<|im_end|>``,
``<|endoftext|>``; removed from the reply), as in the released evaluation: ``</tool_call>`` is not a
stop, so text after it makes the reply a final answer (``stop_at_tool_call=true`` ends the turn
right after it instead). Each reply records its prompt and completion tokens and the
wall time of the batch it was generated in.

A bad request never stops the run: a conversation the processor cannot encode becomes that
episode's error reply. Sampled decoding (``temperature > 0``) is seeded per request
(``torch.manual_seed``), each request generated alone so its reply does not depend on the batch
(``seeded_sampling=false`` batches them with one seed instead).

``--model hf:@tiny`` is the embedded tiny random-weight model (built once into the cache by
:mod:`harness.backends.tiny`). ``--model_args``: see :class:`HFOptions`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.backends import BackendContext, BackendFactory
from harness.backends.chat import collect_media, finish_text
from harness.backends.lazy import transformers_module
from harness.backends.options import MissingExtra, first_line, parse_options
from harness.data.hub import MODEL_ALTERNATIVES, cached_snapshot, ensure_hub, hub_unreachable, unavailable
from harness.errors import OptionError, UserError
from harness.loop.policy import Policy, Reply, Request, Sampling
from harness.loop.protocol import TOOL_END

log = logging.getLogger(__name__)
INSTALL_HINT = "the hf backend needs torch and transformers: pip install 'pixel-harness[hf]'"
DTYPES = ("auto", "float32", "bfloat16", "float16")
TINY = "@tiny"


@dataclass(frozen=True)
class HFOptions:
    """``--model_args`` of the hf backend."""

    dtype: str = "auto"  # auto: bfloat16 on CUDA (float16 without bf16 support), float32 on CPU
    device: str = "auto"  # auto: cuda when available, else cpu; or cpu, cuda, cuda:N
    attn_implementation: str | None = None  # sdpa, eager, flash_attention_2 (default: transformers')
    min_pixels: int | None = 4 * 28 * 28  # processor bounds; None keeps the checkpoint's own
    max_pixels: int | None = 16384 * 28 * 28
    video_fps: float = 2.0  # frame rate the processor assumes for a frame list (qwen-vl-utils' default)
    batch_size: int | None = None  # rows per generate call (default: 8 on CUDA, 1 on CPU)
    stop_at_tool_call: bool = False  # true: end the turn right after </tool_call> (not as released)
    seeded_sampling: bool = True  # temperature > 0: one generate call per request, seeded by it
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise OptionError(
                f"hf: --model_args dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}"
            )
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise OptionError(
                f"hf: --model_args device must be auto, cpu, cuda or cuda:N, got {self.device!r}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"hf: --model_args batch_size must be >= 1, got {self.batch_size}")
        if self.video_fps <= 0:
            raise OptionError(f"hf: --model_args video_fps must be > 0, got {self.video_fps}")
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise OptionError("hf: --model_args min_pixels must not exceed max_pixels")


def resolve_model(name: str) -> str:
    """``@tiny`` -> the cached tiny model's folder (built on first use); anything else unchanged."""
    if not name:
        raise UserError("hf needs a model: --model hf:PATH_OR_HUB_ID (or hf:@tiny)")
    if name == TINY:
        from harness.backends.tiny import ensure_tiny_model

        return str(ensure_tiny_model())
    if name.startswith("@"):
        raise UserError(f"hf: unknown built-in model {name!r}; valid: {TINY}")
    if name.startswith(("/", ".", "~")) and not Path(name).expanduser().is_dir():
        raise UserError(f"hf: no model folder {name!r} (a hub id looks like ORG/NAME)")
    return str(Path(name).expanduser()) if name.startswith("~") else name


def offline_source(name: str) -> str | None:
    """For a hub id when the hub cannot be reached (probed once, or ``HF_HUB_OFFLINE``): its cached
    snapshot folder, or a one-line ``ValueError`` naming the id; ``None`` otherwise (a local
    folder, ``@tiny``, or a reachable hub)."""
    if not name or name.startswith(("@", "/", ".", "~")) or Path(name).is_dir():
        return None
    offline = ensure_hub()
    if not offline:
        return None
    cached = cached_snapshot(name)
    if cached is None:
        raise UserError(f"hf: {unavailable('model', name, offline, MODEL_ALTERNATIVES)}")
    return str(cached)


def render_prompts(processor: Any, conversations: Sequence[Sequence[dict[str, Any]]]) -> list[str]:
    """Each conversation as prompt text, with the generation prompt (the processor's chat template)."""
    return [
        processor.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]


class HFPolicy:
    """A transformers image-text-to-text model behind the :class:`~harness.loop.policy.Policy` interface."""

    def __init__(self, model: str, options: HFOptions = HFOptions()) -> None:  # noqa: B008 (frozen)
        cached = offline_source(model)  # before importing torch: an id that cannot be had fails fast
        try:
            import torch

            transformers = transformers_module()
        except ImportError as exc:
            raise MissingExtra(INSTALL_HINT) from exc
        self.torch = torch
        self.options = options
        self.name = f"hf:{model}"
        source = cached or resolve_model(model)
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if options.device == "auto" else options.device
        )
        dtype: Any = options.dtype
        if dtype == "auto":
            cuda = self.device.type == "cuda"
            dtype = (
                (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
                if cuda
                else torch.float32
            )
        else:
            dtype = getattr(torch, dtype)
        extra = {"attn_implementation": options.attn_implementation} if options.attn_implementation else {}
        offline = None if Path(source).is_dir() else hub_unreachable()
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(
                source, trust_remote_code=options.trust_remote_code
            )
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(
                source, dtype=dtype, trust_remote_code=options.trust_remote_code, **extra
            )
        except OSError as exc:
            if offline:
                raise UserError(f"hf: {unavailable('model', model, offline, MODEL_ALTERNATIVES)}") from exc
            raise UserError(f"hf: cannot load {model!r}: {first_line(exc)}") from exc
        self.model = self.model.to(self.device).eval()
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        if not getattr(self.processor, "chat_template", None):
            raise UserError(f"hf: {model!r} has no chat template; the hf backend renders prompts with it")
        self._set_pixel_bounds()
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = int(pad if pad is not None else self.tokenizer.eos_token_id)
        eos = self.model.generation_config.eos_token_id
        self.eos_ids: tuple[int, ...] = tuple(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self._warned_resize = False
        # On the CPU a padded batch is slower than its rows one by one (the attention mask leaves
        # the fast causal path): 2.16 s vs 1.02 s for 4 V* turns with the tiny model
        # (tests/benchmarks/test_bench_hf.py::test_cpu_padded_batch_vs_one_by_one).
        self.batch_size = options.batch_size or (8 if self.device.type == "cuda" else 1)

    def _set_pixel_bounds(self) -> None:
        lo, hi = self.options.min_pixels, self.options.max_pixels
        for proc in (
            getattr(self.processor, "image_processor", None),
            getattr(self.processor, "video_processor", None),
        ):
            if proc is None or not hasattr(proc, "size"):
                continue
            size = dict(proc.size.items() if hasattr(proc.size, "items") else vars(proc.size))
            size = {k: v for k, v in size.items() if v is not None}
            if lo is not None:
                size["shortest_edge"] = lo
            if hi is not None:
                size["longest_edge"] = hi
            proc.size = size if isinstance(proc.size, dict) else type(proc.size)(**size)

    # -- the Policy interface ----------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        out: list[Reply | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            s = r.sampling
            groups.setdefault((s.temperature, s.top_p, s.top_k, s.max_new_tokens, s.stop), []).append(i)
        for (temperature, *_), idx in groups.items():
            size = 1 if (temperature > 0 and self.options.seeded_sampling) else self.batch_size
            for k in range(0, len(idx), size):
                chunk = idx[k : k + size]
                for i, reply in zip(chunk, self._generate_chunk([requests[i] for i in chunk]), strict=True):
                    out[i] = reply
        return [r for r in out if r is not None]

    # -- internals ---------------------------------------------------------------------------

    def _encode(self, requests: Sequence[Request]) -> Any:
        texts = render_prompts(self.processor, [r.messages for r in requests])
        images, videos = [], []
        for r in requests:
            ims, vids = collect_media(r.messages)
            images += ims
            videos += vids
        kwargs: dict[str, Any] = {}
        if videos:
            fps = self.options.video_fps
            kwargs["video_metadata"] = [
                {"total_num_frames": len(v), "fps": fps, "frames_indices": list(range(len(v)))}
                for v in videos
            ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inputs = self.processor(
                text=texts,
                images=images or None,
                videos=videos or None,
                padding=True,
                return_tensors="pt",
                **kwargs,
            )
        self._check_no_resize(images, inputs.get("image_grid_thw"))
        return inputs

    def _check_no_resize(self, images: Sequence[Any], grids: Any) -> None:
        if self._warned_resize or grids is None:
            return
        patch = getattr(self.processor.image_processor, "patch_size", 14)
        for image, (_, gh, gw) in zip(images, grids.tolist(), strict=False):
            if (gw * patch, gh * patch) != tuple(image.size):
                self._warned_resize = True
                log.warning(
                    "hf: the processor resized a %dx%d image to %dx%d; the episode's pixel budget should "
                    "decide sizes (check --model_args min_pixels/max_pixels)",
                    *image.size,
                    gw * patch,
                    gh * patch,
                )
                return

    def _encode_isolating_errors(
        self, requests: Sequence[Request]
    ) -> tuple[Any, list[int], dict[int, Reply]]:
        """Encode the batch; if that fails, find the requests that fail alone and reply with errors."""
        try:
            return self._encode(requests), list(range(len(requests))), {}
        except Exception:  # one bad conversation must not take down the others
            good, bad = [], {}
            for i, r in enumerate(requests):
                try:
                    self._encode([r])
                    good.append(i)
                except Exception as exc:
                    bad[i] = Reply(
                        f"hf backend: cannot encode the conversation: {type(exc).__name__}: {exc}", "error"
                    )
            inputs = self._encode([requests[i] for i in good]) if good else None
            return inputs, good, bad

    def _stop_config(self, sampling: Sampling) -> tuple[list[int], list[str], tuple[str, ...]]:
        """(stop token ids, multi-token stop strings, kept strings) for ``sampling``."""
        keep = (TOOL_END,) if self.options.stop_at_tool_call else ()
        ids, strings = list(self.eos_ids), []
        for stop in (*sampling.stop, *keep):
            tokens = self.tokenizer.encode(stop, add_special_tokens=False)
            if len(tokens) == 1:
                ids.append(int(tokens[0]))
            elif tokens:
                strings.append(stop)
        return list(dict.fromkeys(ids)), strings, keep

    def _generate_chunk(self, requests: Sequence[Request]) -> list[Reply]:
        torch = self.torch
        start = time.perf_counter()
        inputs, good, bad = self._encode_isolating_errors(requests)
        replies: dict[int, Reply] = dict(bad)
        if inputs is not None:
            sampling = requests[good[0]].sampling
            stop_ids, stop_strings, keep = self._stop_config(sampling)
            inputs = inputs.to(self.device)
            decoding: dict[str, Any] = {"do_sample": False}
            if sampling.temperature > 0:
                torch.manual_seed(sampling.seed)
                decoding = {
                    "do_sample": True,
                    "temperature": sampling.temperature,
                    "top_p": sampling.top_p,
                    "top_k": sampling.top_k,  # 0: transformers applies no top-k filter
                }
            with torch.inference_mode():
                output = self.model.generate(
                    **inputs,
                    **decoding,
                    max_new_tokens=sampling.max_new_tokens,
                    repetition_penalty=1.0,
                    eos_token_id=stop_ids,
                    pad_token_id=self.pad_id,
                    stop_strings=stop_strings or None,
                    tokenizer=self.tokenizer if stop_strings else None,
                )
            new = output[:, inputs["input_ids"].shape[1] :].tolist()
            prompt_lens = inputs["attention_mask"].sum(dim=1).tolist()
            seconds = time.perf_counter() - start
            for row, i in enumerate(good):
                replies[i] = self._reply(
                    new[row], int(prompt_lens[row]), requests[i].sampling, stop_ids, keep, seconds
                )
        return [replies[i] for i in range(len(requests))]

    def _reply(
        self,
        tokens: list[int],
        prompt_tokens: int,
        sampling: Sampling,
        stop_ids: list[int],
        keep: tuple[str, ...],
        seconds: float,
    ) -> Reply:
        stops = set(stop_ids)
        end = next((k for k, t in enumerate(tokens) if t in stops), None)
        if end is not None:
            text_tokens, n, stopped = tokens[:end], end + 1, True
            if self.tokenizer.convert_ids_to_tokens(tokens[end]) in keep:
                text_tokens = tokens[: end + 1]
        else:
            n = len(tokens)
            while n and tokens[n - 1] == self.pad_id:  # rows that stopped on a stop string
                n -= 1
            text_tokens, stopped = tokens[:n], False
        text = self.tokenizer.decode(text_tokens, skip_special_tokens=True)
        text, found = finish_text(text, sampling.stop, keep)
        stopped = stopped or found or n < sampling.max_new_tokens
        return Reply(
            text=text,
            finish_reason="stop" if stopped else "length",
            prompt_tokens=prompt_tokens,
            completion_tokens=n,
            seconds=seconds,
        )


def make_hf(rest: str, ctx: BackendContext) -> Policy:
    """Factory for ``--model hf:...``: imports torch/transformers only now."""
    options = parse_options(HFOptions, ctx.model_args, "hf")
    return HFPolicy(rest, options)


FACTORIES: dict[str, Callable[[str, BackendContext], Policy]] = {"hf": make_hf}


@hookimpl
def harness_register_backends() -> dict[str, BackendFactory]:
    return dict(FACTORIES)
