"""Build a tiny random-weight Qwen2.5-VL offline (``harness make-tiny-model DIR``).

Everything is a real class: ``Qwen2_5_VLConfig`` with a tiny text and vision tower
(``Qwen2_5_VLForConditionalGeneration``, about 0.3M parameters), a byte-level BPE tokenizer
trained here with the ``tokenizers`` library plus Qwen's special tokens, ``Qwen2VLImageProcessor``,
``Qwen2VLVideoProcessor`` and ``Qwen2_5_VLProcessor`` with a chat template that renders images,
videos, assistant tool calls and tool results. It saves with ``save_pretrained`` and reloads with
``AutoModelForImageTextToText`` / ``AutoProcessor``, so it exercises the same loading and
generation code as a real checkpoint, with no download.

Two sizes (:data:`SIZES`): ``tiny``, the default, and ``demo`` (``--size demo``, about 3.5M
parameters with a compact tokenizer), big enough for the CPU training demonstration
(``examples/train_demo.sh``). The build is seeded and reproducible: the same seed and size give
byte-identical weights and tokenizer.
Its replies are random text: its accuracy means nothing. It exists to run the real stack end to
end (the embedded default of ``harness eval``, tests, benchmarks of the harness around a model).

:func:`ensure_tiny_model` builds it once into the cache (``$HARNESS_CACHE_DIR/tiny-model``),
atomically (a temporary folder renamed into place), and reuses it afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.backends.lazy import transformers_module
from harness.backends.tiny_corpus import default_corpus, demo_corpus
from harness.data import cache_dir

#: ``harness eval`` without ``--model``: the real hf stack on the tiny model, short replies.
DEFAULT_MODEL = "hf:@tiny"
#: The tiny model's reply length in ``harness eval``, however it is named (no ``--model``,
#: ``hf:@tiny`` or ``hf:DIR`` of a ``make-tiny-model`` folder), unless the command line sets one.
DEMO_MAX_NEW_TOKENS = 64
DEMO_NOTE = (
    f"running the tiny random-weight Qwen2.5-VL (max_new_tokens={DEMO_MAX_NEW_TOKENS} unless "
    "--episode_limits or --gen_kwargs sets it). It checks the real model stack end to end; its replies "
    "are noise and its scores mean nothing."
)


def is_tiny_model(model: str) -> bool:
    """``hf:@tiny``, or ``hf:DIR`` where DIR was built by :func:`build_tiny_model`."""
    prefix, _, name = model.partition(":")
    if prefix != "hf" or not name:
        return False
    return name == "@tiny" or (Path(name).expanduser() / "harness_tiny.json").is_file()


TINY_VERSION = 1  # bump when the architecture, tokenizer or template changes (new cache folder)
VOCAB_SIZE = 1024
TokenizerKind = Literal["default", "demo"]


@dataclass(frozen=True)
class TinySize:
    """One configuration of the builder: the text tower and the tokenizer (the vision tower is
    the same for every size: depth 2, hidden 32, windowed attention)."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tokenizer: TokenizerKind


#: ``tiny`` (the default, about 0.3M parameters): the embedded demo and the tests' model.
#: ``demo`` (about 3.5M parameters): large enough that SFT teaches it valid tool calls on a CPU
#: in minutes (README, "Does training move the numbers?"); its tokenizer (2048 tokens, no word
#: split, digits one by one) makes the system prompt about 45 tokens and a crop call about 50.
SIZES: dict[str, TinySize] = {
    "tiny": TinySize(
        hidden=64, layers=2, intermediate=128, heads=4, kv_heads=2, vocab=1024, tokenizer="default"
    ),
    "demo": TinySize(
        hidden=256, layers=4, intermediate=512, heads=4, kv_heads=2, vocab=2048, tokenizer="demo"
    ),
}
#: Qwen2.5's special tokens; ``<tool_call>`` / ``</tool_call>`` are added but not special, so they
#: survive ``skip_special_tokens`` decoding, as in Qwen's own tokenizer.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
PLAIN_ADDED_TOKENS: tuple[str, ...] = ("<tool_call>", "</tool_call>")

