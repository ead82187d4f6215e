"""Training operations for the GRPO loop: checkpoints and resume, trackers, progress, Ctrl-C,
and the no-update watch. Nothing here knows about rewards or rollouts.

* **Checkpoints** (:class:`Checkpoints`): every ``save_every`` steps, ``OUTPUT_DIR/checkpoints/
  step-N`` holds accelerate's ``save_state`` (model weights, optimiser, scheduler, every process's
  RNG states), the model config and processor (so the folder also loads with ``harness eval
  --model hf:DIR``), ``train_log.jsonl`` up to that step and ``harness_state.json`` (the next
  step: the data position, since the prompts of step N are a pure function of the seed and N).
  A checkpoint is written into a hidden temporary folder and renamed when complete, so a process
  killed while saving leaves the previous one intact; the last ``save_total_limit`` are kept.
* **Resume** (``resume: true``, ``harness train --resume``): the latest complete checkpoint is
  loaded (``load_state``) and ``train_log.jsonl`` is cut back to its copy, so the run continues
  with the same next batch and the same log as if it had not stopped.
* **Trackers**: ``report_to`` (``tensorboard`` by default; ``wandb``; ``none``) through accelerate's
  ``log_with`` / ``init_trackers`` / ``log``; TensorBoard events go to ``OUTPUT_DIR/tensorboard/``.
* **Progress**: a tqdm bar over the steps with ETA (stderr), the per-step JSON line printed above.
* **Ctrl-C**: while a step's updates and log are being written the interrupt is deferred to the
  step's end (weights, optimiser and log stay consistent); otherwise the step in flight is
  discarded. Either way a checkpoint of the completed steps is saved and the exception carries
  the command that resumes.
* **No-update watch**: a warning when a step drops every group, or when the loss has been 0 for
  ``no_update_patience`` steps in a row; ``stop_on_no_update`` turns it into a stop (checkpoint,
  then a one-line error).

torch/accelerate are imported inside the functions; ``import harness_plugins.train_ops`` is light.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError

from .checkpoints import Checkpoints, require_checkpoint, rng_state, set_rng_state

TRACKERS = ("tensorboard", "wandb")


class NoUpdateStop(UserError):
    """``stop_on_no_update``: the run stopped because nothing was learned (one line)."""


@dataclass(frozen=True)
class OpsConfig:
    """What the operations do; built from a trainer's flat config keys."""

    trainer: str
    output_dir: Path
    save_every: int = 0  # 0 = no intermediate checkpoints (only on Ctrl-C / a stop)
    save_total_limit: int = 2  # checkpoints kept (the newest); 0 = all
    resume: bool = False
    report_to: tuple[str, ...] = ("tensorboard",)
    progress: bool = True
    no_update_patience: int = 3  # warn when the loss stayed 0 this many steps; 0 = off
    stop_on_no_update: bool = False
    resume_hint: str = ""  # the command line that resumes (printed on Ctrl-C)


def parse_report_to(value: str, trainer: str) -> tuple[str, ...]:
    """``tensorboard``, ``wandb``, ``tensorboard,wandb`` or ``none``; one-line error otherwise, and
    when ``wandb`` is asked for but not installed. TensorBoard missing is a warning (no tracker)."""
    names = tuple(x.strip() for x in value.split(",") if x.strip())
    if names in ((), ("none",)):
        return ()
    bad = [n for n in names if n not in TRACKERS]
    if bad:
        raise UserError(f"{trainer}: report_to: {bad[0]!r} is not one of tensorboard, wandb, none")
    if "wandb" in names and importlib.util.find_spec("wandb") is None:
        raise UserError(f"{trainer}: report_to: wandb is not installed (pip install wandb)")
    if "tensorboard" in names and not _have_tensorboard():
        warnings.warn(
            f"{trainer}: tensorboard is not installed (pip install tensorboard): no TensorBoard logs",
            stacklevel=2,
        )
        names = tuple(n for n in names if n != "tensorboard")
    return names


def _have_tensorboard() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


