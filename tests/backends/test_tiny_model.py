"""The tiny offline Qwen2.5-VL: real classes, reproducible build, a chat template that renders
everything the protocol needs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from backend_support import needs_hf
from PIL import Image

pytestmark = needs_hf

FILES = ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json", "chat_template.jinja")


def digests(folder: Path) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


def test_reloads_with_the_auto_classes(tiny_model: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(processor.image_processor).__name__.startswith("Qwen2VLImageProcessor")
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 1_000_000
    text = model.config.text_config
    assert sum(text.rope_parameters["mrope_section"]) == text.hidden_size // text.num_attention_heads // 2


@pytest.mark.parametrize(
    ("token", "special"),
    [
        ("<|im_start|>", True),
        ("<|im_end|>", True),
        ("<|endoftext|>", True),
        ("<|vision_start|>", True),
        ("<|vision_end|>", True),
        ("<|image_pad|>", True),
        ("<|video_pad|>", True),
        ("<tool_call>", False),
        ("</tool_call>", False),
    ],
)
def test_tokenizer_has_qwen_tokens(tiny_model: Path, token: str, special: bool) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ids = tok.encode(token, add_special_tokens=False)
    assert len(ids) == 1, f"{token} must be one token"
    # special tokens vanish when decoding with skip_special_tokens; the tool tags must survive it
    assert (tok.decode(ids, skip_special_tokens=True) == "") is special


def test_same_seed_same_bytes_other_seed_other_weights(tiny_model: Path, tmp_path: Path) -> None:
    from harness.backends.tiny import build_tiny_model

    again = build_tiny_model(tmp_path / "again", seed=0)
    assert digests(again) == digests(tiny_model)
    other = build_tiny_model(tmp_path / "other", seed=1)
    d_other = digests(other)
    assert d_other["model.safetensors"] != digests(tiny_model)["model.safetensors"]
    assert d_other["tokenizer.json"] == digests(tiny_model)["tokenizer.json"]


def test_build_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    from harness.backends.tiny import build_tiny_model

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        build_tiny_model(tmp_path / "x")


def test_ensure_builds_once_then_reuses(tmp_path: Path) -> None:
    from harness.backends.tiny import ensure_tiny_model

    target = tmp_path / "cache" / "tiny"
    first = ensure_tiny_model(target)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model(target) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]  # no temporary folder left behind


IMG = Image.new("RGB", (56, 56))
VISION = "<|vision_start|><|image_pad|><|vision_end|>"
TEMPLATE_CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], list[str]]] = [
    (
        "image then text, generation prompt",
        [{"role": "user", "content": [{"type": "image", "image": IMG}, {"type": "text", "text": "Q?"}]}],
        {},
        [
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
            f"<|im_start|>user\n{VISION}Q?<|im_end|>\n<|im_start|>assistant\n",
        ],
    ),
    (
        "video",
        [
            {
                "role": "user",
                "content": [{"type": "video", "video": [IMG, IMG]}, {"type": "text", "text": "V"}],
            }
        ],
        {},
        ["<|vision_start|><|video_pad|><|vision_end|>V<|im_end|>"],
    ),
    (
        "our protocol: call in assistant text, result as a user turn with an image",
        [
            {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
            {"role": "user", "content": [{"type": "text", "text": "Q"}]},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": '<tool_call>\n{"name": "f"}\n</tool_call>'}],
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": "\nHere is"}, {"type": "image", "image": IMG}],
            },
        ],
        {},
        [
            "<|im_start|>system\nSYS<|im_end|>\n",
            '<|im_start|>assistant\n<tool_call>\n{"name": "f"}\n</tool_call><|im_end|>\n',
            f"<|im_start|>user\n\nHere is{VISION}<|im_end|>\n<|im_start|>assistant\n",
        ],
    ),
    (
        "OpenAI-style tool_calls and tool results",
        [
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [{"type": "function", "function": {"name": "zoom", "arguments": {"x": 1}}}],
            },
            {"role": "tool", "content": [{"type": "text", "text": "done"}, {"type": "image", "image": IMG}]},
        ],
        {},
        [
            '<|im_start|>assistant\nLet me look.\n<tool_call>\n{"name": "zoom", "arguments": {"x": 1}}\n</tool_call><|im_end|>\n',
            f"<|im_start|>user\n<tool_response>\ndone{VISION}\n</tool_response><|im_end|>\n",
        ],
    ),
    (
        "tools advertised in the system turn",
        [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Q"}],
        {"tools": [{"type": "function", "function": {"name": "zoom"}}]},
        [
            "<|im_start|>system\nSYS\n\n# Tools\n",
            '<tools>\n{"type": "function", "function": {"name": "zoom"}}\n</tools>',
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "messages", "kwargs", "expected"), TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES]
)
def test_chat_template(
    tiny_model: Path, case: str, messages: list[dict[str, Any]], kwargs: dict[str, Any], expected: list[str]
) -> None:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
    for piece in expected:
        assert piece in text, f"{case}: {piece!r} not in {text!r}"


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``harness make-tiny-model DIR --size demo``, built once for this module."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("demo") / "model"
    assert main(["make-tiny-model", str(out), "--size", "demo"]) == 0
    return out


def test_demo_size_builds_reloads_and_is_bigger(demo_model: Path) -> None:
    import json

    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(demo_model)
    processor = AutoProcessor.from_pretrained(demo_model)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    n_params = sum(p.numel() for p in model.parameters())
    assert 3_000_000 < n_params < 4_000_000
    text = model.config.text_config
    assert (text.hidden_size, text.num_hidden_layers) == (256, 4)
    assert 2000 < text.vocab_size == len(processor.tokenizer) <= 2048
    assert sum(text.rope_parameters["mrope_section"]) == text.hidden_size // text.num_attention_heads // 2
    info = json.loads((demo_model / "harness_tiny.json").read_text())
    assert info["size"] == "demo" and info["seed"] == 0


def test_demo_tokenizer_is_compact_and_lossless(demo_model: Path) -> None:
    from transformers import AutoTokenizer

    from harness.backends.scripted import tool_call_text
    from harness.loop.protocol import system_prompt
    from harness.tools.builtin import harness_register_tools

    tok = AutoTokenizer.from_pretrained(demo_model)

    def pieces(text: str) -> list[str]:
        return [tok.decode([i]) for i in tok.encode(text, add_special_tokens=False)]

    system = system_prompt(harness_register_tools())
    assert len(pieces(system)) < 80  # the default tokenizer needs about 640
    call = tool_call_text("crop_image_normalized", {"bbox_2d": [0.1833, 0.9076, 0.25, 1], "target_image": 1})
    tokens = pieces(call)
    assert len(tokens) < 45
    digits = [t for t in tokens if any(c.isdigit() for c in t)]
    assert digits == [c for c in call if c.isdigit()]  # every digit is a token of its own
    for text in (system, call, "What is the colour of the hexagon? 12.5% — naïve 😀"):
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_unknown_size_is_refused(tmp_path: Path) -> None:
    from harness.backends.tiny import build_tiny_model

    with pytest.raises(ValueError, match="unknown tiny model size 'huge'"):
        build_tiny_model(tmp_path / "x", size="huge")