#: Qwen2.5-VL's chat template, extended with Qwen2.5's Hermes tool rendering: ``tools`` go into
#: the system turn, an assistant's ``tool_calls`` render as ``<tool_call>`` blocks, and ``tool``
#: messages render as ``<tool_response>`` user turns. Content may be a string or a list of
#: image / video / text parts.
NL = "{{ '\\n' }}"  # a newline right after a block tag (transformers renders with trim_blocks)
CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for part in content %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{% if tools %}"
    "<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ render(messages[0]['content']) }}"
    "{% else %}You are a helpful assistant.{% endif %}"
    + NL
    + NL
    + "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    "{% for tool in tools %}" + NL + "{{ tool | tojson }}{% endfor %}" + NL + "</tools>\n\n"
    "For each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    "{% elif messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% if not (loop.first and tools) %}"
    "<|im_start|>system\n{{ render(message['content']) }}<|im_end|>\n"
    "{% endif %}"
    "{% elif message['role'] == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}<|im_start|>user{% endif %}"
    + NL
    + "<tool_response>\n{{ render(message['content']) }}\n</tool_response>"
    "{% if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}<|im_end|>\n{% endif %}"
    "{% else %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] %}{{ render(message['content']) }}{% endif %}"
    "{% if message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{% for call in message['tool_calls'] %}"
    "{% set fn = call['function'] if call.get('function') else call %}"
    "{% if (loop.first and message['content']) or not loop.first %}" + NL + "{% endif %}"
    '<tool_call>\n{"name": "{{ fn[\'name\'] }}", "arguments": '
    "{% if fn['arguments'] is string %}{{ fn['arguments'] }}"
    "{% else %}{{ fn['arguments'] | tojson }}{% endif %}"
    "}\n</tool_call>"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(vocab_size: int = VOCAB_SIZE, kind: TokenizerKind = "default") -> Any:
    """A byte-level BPE tokenizer with Qwen's special tokens. ``default``: GPT-2's word split,
    trained on :func:`~harness.backends.tiny_corpus.default_corpus`; ``demo``: digits split one
    by one and no other split, trained on :func:`~harness.backends.tiny_corpus.demo_corpus`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    if kind == "default":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS) - len(PLAIN_ADDED_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(default_corpus() if kind == "default" else demo_corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    fast = transformers_module().PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        padding_side="left",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_config(tokenizer: Any, size: TinySize = SIZES["tiny"]) -> Any:  # noqa: B008
    """The tiny ``Qwen2_5_VLConfig`` (``tiny``: hidden 64, 2 text layers; vision depth 2)."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    heads, hidden = size.heads, size.hidden
    head_dim = hidden // heads
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": size.intermediate,
        "num_hidden_layers": size.layers,
        "num_attention_heads": heads,
        "num_key_value_heads": size.kv_heads,
        "max_position_embeddings": 32768,
        "max_window_layers": size.layers,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16],
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": False,
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": hidden,
        # windowed attention in every block: a 4-megapixel V* image costs ~0.1 s on one CPU core
        # (a full-attention block over its 20k patches costs ~0.7 s)
        "fullatt_block_indexes": [],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
    }
    return transformers_module().Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_processor(tokenizer: Any) -> Any:
    """``Qwen2_5_VLProcessor`` whose pixel bounds let the episode's images through unchanged."""
    tf = transformers_module()
    # The episode owns the pixel budget; these bounds (4 .. 16384 patches of 28x28) are wide
    # enough that the processor never resizes an image the episode produced.
    size = {"shortest_edge": 4 * 28 * 28, "longest_edge": 16384 * 28 * 28}
    image = tf.Qwen2VLImageProcessor(size=size)
    video = tf.Qwen2VLVideoProcessor(size=size, cap_pixels_per_frame=False)
    return tf.Qwen2_5_VLProcessor(
        image_processor=image, tokenizer=tokenizer, video_processor=video, chat_template=CHAT_TEMPLATE
    )


def build_tiny_model(out: Path | str, seed: int = 0, size: str = "tiny") -> Path:
    """Build the tiny model of ``size`` (a key of :data:`SIZES`) into ``out`` (created; must not
    exist or be empty). Returns ``out``."""
    import torch

    if size not in SIZES:
        raise ValueError(f"unknown tiny model size {size!r}; expected one of {', '.join(SIZES)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    spec = SIZES[size]
    tokenizer = build_tokenizer(spec.vocab, spec.tokenizer)
    config = build_config(tokenizer, spec)
    torch.manual_seed(seed)
    model = transformers_module().Qwen2_5_VLForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.eos_token_id = [config.text_config.eos_token_id, config.text_config.bos_token_id]
    generation.pad_token_id = config.text_config.pad_token_id
    generation.do_sample = False
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    build_processor(tokenizer).save_pretrained(out)
    info: dict[str, Any] = {"builder": "harness.backends.tiny", "version": TINY_VERSION, "seed": seed}
    info["random_weights"] = True
    if size != "tiny":  # the default model's files stay as they were
        info["size"] = size
    (out / "harness_tiny.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def default_tiny_dir() -> Path:
    """Where the embedded default lives: ``$HARNESS_CACHE_DIR/tiny-model`` (versioned inside)."""
    return cache_dir() / "tiny-model" / f"v{TINY_VERSION}-seed0"


def ensure_tiny_model(path: Path | None = None, seed: int = 0) -> Path:
    """Return a built tiny model folder, building it once (atomically) if it is not there yet."""
    path = Path(path) if path is not None else default_tiny_dir()
    if (path / "harness_tiny.json").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        build_tiny_model(tmp / "m", seed=seed)
        try:
            os.replace(tmp / "m", path)
        except OSError:
            if not (path / "harness_tiny.json").is_file():  # not a concurrent builder's win
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
