"""Training checkpoints for the GRPO loop: ``OUTPUT_DIR/checkpoints/step-N`` folders (written
atomically, the newest ``save_total_limit`` kept), loaded by ``--resume``; and the RNG states
that make a resumed run draw what the uninterrupted one would have. See :mod:`.train_ops` for
when they are written."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError

if TYPE_CHECKING:
    from .train_ops import OpsConfig

STATE_FILE = "harness_state.json"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states."""
    import random

    import numpy as np
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state()}
    state["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoints:
    """``OUTPUT_DIR/checkpoints/step-N`` folders: save (atomically), find the latest, prune."""

    def __init__(self, output_dir: Path, keep: int) -> None:
        self.root = Path(output_dir) / "checkpoints"
        self.keep = keep

    def all(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.glob("step-*") if (p / STATE_FILE).is_file()]
        return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def save(self, accelerator: Any, model: Any, processor: Any, step: int, log: Sequence[str]) -> Path:
        """Checkpoint after ``step`` completed steps (every process must call it)."""
        final = self.root / f"step-{step}"
        tmp = self.root / f".step-{step}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        # FSDP (the model was prepared): its full weights too, gathered (every process calls it),
        # so that `harness eval --model hf:CHECKPOINT` loads any checkpoint folder
        full = accelerator.get_state_dict(model) if accelerator._models else None
        accelerator.wait_for_everyone()  # every process's RNG file is in before the rename
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            if full is not None:  # weights, config and generation config
                unwrapped.save_pretrained(str(tmp), state_dict=full)
            else:  # not prepared (one process, or data-parallel with full weights everywhere)
                from safetensors.torch import save_model

                save_model(model, str(tmp / "model.safetensors"))
                unwrapped.config.save_pretrained(str(tmp))
                if getattr(unwrapped, "generation_config", None) is not None:
                    unwrapped.generation_config.save_pretrained(str(tmp))
            processor.save_pretrained(str(tmp))
            (tmp / "train_log.jsonl").write_text("".join(log), encoding="utf-8")
            state = {"next_step": step, "num_processes": accelerator.num_processes}
            (tmp / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self.prune()
        accelerator.wait_for_everyone()
        return final

    def prune(self) -> None:
        if self.keep <= 0:
            return
        for old in self.all()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def load(accelerator: Any, model: Any, path: Path) -> tuple[int, list[str]]:
        """Restore model, optimiser, scheduler and RNG from ``path``; the next step and the log."""
        accelerator.load_state(str(path))
        if not accelerator._models:
            from safetensors.torch import load_model

            load_model(model, str(path / "model.safetensors"))
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        log = (path / "train_log.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        return int(state["next_step"]), log


def require_checkpoint(config: OpsConfig) -> Path:
    """The checkpoint ``--resume`` continues from; a one-line error (before any model is loaded)
    when there is none."""
    latest = Checkpoints(config.output_dir, config.save_total_limit).latest()
    if latest is None:
        raise UserError(
            f"{config.trainer}: --resume: no checkpoint in {Path(config.output_dir) / 'checkpoints'} "
            "(checkpoints are written every save_every steps and on Ctrl-C)"
        )
    return latest
