"""harness.loop.protocol: reply parsing and the exact strings the released model saw."""

from __future__ import annotations

from typing import Any

import pytest

from harness.loop.protocol import (
    SYSTEM_PROMPT,
    parse_reply,
    render_crop,
    render_error,
    render_frames,
    strip_stop,
    system_prompt,
    user_text,
)
from harness.tools import BUILTIN_TOOLS, CROP_TOOL

CALL = (
    '<tool_call>\n{"name": "crop_image_normalized", '
    '"arguments": {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "target_image": 1}}\n</tool_call>'
)
ARGS = {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "target_image": 1}


@pytest.mark.parametrize(
    ("text", "is_call"),
    [
        ("The answer is \\boxed{A}.", False),
        ("", False),
        (CALL, True),
        ("I will zoom in.\n\n" + CALL, True),
        (CALL + "<|im_end|>", True),
        (CALL + "  \n\n", True),
        (CALL + "<|im_end|>\n<|endoftext|>  ", True),
        (CALL + "\nSo the answer is \\boxed{B}.", False),  # text after the call: not a call
        (CALL[:-1], False),  # unfinished closing tag
        ("<tool_call>" + CALL[len("<tool_call>") :].replace("</tool_call>", ""), False),
    ],
)
def test_tool_call_only_when_reply_ends_with_closing_tag(text: str, is_call: bool) -> None:
    parsed = parse_reply(text)
    assert parsed.is_tool_call is is_call
    assert parsed.text == text
    if is_call:
        assert parsed.error is None and parsed.call is not None
        assert parsed.call.name == "crop_image_normalized" and parsed.call.arguments == ARGS
    else:
        assert parsed.call is None and parsed.error is None


def test_last_block_wins() -> None:
    text = (
        '<tool_call>{"name": "select_frames", "arguments": {"target_frames": [1]}}</tool_call>\n'
        "Hmm, better zoom.\n" + CALL
    )
    parsed = parse_reply(text)
    assert parsed.call is not None and parsed.call.name == "crop_image_normalized"
    assert parsed.call.raw == CALL[len("<tool_call>") : -len("</tool_call>")].strip()


def test_last_block_wins_even_if_earlier_is_broken() -> None:
    parsed = parse_reply("<tool_call>{oops</tool_call> retry " + CALL)
    assert parsed.call is not None and parsed.error is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("{not json}", "Invalid tool call: the content of <tool_call> is not valid JSON"),
        ("", "Invalid tool call: the content of <tool_call> is not valid JSON"),
        ("[1, 2]", "Invalid tool call: expected a JSON object, got list."),
        ('"crop"', "Invalid tool call: expected a JSON object, got str."),
        ('{"arguments": {}}', 'Invalid tool call: missing "name" (a string).'),
        ('{"name": 3, "arguments": {}}', 'Invalid tool call: missing "name" (a string).'),
        ('{"name": "", "arguments": {}}', 'Invalid tool call: missing "name" (a string).'),
        (
            '{"name": "crop_image_normalized"}',
            'Invalid tool call: missing "arguments" for `crop_image_normalized`.',
        ),
        ('{"name": "x", "arguments": [1]}', 'Invalid tool call: "arguments" must be a JSON object, got [1].'),
        (
            '{"name": "x", "arguments": null}',
            'Invalid tool call: "arguments" must be a JSON object, got None.',
        ),
        (
            '{"name": "x", "arguments": "{}"}',
            "Invalid tool call: \"arguments\" must be a JSON object, got '{}'.",
        ),
        ("[" * 100_000 + "]" * 100_000, "Invalid tool call: the content of <tool_call> is not valid JSON"),
    ],
)
def test_malformed_calls_are_errors_not_exceptions(body: str, error: str) -> None:
    parsed = parse_reply(f"<tool_call>\n{body}\n</tool_call>")
    assert parsed.is_tool_call and parsed.call is None
    assert parsed.error is not None and parsed.error.startswith(error)


def test_closing_tag_without_opening_tag() -> None:
    parsed = parse_reply('{"name": "x", "arguments": {}}</tool_call>')
    assert parsed.is_tool_call and parsed.call is None
    assert parsed.error == "Invalid tool call: `</tool_call>` without a `<tool_call>`."


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a <|im_end|>\n", "a"), ("a<|endoftext|><|im_end|> \n", "a"), ("a\n\n", "a"), ("<|im_end|>", "")],
)
def test_strip_stop(text: str, expected: str) -> None:
    assert strip_stop(text) == expected


VCOT = (
    "\n\nGuidelines: Understand the given visual information and the user query. Determine if it is "
    "beneficial to employ the given visual operations (tools). For a video, we can look closer by "
    "`select_frames`. For an image, we can look closer by `crop_image`. Reason with the visual "
    "information step by step, and put your final answer within \\boxed{}."
)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("vcot", "What is it?\nchoices:\nA: Lion  \nB: Sheep\n\n" + VCOT),
        (
            "notool",
            "What is it?\nchoices:\nA: Lion  \nB: Sheep\n\nPlease think step by step, and put your final "
            "answer within \\boxed{}.",
        ),
        ("official", "What is it?\nchoices:\nA: Lion  \nB: Sheep"),
    ],
)
def test_user_text(mode: Any, expected: str) -> None:
    assert user_text("What is it?\nchoices:\nA: Lion  \nB: Sheep", mode) == expected


