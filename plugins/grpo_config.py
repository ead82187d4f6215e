"""The config keys of ``harness train --plugin curiosity_grpo`` (:class:`GRPOTrainConfig`, defaults =
the released settings) and their one-line validation, before any model is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.errors import UserError

from .rewards import Correctness, CuriosityConfig, FilterRule, GroupFilter, RewardForm

if TYPE_CHECKING:
    from harness.loop.limits import Limits

INSTALL_HINT = "curiosity_grpo needs the train extra: pip install 'pixel-harness[hf,train]'"


_PUBLISHED = CuriosityConfig()
P = 28 * 28
# Released training pixel budgets (experience_maker.py, not is_eval): inputs resized into
# [4, 2000]*28^2 (raw_maxsize; crops are cut from this copy), crops into [4, 1000]*28^2
# (zoom_maxsize), selected frames into [4, 400]*28^2 (select_maxsize); the engine's processor
# then bounds every image to [MIN_PIXELS, MAX_PIXELS] = [256 (default), 5120]*28^2.
RELEASED_TRAIN_LIMITS = (
    f"source_min_pixels={4 * P},source_max_pixels={2000 * P},crop_min_pixels={4 * P},"
    f"crop_max_pixels={1000 * P},frame_min_pixels={4 * P},frame_max_pixels={400 * P},"
    f"min_pixels={256 * P},max_pixels={5120 * P}"
)
PIXEL_BUDGETS = {"released_train": RELEASED_TRAIN_LIMITS, "eval": ""}


@dataclass
class GRPOTrainConfig:
    """Config keys of ``harness train --plugin curiosity_grpo``; defaults = the released settings
    (except the collection sizes, small here: the released ones are a preset YAML)."""

    model: str = "@tiny"  # hf path or hub id; @tiny = the embedded tiny model
    output_dir: str = "runs/curiosity_grpo"
    task: str = "vstar"
    data: str = "synthetic:2"  # training prompts (as --data); keep eval's samples out
    n_samples: int = 16
    limits: str = ""  # episode limits key=value,... on top of pixel_budget (as eval's --limits)
    pixel_budget: Literal["released_train", "eval"] = "released_train"  # see RELEASED_TRAIN_LIMITS
    correctness: Correctness = "released"  # released {-1,0,1} rule, or binary: the eval scorer's
    scoring: str = "official"  # the eval scoring mode used by correctness=binary
    max_steps: int = 2  # collections
    prompts_per_step: int = 2  # prompts per collection (released preset: 512)
    num_generations: int = 8  # G
    update_batch_size: int = 0  # rollouts per optimiser update; 0 = one update per collection
    micro_batch_size: int = 2  # rollouts per loss micro-batch (released micro_train_batch_size)
    loss_agg: Literal["constant", "token_mean"] = "constant"
    loss_constant: float = 200.0  # loss_agg=constant: token sum / this, per micro-batch
    group_filter: FilterRule = "mad"  # mad: mean |r - mean| < threshold; equal: max - min <= it
    group_filter_threshold: float = 0.01
    refill: bool = True  # repeat kept rollouts to refill the collection (released)
    learning_rate: float = 1e-6
    lr_schedule: Literal["cosine_with_min_lr", "cosine", "constant"] = "cosine_with_min_lr"
    min_lr_ratio: float = 0.5  # cosine_with_min_lr: the final learning rate / learning_rate
    warmup_ratio: float = 0.03
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # 0 = no clipping
    clip_low: float = 0.2
    clip_high: float = 0.35
    temperature_first: float = 1.0
    temperature_later: float = 0.9
    top_p: float = 0.95
    top_k: int = 40  # 0 = off; applied where the policy's Sampling has top_k
    # The curiosity constants, flat for YAML; defaults come from CuriosityConfig (one source).
    reward_form: RewardForm = _PUBLISHED.form
    H: float = _PUBLISHED.H
    alpha: float = _PUBLISHED.alpha
    beta: float = _PUBLISHED.beta
    N: int = _PUBLISHED.N
    c_image: float = _PUBLISHED.c_image
    c_video: float = _PUBLISHED.c_video
    freeze_vision: bool = True
    device: str = "auto"
    seed: int = 0
    # Generation through vLLM, with TRL's GRPOConfig names (grpo_generation.py). Off: the hf backend.
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_base_url: str | None = None  # server: default http://{vllm_server_host}:{vllm_server_port}
    vllm_server_host: str = "0.0.0.0"
    vllm_server_port: int = 8000
    vllm_server_timeout: float = 240.0  # seconds to wait for the server to be up
    vllm_group_port: int = 51216  # server: the NCCL weight-update group's port
    vllm_gpu_memory_utilization: float = 0.3  # colocate: the engine's share of the GPU
    vllm_max_model_length: int | None = None  # colocate: context window (default: the model's)
    vllm_model_args: str = ""  # colocate: more vllm backend options / vLLM EngineArgs, as --model_args
    # TRL's truncated importance-sampling correction (token_truncate): each token's loss times
    # min(exp(trainer logp - engine logp), cap); vLLM generation only (grpo_importance.py).
    vllm_importance_sampling_correction: bool = True
    vllm_importance_sampling_cap: float = 2.0
    # Operations (train_ops.py): checkpoints, resume, trackers, progress, the no-update watch.
    save_every: int = 50  # steps between checkpoints in output_dir/checkpoints/step-N; 0 = none
    save_total_limit: int = 2  # checkpoints kept (the newest); 0 = all
    resume: bool = False  # continue from the latest checkpoint (harness train --resume)
    report_to: str = "tensorboard"  # tensorboard | wandb | tensorboard,wandb | none (accelerate trackers)
    progress: bool = True  # a progress bar with ETA on stderr
    no_update_patience: int = 3  # warn when the loss stayed 0 this many steps in a row; 0 = off
    stop_on_no_update: bool = False  # stop (checkpoint + error) instead of warning
    # Memory
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    gradient_checkpointing: bool = False  # recompute activations in the loss forward
    forward_batch_size: int = 1  # rollouts per loss forward pass, right-padded together; 1 = no padding
    group_by_length: bool = True  # forward_batch_size > 1: similar lengths share a pass (less padding)
    # Evaluation during training (train_eval.py): harness eval's code on the live weights.
    eval_every: int = 0  # steps between evaluations (and after the last step); 0 = none
    eval_tasks: str = "vstar"  # as eval's --tasks
    eval_limit: int | None = 16  # samples per task (as --limit); null = all
    eval_data: str = "synthetic"  # held-out samples (as --data); training uses synthetic:2
    eval_limits: str = ""  # the evaluation's episode limits (as eval's --limits; not pixel_budget)

    def curiosity(self) -> CuriosityConfig:
        return CuriosityConfig(
            self.reward_form, self.H, self.alpha, self.beta, self.N, self.c_image, self.c_video
        )

    def filter(self) -> GroupFilter:
        return GroupFilter(self.group_filter, self.group_filter_threshold)

    def episode_limits(self) -> Limits:
        """``pixel_budget``'s limits with ``limits`` applied on top."""
        from harness.loop.limits import Limits

        items = [x for x in (PIXEL_BUDGETS[self.pixel_budget], self.limits) if x]
        return Limits.parse(",".join(items))


def validate(config: GRPOTrainConfig) -> None:
    """One-line errors for bad values, before any model is loaded."""
    for name in ("micro_batch_size", "prompts_per_step", "max_steps", "forward_batch_size"):
        if getattr(config, name) < 1:
            raise UserError(f"curiosity_grpo: {name} must be >= 1, got {getattr(config, name)}")
    if config.update_batch_size < 0:
        raise UserError(f"curiosity_grpo: update_batch_size must be >= 0, got {config.update_batch_size}")
    if config.vllm_importance_sampling_cap <= 0:
        raise UserError(
            "curiosity_grpo: vllm_importance_sampling_cap must be > 0, "
            f"got {config.vllm_importance_sampling_cap}"
        )
    if config.loss_constant <= 0:
        raise UserError(f"curiosity_grpo: loss_constant must be > 0, got {config.loss_constant}")
    if not 0 <= config.warmup_ratio < 1:
        raise UserError(f"curiosity_grpo: warmup_ratio must be in [0, 1), got {config.warmup_ratio}")
    try:
        config.episode_limits()
        config.filter()
        config.curiosity()
    except ValueError as exc:
        raise UserError(f"curiosity_grpo: {exc}") from None
