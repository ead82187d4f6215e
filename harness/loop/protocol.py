"""The text protocol between the model and the harness (pure functions, no I/O).

What the released Pixel-Reasoner model was trained and evaluated with (docs/reference.md section 2):

- the system message: ``"You are a helpful assistant."``, followed with tools by the Hermes/Nous
  ``# Tools`` block of qwen_agent's ``NousFnCallPrompt`` (``FN_CALL_TEMPLATE``), one
  ``{"type": "function", "function": schema}`` JSON line per tool (``json.dumps`` with
  ``ensure_ascii=False`` and default separators, as qwen_agent does);
- the user text of each prompt mode (:func:`user_text`);
- the parsing of a reply into a tool call (:func:`parse_reply`): a reply is a call only when it
  ends with ``</tool_call>``, and only its last ``<tool_call>`` block is run, as the released
  ``parse_last_tool`` does. ``</tool_call>`` is not a stop string of the released generation
  (only ``<|im_end|>``/``<|endoftext|>`` are), so a reply with text after it (``...</tool_call>
  So the answer is \\boxed{A}``) is a final answer, not a call. Trailing whitespace is ignored
  here (the released check was a bare ``endswith``; see docs/deviations.md);
- the exact texts of the user turn that answers a call (:data:`CROP_RESULT`,
  :data:`FRAMES_RESULT`, :data:`ERROR_RESULT`).

Every string marked *verbatim* below is copied from the released code; a change to any of them
changes what the model sees and must bump the versions of the tasks that use them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import OptionError
from harness.json_safe import short
from harness.loop.policy import DEFAULT_STOP
from harness.records import ToolCall
from harness.task import PromptMode

if TYPE_CHECKING:
    from harness.tools import ToolSpec

TOOL_START = "<tool_call>"
TOOL_END = "</tool_call>"
# Verbatim: experience_maker.get_required_messages (system text of every prompt).
SYSTEM_PROMPT = "You are a helpful assistant."

# Verbatim: qwen_agent/llm/fncall_prompts/nous_fncall_prompt.py, FN_CALL_TEMPLATE, appended to the
# system message after "\n\n" by NousFnCallPrompt.preprocess_fncall_messages.
TOOLS_TEMPLATE = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n{tool_descs}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n'
    "</tool_call>"
)

# Verbatim: curiosity_driven_rl/openrlhf/datasets/prompts_dataset.py, templates["vcot"]
# (it starts with two newlines and says `crop_image` although the tool is crop_image_normalized).
VCOT_GUIDELINE = (
    "\n\nGuidelines: Understand the given visual information and the user query. Determine if it is "
    "beneficial to employ the given visual operations (tools). For a video, we can look closer by "
    "`select_frames`. For an image, we can look closer by `crop_image`. Reason with the visual "
    "information step by step, and put your final answer within \\boxed{}."
)
# Verbatim: prompts_dataset.py, templates["notool"].
NOTOOL_GUIDELINE = "Please think step by step, and put your final answer within \\boxed{}."

# Verbatim: experience_maker.py, the multi-turn loop (user turn answering a call).
CROP_RESULT = "\nHere is the cropped image (Image Size: {w}x{h}):"
FRAMES_RESULT = "\nHere are the selected frames (Frame Size: {w}x{h}, Numbered {a} to {b}):"
ERROR_RESULT = "\nExecution error:\n{reason}\n"


def render_crop(w: int, h: int) -> str:
    """Text of the user turn that carries a crop of ``w`` x ``h`` pixels (image follows)."""
    return CROP_RESULT.format(w=w, h=h)


def render_frames(w: int, h: int, a: int, b: int) -> str:
    """Text of the user turn that carries selected frames ``a``..``b`` (frames follow)."""
    return FRAMES_RESULT.format(w=w, h=h, a=a, b=b)


def render_error(reason: str) -> str:
    """Text of the user turn that reports a failed call; the model gets another turn."""
    return ERROR_RESULT.format(reason=reason)


def system_prompt(tools: Sequence[ToolSpec]) -> str:
    """The system message: the bare assistant line, plus the ``# Tools`` block when tools are given.

    Tools appear in the given order, one JSON object per line, exactly as qwen_agent rendered them
    for the released model.
    """
    if not tools:
        return SYSTEM_PROMPT
    descs = "\n".join(
        json.dumps({"type": "function", "function": tool.schema}, ensure_ascii=False) for tool in tools
    )
    return SYSTEM_PROMPT + "\n\n" + TOOLS_TEMPLATE.format(tool_descs=descs)


def user_text(question: str, mode: PromptMode) -> str:
    """The text part of the first user turn for ``mode`` (images/video come before it).

    ``vcot``: question + ``"\\n\\n"`` + the guideline, which itself starts with ``"\\n\\n"`` (four
    newlines in all, as released); ``notool``: question + ``"\\n\\n"`` + the step-by-step
    instruction; ``official``: the task's official prompt unchanged.
    """
    if mode == "vcot":
        return question + "\n\n" + VCOT_GUIDELINE
    if mode == "notool":
        return question + "\n\n" + NOTOOL_GUIDELINE
    if mode == "official":
        return question
    raise OptionError(f"unknown prompt mode {mode!r}; expected vcot, notool or official")


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """A model reply read as the protocol reads it.

    ``is_tool_call`` is true when the reply ends with ``</tool_call>``. Then either ``call`` is
    the parsed last block, or ``call`` is ``None`` and ``error`` says why the block could not be
    read (the episode answers with an execution-error turn).
    """

    text: str
    is_tool_call: bool
    call: ToolCall | None = None
    error: str | None = None


def strip_stop(text: str) -> str:
    """Remove trailing whitespace and trailing stop tokens (repeatedly) from ``text``."""
    out = text.rstrip()
    changed = True
    while changed:
        changed = False
        for stop in DEFAULT_STOP:
            if out.endswith(stop):
                out = out[: -len(stop)].rstrip()
                changed = True
    return out


#: Deepest nesting of objects/lists a tool call may have (the built-in calls have 3 levels).
MAX_CALL_DEPTH = 32


class CallJSONError(ValueError):
    """The JSON of a ``<tool_call>`` is outside what a call may hold; ``str()`` is the reason."""


def _reject_constant(name: str) -> Any:
    raise CallJSONError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise CallJSONError(f"the number {short(text, 40)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    try:
        value = int(text)
        float(value)
    except (ValueError, OverflowError):  # over Python's 4300 digits, or beyond a float
        raise CallJSONError(f"the number {short(text, 40)} is out of range") from None
    return value


def _depth(value: Any) -> int:
    """Nesting depth of lists/objects in ``value`` (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_CALL_DEPTH:
            stack.extend((c, depth + 1) for c in children)
    return deepest


def load_call_json(raw: str) -> Any:
    """Parse the JSON of a tool call as strict JSON: ``NaN``, ``Infinity``, numbers that overflow a
    float (``1e400``, a 400-digit integer) and nesting deeper than :data:`MAX_CALL_DEPTH` are
    :class:`CallJSONError` (Python's ``json.loads`` would accept all of them), so a call the tools
    get, and the record written for it, never holds a non-finite number."""
    try:
        payload = json.loads(
            raw, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except RecursionError:
        raise CallJSONError(f"nested deeper than {MAX_CALL_DEPTH} levels") from None
    if _depth(payload) > MAX_CALL_DEPTH:
        raise CallJSONError(f"nested deeper than {MAX_CALL_DEPTH} levels")
    return payload


def parse_reply(text: str) -> ParsedReply:
    """Read a reply: final text, or the last ``<tool_call>`` block. Never raises on any string."""
    if not isinstance(text, str):
        return ParsedReply(text=str(text), is_tool_call=False)
    body_end = strip_stop(text)
    if not body_end.endswith(TOOL_END):
        return ParsedReply(text=text, is_tool_call=False)
    head = body_end[: -len(TOOL_END)]
    start = head.rfind(TOOL_START)
    if start < 0:
        return ParsedReply(text, True, error=f"Invalid tool call: `{TOOL_END}` without a `{TOOL_START}`.")
    # Like the released parse_last_tool: from the last <tool_call> to the first </tool_call> after it.
    raw = head[start + len(TOOL_START) :].split(TOOL_END)[0]
    try:
        payload = load_call_json(raw)
    except Exception as exc:  # JSONDecodeError, CallJSONError (NaN, 1e400, nesting), ...
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        return ParsedReply(
            text, True, error=f"Invalid tool call: the content of <tool_call> is not valid JSON ({reason})."
        )
    if not isinstance(payload, dict):
        return ParsedReply(
            text, True, error=f"Invalid tool call: expected a JSON object, got {type(payload).__name__}."
        )
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        return ParsedReply(text, True, error='Invalid tool call: missing "name" (a string).')
    if "arguments" not in payload:
        return ParsedReply(text, True, error=f'Invalid tool call: missing "arguments" for `{name}`.')
    arguments = payload["arguments"]
    if not isinstance(arguments, dict):
        return ParsedReply(
            text,
            True,
            error=f'Invalid tool call: "arguments" must be a JSON object, got {short(arguments, 80)}.',
        )
    return ParsedReply(text, True, call=ToolCall(name=name, arguments=arguments, raw=raw.strip()))