def test_vcot_join_has_four_newlines() -> None:
    text = user_text("Q?", "vcot")
    assert text.startswith("Q?\n\n\n\nGuidelines: ")
    assert "Q?\n\n\n\n\n" not in text
    assert text.endswith("put your final answer within \\boxed{}.")


def test_user_text_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown prompt mode"):
        user_text("Q", "cot")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        (render_crop(532, 392), "\nHere is the cropped image (Image Size: 532x392):"),
        (
            render_frames(308, 252, 1, 3),
            "\nHere are the selected frames (Frame Size: 308x252, Numbered 1 to 3):",
        ),
        (
            render_error("Cropped image is too small: 20x20"),
            "\nExecution error:\nCropped image is too small: 20x20\n",
        ),
    ],
)
def test_result_strings(rendered: str, expected: str) -> None:
    assert rendered == expected


TOOLS_SYSTEM = (
    "You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user "
    "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "crop_image_normalized", "description": "Zoom in on the '
    "image based on the bounding box coordinates. It is useful when the object or text in the image is too "
    'small to be seen.", "parameters": {"type": "object", "properties": {"bbox_2d": {"type": "array", '
    '"description": "coordinates for bounding box of the area you want to zoom in. Values should be within '
    '[0.0,1.0].", "items": {"type": "number"}}, "target_image": {"type": "number", "description": "The '
    "index of the image to crop. Index from 1 to the number of images. Choose 1 to operate on original "
    'image."}}, "required": ["bbox_2d", "target_image"]}}}\n'
    '{"type": "function", "function": {"name": "select_frames", "description": "Select frames from a '
    'video.", "parameters": {"type": "object", "properties": {"target_frames": {"type": "array", '
    '"description": "List of frame indices to select from the video (no more than 8 frames in total).", '
    '"items": {"type": "integer", "description": "Frame index from 1 to 16."}}}, "required": '
    '["target_frames"]}}}\n</tools>\n\nFor each function call, return a json object with function name and '
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def test_system_prompt_exact() -> None:
    assert system_prompt([]) == SYSTEM_PROMPT == "You are a helpful assistant."
    assert system_prompt(BUILTIN_TOOLS) == TOOLS_SYSTEM


def test_system_prompt_follows_tool_order() -> None:
    one = system_prompt([CROP_TOOL])
    assert one.count('{"type": "function"') == 1
    reordered = system_prompt(list(reversed(BUILTIN_TOOLS)))
    assert reordered.index('"select_frames"') < reordered.index('"crop_image_normalized"')


# -- --protocol crop_image: the earlier schema, as the verl-tool port still renders it -------------

CROP_IMAGE_LINE = (
    '{"type": "function", "function": {"name": "crop_image", "description": "Zoom in on the image based on '
    'the bounding box coordinates.", "parameters": {"type": "object", "properties": {"bbox_2d": {"type": '
    '"array", "description": "coordinates for bounding box of the area you want to zoom in. minimum value '
    'is 0 and maximum value is the width/height of the image.", "items": {"type": "number"}}, '
    '"target_image": {"type": "number", "description": "The index of the image to crop. Index from 1 to '
    'the number of images. Choose 1 to operate on original image."}}, "required": ["bbox_2d", '
    '"target_image"]}}}'
)


def test_crop_image_protocol_system_prompt() -> None:
    from harness.tools import PROTOCOLS, tools_for_protocol

    assert PROTOCOLS == ("crop_image_normalized", "crop_image")
    assert tools_for_protocol(BUILTIN_TOOLS, "crop_image_normalized") == list(BUILTIN_TOOLS)
    old = tools_for_protocol(BUILTIN_TOOLS, "crop_image")
    assert [t.name for t in old] == ["crop_image", "select_frames"]
    lines = system_prompt(old).split("<tools>\n")[1].split("\n</tools>")[0].split("\n")
    assert lines[0] == CROP_IMAGE_LINE
    assert (
        lines[1] == system_prompt(BUILTIN_TOOLS).split("<tools>\n")[1].split("\n</tools>")[0].split("\n")[1]
    )
    with pytest.raises(
        ValueError, match="unknown --protocol 'zoom'; valid: crop_image_normalized, crop_image"
    ):
        tools_for_protocol(BUILTIN_TOOLS, "zoom")


def test_cli_protocol_choices_are_the_tool_protocols() -> None:
    from harness.cli import build_parser
    from harness.tools import PROTOCOLS

    parser = build_parser()
    eval_parser = next(
        a
        for a in parser._subparsers._group_actions[0].choices.values()
        if a.prog.endswith(" eval")  # type: ignore[union-attr]
    )
    (action,) = [a for a in eval_parser._actions if a.dest == "protocol"]
    assert tuple(action.choices) == PROTOCOLS and action.default == PROTOCOLS[0]
