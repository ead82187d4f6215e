"""Episode: the state of one sample's interaction, independent of any model backend.

An evaluation rollout and a GRPO trainer drive the same class: build it from a sample and its
loaded media, send ``messages`` to a policy, feed each reply to :meth:`Episode.step` until
``done``, then read :meth:`Episode.trajectory`.

Conventions (following the released multi-turn loop in ``experience_maker.py``):

- ``n_ops`` counts every tool-call turn, i.e. every reply ending with ``</tool_call>``: executed,
  failed (execution error) or refused by a limit (the 5th call with ``max_ops=4``, or a call past
  the context budget). This is the released ``num_toolcalls``, the number the curiosity reward
  uses; an episode that hit ``max_ops=4`` ends with ``n_ops == 5``. Executed calls are the turns
  whose ``observation`` is set.
- ``n_errors`` counts execution-error turns (bad JSON, unknown tool, wrong arguments...).
- ``last_op_failed``: the episode ended while the most recent executed call had failed (the
  released ``final_error_flags``); the reward forces ``correct`` to 0 then.
- ``final_reply`` is the text of the last reply when the episode ended with an answer (a reply
  that is not a tool call, or any reply in the single-turn modes); ``None`` when it ended on a
  limit (``max_ops``, ``max_images``, ``context``) or a backend error: the scorer then sees no
  answer. (The released scorer read the last ``\\boxed{}`` of the whole transcript instead; the
  turns keep every reply for a compatibility scorer that wants that.)
- Images (see harness/loop/limits.py): the tools hold each input bounded to ``source_*_pixels``, each
  crop at its "Image Size" and each video frame at its "Frame Size"; the messages carry every
  image resized once more into ``min_pixels``..``max_pixels``, as the released engine's processor
  showed it. ``Trajectory.shown_sizes`` and ``Observation.shown_sizes`` record those sizes.
- A reply that is a tool call is checked against ``max_ops`` then the context budget (prompt +
  completion tokens, when the backend reports both) before it runs; a plain answer always ends the
  episode, as ``answer``, or as ``no_answer`` when the task's extractor (``extract``, given by the
  rollout) gets nothing from it. When the images a call returns would push the conversation past
  ``max_images`` slots (a video counts as one), the episode ends as ``max_images`` and the result
  is recorded but not shown.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from harness.loop.limits import Limits
from harness.loop.policy import Reply
from harness.loop.protocol import SYSTEM_PROMPT, parse_reply, render_error, system_prompt, user_text
from harness.records import EndReason, Observation, Sample, ToolCall, Trajectory, Turn, clean_text
from harness.task import PROMPT_MODES, PromptMode
from harness.tools import SeenImage, ToolContext, ToolError, ToolResult, ToolSpec, resize_to_budget

Message = dict[str, Any]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, limit: int = 60) -> str:
    """A filesystem-safe rendering of ``text`` plus a short hash, so distinct texts never collide."""
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = _UNSAFE.sub("_", text).strip("._")[:limit] or "x"
    return f"{cleaned}-{digest}"


class Episode:
    """One sample's interaction: messages so far, images seen, calls made, and why it ended."""

    def __init__(
        self,
        sample: Sample,
        media: Sequence[Image.Image],
        *,
        mode: PromptMode,
        question: str,
        tools: Sequence[ToolSpec],
        limits: Limits = Limits(),  # noqa: B008 (frozen, immutable)
        crop_dir: Path | None = None,
        extract: Callable[[str], str | None] | None = None,
    ) -> None:
        if mode not in PROMPT_MODES:
            raise ValueError(f"unknown prompt mode {mode!r}; expected one of {PROMPT_MODES}")
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate tool names in {names}")
        self.sample = sample
        self.mode: PromptMode = mode
        self.limits = limits
        self.crop_dir = Path(crop_dir) if crop_dir is not None else None
        self.extract = extract  # the task's answer extractor: a final reply it gets nothing from is no_answer
        self.tools: dict[str, ToolSpec] = {t.name: t for t in tools}
        self.done = False
        self.n_ops = 0
        self.n_errors = 0
        self.last_op_failed = False
        self.end_reason: EndReason | None = None
        self.final_reply: str | None = None
        self.error: str | None = None
        self.turns: list[Turn] = []
        self.system = system_prompt(list(tools)) if mode == "vcot" else SYSTEM_PROMPT
        self.prompt = user_text(question, mode)

        # Two copies of every image, as in the released evaluation: the one the tools hold (crops
        # are cut from it; its size is the text of a tool result) and the one the model is shown,
        # resized once more into the engine's min_pixels..max_pixels (see harness/loop/limits.py).
        self.frames: list[Image.Image] = []
        self._seen: list[SeenImage] = []
        self._shown: list[Image.Image] = []
        self.shown_sizes: list[tuple[int, int]] = []
        parts: list[dict[str, Any]] = []
        if sample.media_kind == "video":
            self.frames = [
                resize_to_budget(f, limits.frame_min_pixels, limits.frame_max_pixels) for f in media
            ]
            shown_frames = [self._show(f) for f in self.frames]
            self.shown_sizes = [f.size for f in shown_frames]
            parts.append({"type": "video", "video": shown_frames})
        else:
            for k, img in enumerate(media):
                source = resize_to_budget(img, limits.source_min_pixels, limits.source_max_pixels)
                self._seen.append(SeenImage(source, "input", (0.0, 0.0, 1.0, 1.0) if k == 0 else None))
                self._shown.append(self._show(source))
                parts.append({"type": "image", "image": self._shown[-1]})
            self.shown_sizes = [im.size for im in self._shown]
        parts.append({"type": "text", "text": self.prompt})
        self.messages: list[Message] = [
            {"role": "system", "content": [{"type": "text", "text": self.system}]},
            {"role": "user", "content": parts},
        ]
        if self.crop_dir is not None:
            self.crop_dir.mkdir(parents=True, exist_ok=True)

    @property
    def images(self) -> list[Image.Image]:
        """Every image shown as an image part so far (inputs, crops, selected frames), in order,
        as the model was shown them (after the engine's pixel bounds)."""
        return list(self._shown)

    def _show(self, image: Image.Image) -> Image.Image:
        """``image`` as the serving engine's processor would show it (``min_pixels``..``max_pixels``)."""
        return resize_to_budget(image, self.limits.min_pixels, self.limits.max_pixels)

    @property
    def n_slots(self) -> int:
        """Image slots of the conversation (``target_image`` numbering; a video is one slot)."""
        return len(self._seen) + (1 if self.sample.media_kind == "video" else 0)

    def step(self, reply: Reply) -> None:
        """Take the model's next reply: answer it with a tool result, or end the episode.

        Bad model output never raises; calling ``step`` on a finished episode is a
        ``RuntimeError`` (a bug in the caller).
        """
        if self.done:
            raise RuntimeError(
                f"episode {self.sample.key} is finished ({self.end_reason}); step() called again"
            )
        index = len(self.turns)
        # clean_text: a lone surrogate (an OpenAI-compatible server can send one) cannot be encoded
        # into the next request; the Turn keeps the exact reply (Turn.raw_reply).
        shown = clean_text(reply.text)
        self.messages.append({"role": "assistant", "content": [{"type": "text", "text": shown}]})
        call: ToolCall | None = None
        obs: Observation | None = None
        if reply.finish_reason == "error":
            self._finish("error")
            self.error = reply.text
        elif self.mode != "vcot":
            self._finish(self._answered(reply.text), reply.text)
        else:
            parsed = parse_reply(reply.text)
            call = parsed.call
            if not parsed.is_tool_call:
                self._finish(self._answered(reply.text), reply.text)
            else:
                executed = self.n_ops
                self.n_ops += 1
                if executed >= self.limits.max_ops:
                    self._finish("max_ops")
                elif self._over_context(reply):
                    self._finish("context")
                else:
                    result, error = self._execute(call, parsed.error)
                    obs = self._answer(index, result, error, call)
        self.turns.append(
            Turn(
                index=index,
                reply=reply.text,
                finish_reason=reply.finish_reason,
                tool_call=call,
                observation=obs,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                seconds=reply.seconds,
            )
        )

    def trajectory(self) -> Trajectory:
        """The finished episode as a record; ``RuntimeError`` while it is still running."""
        if not self.done or self.end_reason is None:
            raise RuntimeError(f"episode {self.sample.key} is not finished")
        return Trajectory(
            task=self.sample.task,
            sample_id=self.sample.id,
            prompt_mode=self.mode,
            system=self.system,
            prompt=self.prompt,
            turns=tuple(self.turns),
            end_reason=self.end_reason,
            final_reply=self.final_reply,
            n_ops=self.n_ops,
            n_errors=self.n_errors,
            last_op_failed=self.last_op_failed,
            error=self.error,
            shown_sizes=tuple(self.shown_sizes),
        )

    # -- internals -------------------------------------------------------------------------

    def _finish(self, reason: EndReason, final_reply: str | None = None) -> None:
        self.done = True
        self.end_reason = reason
        self.final_reply = final_reply

    def _answered(self, text: str) -> EndReason:
        """``answer``, or ``no_answer`` when the task's extractor gets nothing from ``text``."""
        if self.extract is None:
            return "answer"
        extracted = self.extract(text)
        return "answer" if extracted is not None and extracted.strip() else "no_answer"

    def _over_context(self, reply: Reply) -> bool:
        if reply.prompt_tokens is None or reply.completion_tokens is None:
            return False
        return reply.prompt_tokens + reply.completion_tokens > self.limits.max_context_tokens

    def _execute(self, call: ToolCall | None, parse_error: str | None) -> tuple[ToolResult | None, str]:
        """Run ``call``; return (result, "") or (None, reason shown to the model)."""
        if call is None:
            return None, parse_error or "Invalid tool call."
        spec = self.tools.get(call.name)
        if spec is None:
            known = ", ".join(f"`{n}`" for n in self.tools) or "none"
            return None, f"Execution Error: Unknown tool `{call.name}`. Available tools: {known}."
        if self.sample.media_kind not in spec.media:
            return None, spec.wrong_media(self.sample.media_kind)
        ctx = ToolContext(
            images=tuple(self._seen),
            frames=tuple(self.frames),
            media_kind=self.sample.media_kind,
            limits=self.limits,
        )
        try:
            result = spec.run(call.arguments, ctx)
            if not isinstance(result, ToolResult):
                raise TypeError(f"tool returned {type(result).__name__}, not ToolResult")
        except ToolError as exc:
            return None, str(exc) or f"Execution Error: `{call.name}` failed."
        except Exception as exc:  # a tool bug must not end the run: report it like the released loop
            return None, f"Execution Error: `{call.name}` failed: {type(exc).__name__}: {exc}"
        return result, ""

    def _answer(
        self, index: int, result: ToolResult | None, error: str, call: ToolCall | None
    ) -> Observation:
        """Append the user turn answering a call (or end on max_images); return its observation."""
        if result is None:
            self.n_errors += 1
            self.last_op_failed = True
            text = render_error(error)
            self.messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
            return Observation(kind="error", tool=call.name if call else "", text=text, error=error)
        self.last_op_failed = False
        obs = result.observation
        new = list(result.images)
        if self.n_slots + len(new) > self.limits.max_images:
            self._finish("max_images")
            return obs
        first = self.n_slots + 1
        single = len(new) == 1
        shown = [self._show(img) for img in new]
        for k, img in enumerate(new):
            # selected frames show frames[k]; a single crop shows (part of) frames[0] when set
            frame = obs.frames[k] if len(obs.frames) == len(new) else None
            self._seen.append(SeenImage(img, obs.kind, obs.box_in_original if single else None, frame))
        self._shown += shown
        saved = self._save(index, new)
        obs = dataclasses.replace(
            obs,
            images=tuple(range(first, first + len(new))),
            saved=saved,
            shown_sizes=tuple(im.size for im in shown),
        )
        content: list[dict[str, Any]] = [{"type": "text", "text": result.text}]
        content += [{"type": "image", "image": img} for img in shown]
        self.messages.append({"role": "user", "content": content})
        return obs

    def _save(self, index: int, images: Sequence[Image.Image]) -> tuple[str, ...]:
        if self.crop_dir is None:
            return ()
        stem = f"{safe_name(self.sample.task, 24)}__{safe_name(self.sample.id)}__t{index:02d}"
        names = []
        for k, img in enumerate(images):
            name = f"{stem}_{k}.png"
            img.save(self.crop_dir / name, format="PNG")
            names.append(name)
        return tuple(names)
