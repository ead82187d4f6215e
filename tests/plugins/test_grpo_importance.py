"""The vLLM truncated importance-sampling correction of ``curiosity_grpo`` (grpo_importance.py) and
the length-grouped loss forward (grpo_loss.py): the weight, the alignment of the engine's tokens
with the trainer's, the corrected loss by hand, when the correction is off, and batched forwards
giving the per-rollout loss and gradients. No vLLM needed: policies that return log-probabilities
stand in for it."""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from train_support import SMALL_LIMITS, needs_train

import harness_plugins.grpo_loss as grpo_loss
from harness.loop.policy import Policy, Reply, Request
from harness.plugins import Harness
from harness_plugins.curiosity_grpo import GRPOTrainConfig, LossSpec, Recorder, Rollout, collect
from harness_plugins.grpo_importance import ISStats, align, is_weights
from harness_plugins.grpo_loss import forward_groups
from harness_plugins.grpo_update import importance_cap

needs_torch = pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="needs torch"
)
NAN = math.nan


@needs_torch
@pytest.mark.parametrize(
    ("old", "engine", "cap", "expected"),
    [
        (-1.0, -1.0, 2.0, 1.0),  # same probability: no correction
        (-1.0, -1.5, 2.0, math.exp(0.5)),  # the trainer finds the token likelier than the engine
        (-1.5, -1.0, 2.0, math.exp(-0.5)),  # less likely: no lower bound
        (-1.0, -4.0, 2.0, 2.0),  # exp(3) truncated at the cap
        (-1.0, -4.0, 3.0, 3.0),
        (-1.0, -1.2, 1.1, 1.1),
        (-1.0, -math.inf, 2.0, 2.0),
        (-1.0, NAN, 2.0, 1.0),  # no engine log-probability: weight 1
    ],
)
def test_is_weight(old: float, engine: float, cap: float, expected: float) -> None:
    import torch

    weight = is_weights(torch.tensor([old]), torch.tensor([engine]), cap)
    assert float(weight[0]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("ids", "spans", "turns", "values", "bad"),
    [
        # the engine's tokens are the span's first ones; the template's end-of-turn token is not sampled
        ([0, 1, 2, 3, 4, 5], [(3, 6)], [((3, -0.1), (4, -0.2))], [-0.1, -0.2, NAN], 0),
        ([0, 1, 2, 3, 4, 5], [(3, 6)], [((3, -0.1), (4, -0.2), (5, -0.3))], [-0.1, -0.2, -0.3], 0),
        ([0, 1, 2, 3, 4, 5], [(3, 6)], [((3, -0.1), (9, -0.2))], [NAN] * 3, 1),  # other ids
        ([0, 1, 2, 3, 4, 5], [(3, 5)], [((3, -0.1), (4, -0.2), (5, -0.3))], [NAN] * 2, 1),  # longer
        ([0, 1, 2, 3, 4, 5], [(3, 6)], [None], [NAN] * 3, 0),  # no log-probabilities for the turn
        ([0, 1, 2, 3, 4, 5], [(3, 6)], None, [NAN] * 3, 0),
        ([0, 1, 2, 3, 4, 5], [(1, 3), (4, 6)], [((1, -1.0),)], [NAN] * 4, 2),  # turn counts differ
        (
            [0, 1, 2, 3, 4, 5, 6],
            [(1, 3), (4, 7)],
            [((1, -1.0), (2, -2.0)), ((4, -4.0), (0, -5.0))],
            [-1.0, -2.0, NAN, NAN, NAN],
            1,
        ),
    ],
)
def test_align(
    ids: list[int],
    spans: list[tuple[int, int]],
    turns: list[Any] | None,
    values: list[float],
    bad: int,
) -> None:
    got, misaligned = align(ids, spans, turns)
    assert misaligned == bad
    assert len(got) == len(values)
    assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, values, strict=True))


