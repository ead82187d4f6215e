"""The released recipe end to end on the tiny model: the SFT loss mask on the last two assistant
turns of a self-correction trace, several GRPO updates per collection against recorded old
log-probabilities, both released training sets as ``data:`` through ``harness train``, and the
config listing of ``harness train --help``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from train_support import SMALL_LIMITS, needs_train

from harness.cli import main
from harness.data import DataError
from harness.loop.limits import Limits
from harness.loop.policy import Policy
from harness.loop.rollout import RolloutConfig
from harness.plugins import Harness
from harness.records import Sample
from harness_plugins.pr_data import load_rl_data, read_sft_data, write_rl_repo
from harness_plugins.traces import CORRECTION_THOUGHT, synthesize, trace_styles, wrong_box

CONFIGS = Path(__file__).resolve().parents[2] / "plugins" / "configs"


def _self_correction(harness: Harness, samples: list[Sample]) -> list[Any]:
    spec = harness.task("vstar")
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS))
    return synthesize(spec, samples, harness.tools, config, ["self_correction"] * len(samples))


def test_self_correction_trace_crops_wrong_then_right(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    samples = make_samples("vstar", 3)
    episodes = _self_correction(harness_instance, samples)
    assert len(episodes) == 3
    for ep in episodes:
        traj = ep.trajectory()
        assert [t.tool_call is not None for t in traj.turns] == [True, True, False]
        wrong, right = (t.tool_call.arguments["bbox_2d"] for t in traj.turns[:2])  # type: ignore[union-attr]
        assert wrong == wrong_box(right) and wrong != right
        # the wrong crop (padded by 0.1) does not hold the target's centre
        cx, cy = (right[0] + right[2]) / 2, (right[1] + right[3]) / 2
        assert not (wrong[0] - 0.1 <= cx <= wrong[2] + 0.1 and wrong[1] - 0.1 <= cy <= wrong[3] + 0.1)
        assert traj.turns[1].reply.startswith(CORRECTION_THOUGHT)
        assert traj.n_ops == 2 and traj.n_errors == 0 and traj.end_reason == "answer"
        assert all(t.observation is not None and "Image Size" in t.observation.text for t in traj.turns[:2])


def test_trace_styles_are_seeded_and_mixed() -> None:
    styles = trace_styles(400, 0.25, 0.25, seed=3)
    assert styles == trace_styles(400, 0.25, 0.25, seed=3)
    share = {s: styles.count(s) / 400 for s in ("single", "self_correction", "textual")}
    assert all(0.18 < share[s] < 0.32 for s in ("self_correction", "textual"))
    with pytest.raises(ValueError, match="sum to at most 1"):
        trace_styles(1, 0.8, 0.4, seed=0)


@needs_train
def test_sft_mask_is_exactly_the_last_two_assistant_turns(
    tiny_policy: Any, harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    from harness_plugins.tokens import IGNORE, encode_with_mask

    (ep,) = _self_correction(harness_instance, make_samples("vstar", 1))
    replies = [m["content"][0]["text"] for m in ep.messages if m["role"] == "assistant"]
    assert len(replies) == 3
    tok = tiny_policy.processor.tokenizer
    encoded = encode_with_mask(tiny_policy.processor, ep.messages, last_turns=2)
    ids, labels = encoded.inputs["input_ids"][0], encoded.labels
    assert tok.decode(ids[labels != IGNORE].tolist()) == "".join(r + "<|im_end|>\n" for r in replies[1:])
    # the masked span is exactly two contiguous runs (the two turns), nothing of the wrong crop
    runs = sum(1 for i in range(len(labels)) if labels[i] != IGNORE and (i == 0 or labels[i - 1] == IGNORE))
    assert runs == 2
    every = encode_with_mask(tiny_policy.processor, ep.messages)
    assert tok.decode(ids[every.labels != IGNORE].tolist()) == "".join(r + "<|im_end|>\n" for r in replies)


@needs_train
def test_several_updates_take_the_ratio_against_collection_time_logps(
    tiny_model: Path, harness_instance: Harness, scripted_policy: Callable[[str], Policy]
) -> None:
    import torch
    from transformers import get_scheduler

    from harness.backends.hf import HFOptions, HFPolicy
    from harness.data import load_samples
    from harness_plugins.curiosity_grpo import GRPOTrainConfig, Recorder, collect, optimise

    policy = HFPolicy(str(tiny_model), HFOptions(device="cpu", dtype="float32"))
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=5e-2, betas=(0.9, 0.95), weight_decay=0.0)
    scheduler = get_scheduler("constant", optimizer)
    spec = harness_instance.task("vstar")
    samples = load_samples(spec, "synthetic", 2)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS))
    rolls = [
        r
        for kind in ("oracle", "random")
        for r in collect(spec, samples, Recorder(scripted_policy(kind)), harness_instance.tools, config, 1)
    ]
    grpo = GRPOTrainConfig(update_batch_size=2, group_filter="equal", group_filter_threshold=1e-9)
    entry = optimise(policy.model, policy.processor, optimizer, scheduler, rolls, grpo, 0)
    assert entry["rollouts_trained"] == 4 and len(entry["updates"]) == 2
    first, second = entry["updates"]
    assert first["rollouts"] == second["rollouts"] == 2
    assert first["ratio_max_dev"] < 1e-4  # the collecting policy itself
    assert second["ratio_max_dev"] > 1e-3  # the policy moved after the first update
    assert all(r.old_logp is None for r in rolls)  # released after the collection's updates


def _sft_file(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "videos" / "v1").mkdir(parents=True)
    Image.new("RGB", (120, 80), "red").save(tmp_path / "images" / "a.jpg")
    for f in range(4):
        Image.new("RGB", (640, 360), "blue").save(tmp_path / "videos" / "v1" / f"{f}.jpg")
    call = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 1}}\n</tool_call>'
    image = {
        "message_list": [
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [{"type": "image", "image": "images/a.jpg"}, {"type": "text", "text": "Colour?"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": call}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "\nHere is the cropped image (Image Size: 56x56):"},
                    {"image": "images/a.jpg"},
                ],
            },
            {"role": "assistant", "content": "It is red. \\boxed{red}"},
        ]
    }
    video = {
        "message_list": [
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [
                    {"type": "video", "video": [f"videos/v1/{f}.jpg" for f in range(4)]},
                    {"type": "text", "text": "Colour?"},
                ],
            },
            {"role": "assistant", "content": "It is blue. \\boxed{blue}"},
        ]
    }
    path = tmp_path / "sft.json"
    path.write_text(json.dumps([image, video]))
    return path


def test_sft_reader_takes_images_and_videos_at_the_released_sizes(tmp_path: Path) -> None:
    image_conv, video_conv = list(read_sft_data(_sft_file(tmp_path)))
    assert [m["role"] for m in image_conv] == ["system", "user", "assistant", "user", "assistant"]
    first = image_conv[1]["content"][0]["image"]
    assert first.size == (112, 84)  # smart resize, factor 28, within [4, 5120] * 28^2
    (frames,) = [p["video"] for p in video_conv[1]["content"] if p["type"] == "video"]
    assert len(frames) == 4 and all(f.width * f.height <= 420 * 360 for f in frames)
    assert frames[0].size == (504, 280)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"x": 1}], "record 0: field 'message_list' missing or empty"),
        ([{"message_list": [{"role": "bot", "content": "x"}]}], "message_list[0]: field 'role'"),
        (
            [{"message_list": [{"role": "user", "content": [{"type": "image", "image": "nope.jpg"}]}]}],
            "part 0: file not found",
        ),
        ([{"message_list": [{"role": "user", "content": "q"}]}], "has no assistant turn"),
    ],
)
def test_sft_reader_errors_name_record_and_field(tmp_path: Path, records: list[Any], message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        list(read_sft_data(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_rl_loader_reads_the_released_layout(tmp_path: Path) -> None:
    write_rl_repo(tmp_path / "strings", 6)
    write_rl_repo(tmp_path / "lists", 3, answer_lists=True)
    items = load_rl_data(tmp_path / "strings")
    assert [s.media_kind for _, s in items] == ["image", "image", "video"] * 2
    video = items[2][1]
    assert len(video.media) == 16 and all((Path(video.root) / m).is_file() for m in video.media)
    assert video.media[0].startswith("videos/")  # frame paths resolve under the unzipped videos/
    assert all((Path(s.root) / s.media[0]).is_file() for _, s in items)
    (spec, first), *_ = load_rl_data(tmp_path / "lists" / "release.parquet")
    assert (
        first.metadata["pr_answer"] == [first.answer, first.answers[1]] and spec.name == "pixel_reasoner_rl"
    )
    assert len(load_rl_data(tmp_path / "strings", 2)) == 2


def test_rl_loader_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pytest.raises(DataError, match="no such file"):
        load_rl_data(tmp_path / "missing")
    pq.write_table(pa.table({"qid": ["a"], "question": ["q"]}), tmp_path / "release.parquet")
    with pytest.raises(DataError, match="missing column.*'answer'"):
        load_rl_data(tmp_path)
    rows = {"qid": ["a", ""], "question": ["q", "q"], "answer": ["A", "B"], "image": [["x.jpg"], ["y.jpg"]]}
    pq.write_table(pa.table({**rows, "is_video": [False, False]}), tmp_path / "release.parquet")
    with pytest.raises(DataError, match=r"row 1: field 'qid' must be a non-empty string") as info:
        load_rl_data(tmp_path)
    assert "\n" not in str(info.value)


def _train(argv: list[str]) -> None:
    assert main(argv) == 0


@needs_train
def test_grpo_trains_on_the_released_rl_layout(tmp_path: Path, tiny_model: Path) -> None:
    repo = write_rl_repo(tmp_path / "PixelReasoner-RL-Data", 3)
    ckpt = tmp_path / "grpo"
    sets = [
        f"model={tiny_model}",
        f"output_dir={ckpt}",
        f"limits={SMALL_LIMITS}",
        f"data=pixel_reasoner_rl:{repo}",
    ]
    sets += ["n_samples=3", "max_steps=1", "prompts_per_step=3", "num_generations=2", "device=cpu"]
    _train(["train", "--plugin", "curiosity_grpo", *[x for s in sets for x in ("--set", s)]])
    (entry,) = [json.loads(line) for line in (ckpt / "train_log.jsonl").read_text().splitlines()]
    assert entry["rollouts"] == 6 and entry["groups"] == 3  # the video row ran too
    assert entry["correctness"] == "released" and entry["reward_form"] == "released"
    info = json.loads((ckpt / "harness_train.json").read_text())
    assert info["config"]["loss_constant"] == 200.0 and info["config"]["pixel_budget"] == "released_train"


@needs_train
def test_sft_trains_on_the_released_sft_layout(tmp_path: Path, tiny_model: Path) -> None:
    path = _sft_file(tmp_path)
    ckpt = tmp_path / "sft"
    sets = [f"model={tiny_model}", f"output_dir={ckpt}", f"data=pixel_reasoner_sft:{path}", "max_steps=1"]
    sets += ["grad_accum=1", "batch_size=1"]
    _train(["train", "--plugin", "trl_sft", *[x for s in sets for x in ("--set", s)]])
    info = json.loads((ckpt / "harness_train.json").read_text())
    assert info["n_conversations"] == 2 and info["config"]["loss_last_turns"] == 2


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (
            "curiosity_grpo",
            [
                'correctness: "released"',
                'reward_form: "released"',
                'group_filter: "mad"',
                "group_filter_threshold: 0.01",
                "refill: true",
                'loss_agg: "constant"',
                "loss_constant: 200.0",
                "adam_beta1: 0.9",
                "adam_beta2: 0.95",
                "weight_decay: 0.0",
                "warmup_ratio: 0.03",
                'lr_schedule: "cosine_with_min_lr"',
                "min_lr_ratio: 0.5",
                "max_grad_norm: 1.0",
                "top_k: 40",
                "top_p: 0.95",
                "temperature_first: 1.0",
                "temperature_later: 0.9",
                'pixel_budget: "released_train"',
            ],
        ),
        (
            "trl_sft",
            [
                "loss_last_turns: 2",
                'lr_schedule: "cosine"',
                "warmup_ratio: 0.1",
                "grad_accum: 16",
                "epochs: 5.0",
            ],
        ),
    ],
)
def test_train_help_lists_the_released_defaults(
    plugin: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--plugin", plugin, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"config keys of {plugin}" in out
    lines = out.splitlines()
    for text in expected:
        assert any(line.startswith(text + "  #") for line in lines), text


def test_released_preset_and_show_config(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--plugin", "curiosity_grpo", "--config", str(CONFIGS / "curiosity_grpo_released.yaml")]
    assert main([*argv, "--show-config"]) == 0
    out = capsys.readouterr().out.splitlines()
    for text in (
        "prompts_per_step: 512",
        "num_generations: 8",
        "update_batch_size: 256",
        "micro_batch_size: 2",
    ):
        assert any(line.startswith(text + "  #") for line in out), text
    assert main([*argv, "--set", "update_batch_size=-1", "--show-config"]) == 0  # listing does not validate
    assert main(["train", "--plugin", "curiosity_grpo", "--set", "group_filter=median"]) == 2
    assert "'median' is not one of" in capsys.readouterr().err


def test_released_top_k_reaches_every_turns_sampling() -> None:
    """The released GRPO sampled with top-k 40: the rollouts' Sampling carries it on both turns."""
    from harness.loop.policy import Sampling
    from harness_plugins.curiosity_grpo import Recorder

    class Stub:
        name = "stub"

    rec = Recorder(Stub(), first=1.0, later=0.9, top_p=0.95, top_k=40)  # type: ignore[arg-type]
    assert [
        (s.temperature, s.top_p, s.top_k) for s in (rec._turn(Sampling(), 1.0), rec._turn(Sampling(), 0.9))
    ] == [
        (1.0, 0.95, 40),
        (0.9, 0.95, 40),
    ]
