"""``trl_sft``: TRL's SFTTrainer on tool-use traces, with loss on assistant tokens only.

Traces come from :mod:`harness_plugins.traces` (the harness's own Episode driven with scripted
replies, so they are exactly eval's transcripts: single-pass, error-induced self-correction and
textual traces, mixed by ``self_correction_ratio`` / ``textual_ratio``) or from the released SFT
data (``data: pixel_reasoner_sft:PATH``, :mod:`harness_plugins.pr_data`, images and videos), and
optionally a second Pixel-Reasoner SFT JSON file mixed in (``pixel_reasoner_sft``).
Each conversation is encoded by :mod:`harness_plugins.tokens` with the model's own chat template
and processor, as the hf eval backend encodes it; labels keep only the last ``loss_last_turns``
assistant turns (2, as released: the wrong operation of a self-correction trace is never
imitated; 0 = every assistant turn). Tool observations, their images, the system prompt and the
question are -100. Defaults are the released recipe (``instruction_tuning/sft.sh``): lr 1e-6,
cosine with 10% warm-up, 5 epochs, a batch of 16 (8 GPUs x 1 x 2 accumulation: here
``batch_size`` x ``grad_accum`` per process), vision tower frozen. The checkpoint folder
(model + processor) loads with ``harness eval --model hf:OUTPUT_DIR``.

TRL's built-in ``assistant_only_loss`` needs a ``{% generation %}`` chat template; our collator
computes the same mask from the unmodified template instead (see tokens.py), so the ids trained
on are the ids eval feeds the model. torch/transformers/trl are imported inside ``train`` only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness import hookimpl
from harness.errors import UserError
from harness.trainer import TrainerSpec

if TYPE_CHECKING:
    from harness.loop.episode import Message
    from harness.plugins import Harness

INSTALL_HINT = "trl_sft needs the train extra: pip install 'pixel-harness[hf,train]'"


@dataclass
class SFTTrainConfig:
    """Config keys of ``harness train --plugin trl_sft`` (YAML or ``--set key=value``)."""

    model: str = "@tiny"  # hf path or hub id (as in --model hf:...); @tiny = the embedded tiny model
    output_dir: str = "runs/trl_sft"
    task: str = "vstar"
    data: str = "synthetic:1"  # training samples (as --data), or pixel_reasoner_sft:PATH (released JSON)
    n_samples: int = 32
    limits: str = ""  # episode limits key=value,... (must match the eval run's --limits)
    pixel_reasoner_sft: str | None = None  # optional Pixel-Reasoner SFT JSON mixed in (message_list)
    self_correction_ratio: float = 0.25  # synthesized traces: share of error-induced self-correction
    textual_ratio: float = 0.25  # synthesized traces: share answered without any operation (released ~2k/8k)
    loss_last_turns: int = 2  # loss on the last N assistant turns (released: 2); 0 = all
    epochs: float = 5.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 1e-6  # the published SFT learning rate
    lr_schedule: Literal["cosine", "constant", "linear"] = "cosine"
    warmup_ratio: float = 0.1  # must be < 1 (a ratio of the total steps)
    batch_size: int = 1  # per device
    grad_accum: int = 16  # released: 8 GPUs x 1 x 2 = 16 per optimiser step
    freeze_vision: bool = True  # published: vision tower frozen
    seed: int = 0
    logging_steps: int = 1
    # Operations, through TRL / transformers' own mechanisms (save_steps, resume_from_checkpoint,
    # report_to, the Trainer's tqdm bar).
    save_every: int = 0  # steps between checkpoints (output_dir/checkpoint-N); 0 = only the final model
    save_total_limit: int = 2  # checkpoints kept (the newest); 0 = all
    resume: bool = False  # continue from the latest output_dir/checkpoint-N (harness train --resume)
    report_to: str = (
        "tensorboard"  # tensorboard | wandb | tensorboard,wandb | none (events in output_dir/runs/)
    )
    progress: bool = True  # the Trainer's progress bar
    # Memory
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    gradient_checkpointing: bool = False
    # Evaluation during training (train_eval.py): harness eval's code on the live weights.
    eval_every: int = 0  # optimiser steps between evaluations (and after the last); 0 = none
    eval_tasks: str = "vstar"
    eval_limit: int | None = 16
    eval_data: str = "synthetic"  # held-out samples (training uses synthetic:1)
    eval_limits: str = ""  # the evaluation's episode limits (as eval's --limits)


def conversations(config: SFTTrainConfig, harness: Harness) -> list[list[Message]]:
    """The training conversations: synthesized traces, then the Pixel-Reasoner file's, if any."""
    from harness.data import load_samples
    from harness.loop.limits import Limits
    from harness.loop.rollout import RolloutConfig

    from .pr_data import SFT_PREFIX
    from .traces import read_pixel_reasoner_sft, synthesize, trace_styles

    convs: list[Any]
    if config.data.startswith(SFT_PREFIX):
        convs = list(read_pixel_reasoner_sft(Path(config.data.removeprefix(SFT_PREFIX))))
        convs = convs[: config.n_samples] if config.n_samples > 0 else convs
    else:
        spec = harness.task(config.task)
        samples = load_samples(spec, config.data, config.n_samples)
        rollout_config = RolloutConfig(limits=Limits.parse(config.limits))
        styles = trace_styles(len(samples), config.self_correction_ratio, config.textual_ratio, config.seed)
        convs = [e.messages for e in synthesize(spec, samples, harness.tools, rollout_config, styles)]
    if config.pixel_reasoner_sft:
        convs += list(read_pixel_reasoner_sft(Path(config.pixel_reasoner_sft)))
    if not convs:
        raise UserError(f"trl_sft: no traces: no {config.task} sample in {config.data!r} has a target box")
    return convs