@pytest.mark.parametrize(
    ("lengths", "size", "by_length", "groups"),
    [
        ([5, 9, 2, 8], 2, True, [[1, 3], [0, 2]]),
        ([5, 9, 2, 8], 2, False, [[0, 1], [2, 3]]),
        ([5, 9, 2], 4, True, [[1, 0, 2]]),
        ([5, 9, 2], 1, True, [[1], [0], [2]]),
    ],
)
def test_forward_groups(lengths: list[int], size: int, by_length: bool, groups: list[list[int]]) -> None:
    assert forward_groups(lengths, size, by_length) == groups


@pytest.mark.parametrize(
    ("kw", "cap"),
    [
        ({}, None),  # hf generation: nothing to correct
        ({"use_vllm": True}, 2.0),  # on by default with vLLM
        ({"use_vllm": True, "vllm_importance_sampling_cap": 3.0}, 3.0),
        ({"use_vllm": True, "vllm_importance_sampling_correction": False}, None),
        ({"vllm_importance_sampling_correction": True}, None),
    ],
)
def test_correction_only_with_vllm(kw: dict[str, Any], cap: float | None) -> None:
    assert importance_cap(GRPOTrainConfig(**kw)) == cap


def _fake_roll(key: str, n: int, engine: list[float] | None) -> Any:
    """A rollout of ``n`` assistant tokens (ids 10, 11, ...) at positions 1..n, and the engine's
    log-probabilities of its first ``len(engine)`` tokens."""
    import torch

    ids = [0, *range(10, 10 + n)]
    roll = Rollout(None, key, None, None, None, [])  # type: ignore[arg-type]
    roll.encoded = types.SimpleNamespace(
        labels=torch.tensor([-100, *ids[1:]]),
        inputs={"input_ids": torch.tensor([ids])},
        spans=((1, n + 1),),
    )
    if engine is not None:
        roll.engine_logprobs = [tuple((10 + i, lp) for i, lp in enumerate(engine))]
    return roll