class TrainOps:
    """The operations around one training loop (see the module docstring)."""

    def __init__(self, config: OpsConfig, accelerator: Any) -> None:
        self.config, self.accelerator = config, accelerator
        self.out = Path(config.output_dir)
        self.checkpoints = Checkpoints(self.out, config.save_total_limit)
        self.log_path = self.out / "train_log.jsonl"
        self.log: list[str] = []
        self.step = 0  # completed steps
        self.saved_step = -1
        self.zero_loss_steps = 0
        self.bar: Any = None
        self._rng: dict[str, Any] | None = None
        self._deferred: list[Any] = []
        self._closed = False

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    def start(self, model: Any, max_steps: int, tracker_config: dict[str, Any]) -> int:
        """Resume (when asked) or start fresh; start the trackers and the bar; the first step."""
        if self.config.resume:
            latest = require_checkpoint(self.config)
            self.step, self.log = Checkpoints.load(self.accelerator, model, latest)
            self.saved_step = self.step
            print(f"{self.config.trainer}: resuming from {latest} at step {self.step}", file=sys.stderr)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("".join(self.log), encoding="utf-8")
        self._rng = rng_state()
        if self.config.report_to:
            flat = {k: v for k, v in tracker_config.items() if isinstance(v, int | float | str | bool)}
            self.accelerator.init_trackers(self.config.trainer, config=flat)
        if self.config.progress and self.main:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=max_steps, initial=self.step, desc=self.config.trainer, unit="step", dynamic_ncols=True
            )
        return self.step

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """Defer SIGINT to the end of the block (a step's updates and log stay consistent)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda signum, frame: self._deferred.append(signum))
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        if self._deferred:
            self._deferred.clear()
            raise KeyboardInterrupt

    def end_step(self, entry: dict[str, Any], model: Any, processor: Any, max_steps: int) -> None:
        """Log one completed step (file, trackers, bar), watch for no update, checkpoint when due."""
        line = json.dumps(entry) + "\n"
        self.log.append(line)
        self.step += 1
        if self.main:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        scalars = {k: v for k, v in entry.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if self.config.report_to:
            self.accelerator.log(scalars, step=int(entry.get("step", self.step - 1)))
        if self.main:
            (self.bar.write if self.bar is not None else print)(line.rstrip("\n"))
            if self.bar is not None:
                self.bar.set_postfix(
                    loss=f"{scalars.get('loss', 0.0):.4g}", reward=f"{scalars.get('reward', 0):.3g}"
                )
                self.bar.update(1)
        self._rng = rng_state()
        stop = self.watch(entry)
        due = self.config.save_every > 0 and self.step % self.config.save_every == 0 and self.step < max_steps
        if due or stop:
            self.save(model, processor)
        if stop:
            raise NoUpdateStop(
                f"{self.config.trainer}: {stop}; stopped (stop_on_no_update), checkpoint {self._where()}"
            )

    def watch(self, entry: dict[str, Any]) -> str:
        """Warn when nothing was learned; the stop reason when ``stop_on_no_update`` applies."""
        step = entry.get("step", self.step - 1)
        reasons = []
        if entry.get("groups") and entry.get("groups_dropped") == entry.get("groups"):
            reasons.append(
                f"step {step}: every group was dropped (no reward variance in any group): no update"
            )
        self.zero_loss_steps = self.zero_loss_steps + 1 if float(entry.get("loss", 0.0)) == 0.0 else 0
        patience = self.config.no_update_patience
        if patience > 0 and self.zero_loss_steps >= patience:
            reasons.append(
                f"the loss has been 0 for {self.zero_loss_steps} steps in a row (the weights are not changing)"
            )
        if not reasons:
            return ""
        text = "; ".join(reasons)
        if self.main:
            message = f"{self.config.trainer}: warning: {text}"
            (self.bar.write if self.bar is not None else print)(message, file=sys.stderr)
        return text if self.config.stop_on_no_update else ""

    def save(self, model: Any, processor: Any) -> Path:
        """A checkpoint of the completed steps, with their RNG state (not the discarded step's)."""
        if self.saved_step == self.step and self.checkpoints.latest() is not None:
            return self.checkpoints.latest() or self.out
        current = rng_state()
        if self._rng is not None:
            set_rng_state(self._rng)
        path = self.checkpoints.save(self.accelerator, model, processor, self.step, self.log)
        set_rng_state(current)
        self.saved_step = self.step
        return path

    def _where(self) -> str:
        return str(self.checkpoints.latest() or self.checkpoints.root)

    def interrupted(self, model: Any, processor: Any, resume_hint: str) -> KeyboardInterrupt:
        """Ctrl-C: checkpoint the completed steps; the exception that says how to resume."""
        self.close()
        path = self.save(model, processor)
        return KeyboardInterrupt(
            f"{self.config.trainer} interrupted after {self.step} step(s); checkpoint {path}; "
            f"resume with: {resume_hint}"
        )

    def close(self) -> None:
        """Close the bar and the trackers (idempotent)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.config.report_to and not self._closed:
            # not accelerator.end_training(): it also destroys the process group, still needed
            for tracker in self.accelerator.trackers:
                tracker.finish()
        self._closed = True


def resume_command(trainer: str, output_dir: str) -> str:
    """The ``harness train`` line that resumes this run: this process's arguments plus ``--resume``."""
    import shlex

    argv = sys.argv[1:]
    if "train" in argv and "--plugin" in argv:
        return "harness " + " ".join(shlex.quote(a) for a in argv if a != "--resume") + " --resume"
    return f"the same harness train --plugin {trainer} command with --resume (output_dir={output_dir})"


class StopOnInterrupt:
    """Ctrl-C for a transformers ``Trainer`` (SFT): the first SIGINT is deferred to the end of the
    current optimiser step, where a TrainerCallback (:meth:`callback`) asks the Trainer to save a
    regular ``checkpoint-N`` and stop; ``interrupted`` says so afterwards. A second SIGINT
    interrupts at once. Only in the main thread (signal handlers can only be set there)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopOnInterrupt:
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # the second Ctrl-C
            raise KeyboardInterrupt
        self.requested = True
        print(
            "interrupt: saving a checkpoint at the end of this step (Ctrl-C again to stop now)",
            file=sys.stderr,
        )

    def callback(self) -> Any:
        from transformers import TrainerCallback

        owner = self

        class _Stop(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                if owner.requested:
                    control.should_save = True
                    control.should_training_stop = True
                return control

        return _Stop()