def freeze_vision_tower(model: Any) -> int:
    """Stop gradients into the vision encoder; returns how many tensors were frozen."""
    frozen = 0
    for name, param in model.named_parameters():
        if ".visual." in f".{name}" or name.startswith("visual."):
            param.requires_grad_(False)
            frozen += 1
    return frozen


def train(config: SFTTrainConfig, harness: Harness) -> Path:
    """Synthesize traces, run SFTTrainer, save model + processor to ``output_dir``."""
    try:
        import datasets
        import torch
        from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]
    except ImportError as exc:
        raise UserError(INSTALL_HINT) from exc
    from transformers.trainer_utils import get_last_checkpoint as _last_checkpoint

    def get_last_checkpoint(folder: str) -> str | None:
        found: str | None = _last_checkpoint(folder)  # type: ignore[no-untyped-call]
        return found

    from harness.backends.hf import HFOptions, HFPolicy

    from .tokens import collate, encode_with_mask
    from .train_eval import TrainEval, trainer_callback
    from .train_ops import StopOnInterrupt, parse_report_to, resume_command

    report_to = parse_report_to(config.report_to, "trl_sft")
    out = Path(config.output_dir)
    last_checkpoint = get_last_checkpoint(str(out)) if config.resume and out.is_dir() else None
    if config.resume and last_checkpoint is None:
        raise UserError(
            f"trl_sft: --resume: no checkpoint-N folder in {out} (written every save_every steps)"
        )
    plan = TrainEval(
        config.eval_every,
        config.eval_tasks,
        config.eval_limit,
        config.eval_data,
        config.eval_limits,
        config.seed,
        f"trl_sft:{out}",
    )
    plan.check(harness)
    cuda = torch.cuda.is_available()
    dtype = ("bfloat16" if cuda else "float32") if config.dtype == "auto" else config.dtype
    # Resume: the weights come from the checkpoint through from_pretrained, which maps the saved key
    # names to the model's (transformers 5's Trainer loads them with load_state_dict(strict=False)
    # under the saved names, so Qwen2.5-VL's weights silently stayed the initial ones).
    policy = HFPolicy(last_checkpoint or config.model, HFOptions(device="cpu", dtype=dtype))
    processor, model = policy.processor, policy.model.train()
    if config.freeze_vision:
        freeze_vision_tower(model)
    last = config.loss_last_turns if config.loss_last_turns > 0 else None
    rows = [encode_with_mask(processor, m, last) for m in conversations(config, harness)]
    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_schedule,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_every > 0 else "no",
        save_steps=max(config.save_every, 1),
        save_total_limit=config.save_total_limit or None,
        report_to=list(report_to) or "none",
        disable_tqdm=not config.progress,
        activation_checkpointing=config.gradient_checkpointing,  # transformers 5 name of gradient checkpointing
        bf16=dtype == "bfloat16" and cuda,  # the weights are already in dtype; on CPU no autocast
        use_cpu=not torch.cuda.is_available(),  # accelerate places the model on each process's GPU
        seed=config.seed,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_dict({"row": list(range(len(rows)))}),
        processing_class=processor,
        data_collator=lambda batch: collate(processor, policy.pad_id, [rows[b["row"]] for b in batch]),
    )
    with StopOnInterrupt() as stop:
        trainer.add_callback(stop.callback())
        if plan.every > 0:
            trainer.add_callback(trainer_callback(plan, policy, harness, out))
        if last_checkpoint is not None and hasattr(trainer, "_load_from_checkpoint"):
            trainer._load_from_checkpoint = lambda *args, **kwargs: None  # type: ignore[method-assign]  # weights loaded above
        trainer.train(resume_from_checkpoint=last_checkpoint)
    if stop.requested:
        where = get_last_checkpoint(str(out))
        raise KeyboardInterrupt(
            f"trl_sft interrupted at step {trainer.state.global_step}; checkpoint {where}; "
            f"resume with: {resume_command('trl_sft', str(out))}"
        )
    # Under `accelerate launch` every process gets here; save_model writes on the main process only
    # (and gathers ZeRO-3 / FSDP shards first, so every process must call it). Our own files are
    # written by the main process alone, and the others wait until the checkpoint is complete.
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out))
        history = trainer.state.log_history
        (out / "train_log.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history), encoding="utf-8")
        info = {"trainer": "trl_sft", "config": asdict(config), "n_conversations": len(rows)}
        info["num_processes"] = trainer.accelerator.num_processes
        (out / "harness_train.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    return out


@hookimpl
def harness_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "trl_sft", SFTTrainConfig, train, "TRL SFTTrainer on tool-use traces (assistant-only loss)"
        )
    ]