@needs_torch
@pytest.mark.parametrize("cap", [2.0, None])
def test_corrected_loss_by_hand(cap: float | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trainer log-probability is -1 (ratio 1, token loss -A); the engine's are -1.5, -0.5
    and -4 (weights e^0.5, e^-0.5, e^3 -> 2) on rollout a, none on b; token_mean over 5 tokens."""
    import torch

    params = {"a": torch.zeros(3, requires_grad=True), "b": torch.zeros(2, requires_grad=True)}
    monkeypatch.setattr(grpo_loss, "token_logps", lambda model, processor, roll: params[roll.group] - 1.0)
    batch = [(_fake_roll("a", 3, [-1.5, -0.5, -4.0]), 0.5), (_fake_roll("b", 2, None), -1.0)]
    stats = ISStats()
    spec = LossSpec((0.2, 0.35), "token_mean", 200.0, 2, is_cap=cap)
    metrics = grpo_loss.grpo_loss(None, None, batch, spec, None, stats)
    weights = [math.exp(0.5), math.exp(-0.5), 2.0] if cap else [1.0, 1.0, 1.0]
    expected = (-0.5 * sum(weights) + 1.0 * 2) / 5
    assert metrics["loss"] == pytest.approx(expected, rel=1e-6)
    # the weight carries no gradient: d loss / d logp = -A * weight / 5
    assert params["a"].grad.tolist() == pytest.approx([-0.5 * w / 5 for w in weights], rel=1e-6)
    assert params["b"].grad.tolist() == pytest.approx([1.0 / 5, 1.0 / 5])
    log = stats.log()
    if cap is None:
        assert log == {"is_tokens": 0}
    else:
        assert log["is_tokens"] == 3 and log["is_truncated_fraction"] == pytest.approx(1 / 3)
        assert log["is_weight_max"] == pytest.approx(2.0)
        assert log["is_weight_min"] == pytest.approx(math.exp(-0.5), rel=1e-6)
        assert log["is_weight_mean"] == pytest.approx(sum(weights) / 3, rel=1e-6)


class WithLogprobs:
    """A policy that answers like ``inner`` and gives each reply's tokens (as the trainer's
    tokenizer encodes the text, plus ``<|im_end|>``) made-up engine log-probabilities;
    ``corrupt`` changes the first token id of every reply (a re-tokenisation mismatch)."""

    def __init__(self, inner: Policy, tokenizer: Any, corrupt: bool = False, submit: bool = False) -> None:
        self.inner, self.tokenizer, self.corrupt, self.name = inner, tokenizer, corrupt, inner.name
        if submit:
            self.submit = self._submit

    def _reply(self, reply: Reply) -> Reply:
        ids = self.tokenizer.encode(reply.text, add_special_tokens=False)
        ids += self.tokenizer.encode("<|im_end|>", add_special_tokens=False)
        if self.corrupt:
            ids[0] = ids[0] + 1
        return Reply(reply.text, reply.finish_reason, logprobs=tuple((t, -0.5) for t in ids))

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return [self._reply(r) for r in self.inner.generate(requests)]

    def _submit(self, request: Request) -> Any:
        from harness.loop.policy import completed

        return completed(self.generate([request])[0])


@needs_train
@pytest.mark.parametrize("submit", [False, True])
def test_engine_logprobs_reach_the_rollouts_only_when_asked(
    submit: bool,
    tiny_model: Path,
    harness_instance: Harness,
    scripted_policy: Callable[[str], Policy],
) -> None:
    from transformers import AutoTokenizer

    from harness.data import load_samples
    from harness.loop.limits import Limits
    from harness.loop.rollout import RolloutConfig

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    policy = WithLogprobs(scripted_policy("oracle"), tokenizer, submit=submit)
    spec = harness_instance.task("vstar")
    samples = load_samples(spec, "synthetic", 2)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS))
    tapped = collect(spec, samples, Recorder(policy, logprobs=True), harness_instance.tools, config, 2)
    assert len(tapped) == 4
    for roll in tapped:
        assert roll.engine_logprobs is not None
        assert len(roll.engine_logprobs) == len(roll.trajectory.turns) == 2  # oracle: zoom, answer
        for turn, sampled in zip(roll.trajectory.turns, roll.engine_logprobs, strict=True):
            assert sampled is not None and [t for t, _ in sampled][:-1] == tokenizer.encode(
                turn.reply, add_special_tokens=False
            )
    plain = collect(spec, samples, Recorder(policy), harness_instance.tools, config, 1)
    assert all(r.engine_logprobs is None for r in plain)


@pytest.fixture
def tiny_policy(tiny_model: Path) -> Any:
    from harness.backends.hf import HFOptions, HFPolicy

    return HFPolicy(str(tiny_model), HFOptions(device="cpu", dtype="float32"))


def _rollouts(harness: Harness, policies: list[Policy], logprobs: bool) -> list[Rollout]:
    from harness.data import load_samples
    from harness.loop.limits import Limits
    from harness.loop.rollout import RolloutConfig

    spec = harness.task("vstar")
    samples = load_samples(spec, "synthetic", 2)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS))
    recorders = [Recorder(p, logprobs=logprobs) for p in policies]
    return [r for rec in recorders for r in collect(spec, samples, rec, harness.tools, config, 1)]


@needs_train
@pytest.mark.parametrize("corrupt", [False, True])
def test_optimise_logs_the_correction_and_counts_misaligned_turns(
    corrupt: bool,
    tiny_policy: Any,
    harness_instance: Harness,
    scripted_policy: Callable[[str], Policy],
) -> None:
    import torch
    from transformers import get_scheduler

    from harness_plugins.curiosity_grpo import optimise

    tokenizer = tiny_policy.processor.tokenizer
    policies: list[Policy] = [
        WithLogprobs(scripted_policy(kind), tokenizer, corrupt) for kind in ("oracle", "random")
    ]
    rolls = _rollouts(harness_instance, policies, logprobs=True)
    # the loss (and the correction) sees the groups with reward variance: here, differing scores
    kept = [r for r in rolls if len({x.score.score for x in rolls if x.group == r.group}) > 1]
    assert kept
    turns = sum(len(r.trajectory.turns) for r in kept)
    sampled = sum(len(s or ()) for r in kept for s in r.engine_logprobs or [])
    optimizer = torch.optim.AdamW(tiny_policy.model.parameters(), lr=1e-3)
    scheduler = get_scheduler("constant", optimizer)
    config = GRPOTrainConfig(use_vllm=True, refill=False)
    if corrupt:
        with pytest.warns(UserWarning, match=f"{turns} assistant turn"):
            entry = optimise(tiny_policy.model, tiny_policy.processor, optimizer, scheduler, rolls, config, 0)
        assert entry["is_turns_misaligned"] == turns and entry["is_tokens"] == 0
    else:
        entry = optimise(tiny_policy.model, tiny_policy.processor, optimizer, scheduler, rolls, config, 0)
        assert entry["is_turns_misaligned"] == 0
        assert entry["is_tokens"] == sampled  # every sampled token; the template's "\n" is not one
        assert 0 < entry["is_weight_min"] <= entry["is_weight_mean"] <= entry["is_weight_max"] <= 2.0
        assert 0.0 <= entry["is_truncated_fraction"] <= 1.0
    assert entry["rollouts_trained"] == len(kept)
    hf = optimise(
        tiny_policy.model,
        tiny_policy.processor,
        optimizer,
        scheduler,
        rolls,
        GRPOTrainConfig(refill=False),
        1,
    )
    assert not any(k.startswith("is_") for k in hf)  # hf generation: no correction, no metrics


@needs_train
def test_length_grouped_forward_gives_the_per_rollout_loss_and_gradients(
    tiny_policy: Any, harness_instance: Harness, scripted_policy: Callable[[str], Policy]
) -> None:
    import torch

    from harness_plugins.tokens import BATCHED_KEYS

    rolls = _rollouts(harness_instance, [scripted_policy("oracle"), scripted_policy("random")], False)
    lengths = [int(grpo_loss._encoded(tiny_policy.processor, r).inputs["input_ids"].shape[1]) for r in rolls]
    assert len(set(lengths)) > 1  # padding happens
    encoded = [grpo_loss._encoded(tiny_policy.processor, r) for r in rolls]
    assert all(set(e.inputs) <= BATCHED_KEYS for e in encoded)  # really one forward per group
    batch = list(zip(rolls, [0.5, -1.0, 0.25, 2.0], strict=True))
    model = tiny_policy.model
    model.eval()  # no dropout: the same numbers from every forward
    results = []
    for size, by_length in ((1, True), (4, False), (3, True)):
        model.zero_grad()
        spec = LossSpec((0.2, 0.35), "constant", 200.0, 2, forward_batch_size=size, group_by_length=by_length)
        metrics = grpo_loss.grpo_loss(model, tiny_policy.processor, batch, spec)
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((metrics["loss"], grads))
    (loss0, grads0), *others = results
    for loss, grads in others:
        assert loss == pytest.approx(loss0, rel=1e-5, abs=1e-7)
        assert grads.keys() == grads0.keys()
        for name, g in grads.items():
            torch.testing.assert_close(g, grads0[name], rtol=1e-4, atol=1e-6)
    # the recorded old log-probabilities agree too
    single = [grpo_loss.token_logps(model, tiny_policy.processor, r).detach() for r in rolls]
    batched = grpo_loss.batch_logps(model, tiny_policy.processor, rolls)
    for a, b in zip(single, batched, strict=True):
        torch.testing.assert_close(b.detach(), a, rtol=1e-4, atol=1e-5)


def test_vllm_reply_carries_the_sampled_tokens_logprobs() -> None:
    from harness.backends.vllm_engine import VLLMOptions, sampled_logprobs, sampling_kwargs, to_reply
    from harness.loop.policy import Sampling

    def position(token: int, lp: float) -> dict[int, Any]:
        return {token: types.SimpleNamespace(logprob=lp)}

    completion = types.SimpleNamespace(
        text="The answer is \\boxed{A}.",
        token_ids=[5, 7, 9],
        finish_reason="stop",
        logprobs=[position(5, -0.25), position(7, -1.5), position(9, -0.125)],
    )
    output = types.SimpleNamespace(outputs=[completion], prompt_token_ids=[1, 2])
    assert sampled_logprobs(completion) == ((5, -0.25), (7, -1.5), (9, -0.125))
    on = to_reply(output, Sampling(), VLLMOptions(logprobs=True), 0.0)
    assert on.logprobs == ((5, -0.25), (7, -1.5), (9, -0.125))
    assert to_reply(output, Sampling(), VLLMOptions(), 0.0).logprobs is None
    assert sampling_kwargs(Sampling(), VLLMOptions(logprobs=True))["logprobs"] == 0
    assert "logprobs" not in sampling_kwargs(Sampling(), VLLMOptions())
    completion.logprobs = None  # the engine was not asked: nothing to pass on
    assert to_reply(output, Sampling(), VLLMOptions(logprobs=True), 0.0).logprobs is None


def test_openai_reply_carries_vllm_token_ids_and_logprobs() -> None:
    from harness.backends.chat import DataUrlCache
    from harness.backends.openai_api import OpenAIOptions, request_body, sampled_logprobs
    from harness.loop.policy import Sampling
    from harness.records import Sample

    def choice(*tokens: tuple[str, float]) -> Any:
        items = [types.SimpleNamespace(token=t, logprob=lp) for t, lp in tokens]
        return types.SimpleNamespace(logprobs=types.SimpleNamespace(content=items))

    assert sampled_logprobs(choice(("token_id:5", -0.25), ("token_id:151645", -0.5))) == (
        (5, -0.25),
        (151645, -0.5),
    )
    assert sampled_logprobs(choice(("The", -0.25))) is None  # token text, no ids: nothing to align
    assert sampled_logprobs(types.SimpleNamespace(logprobs=None)) is None
    sample = Sample(task="vstar", id="0", question="q", answer="A", media=())
    request = Request(
        [{"role": "user", "content": [{"type": "text", "text": "q"}]}], Sampling(top_k=40), sample, 0, 0
    )
    body = request_body(request, OpenAIOptions(logprobs=True), DataUrlCache())
    assert body["logprobs"] is True and body["top_logprobs"] == 0
    assert body["extra_body"] == {"top_k": 40, "return_tokens_as_token_ids": True}
    assert "logprobs" not in request_body(request, OpenAIOptions(), DataUrlCache())


@needs_train
def test_collate_gives_the_eval_forward(tiny_policy: Any) -> None:
    """A conversation collated (SFT's batches, GRPO's forward batches) gets the logits of its own
    encoding, as eval feeds it: the token types that switch on Qwen2.5-VL's 3-D positions travel."""
    import torch
    from PIL import Image

    from harness_plugins.tokens import BATCHED_KEYS, collate, encode_with_mask

    image = Image.new("RGB", (112, 84), (200, 30, 30))
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Color?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "The answer is \\boxed{red}."}]},
    ]
    encoded = encode_with_mask(tiny_policy.processor, messages)
    assert set(encoded.inputs) <= BATCHED_KEYS  # nothing the collator would drop
    model = tiny_policy.model.eval()
    batch = collate(tiny_policy.processor, 0, [encoded])
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, model(**encoded.inputs).logits)
