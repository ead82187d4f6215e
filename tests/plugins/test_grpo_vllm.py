"""``curiosity_grpo`` with vLLM generation (TRL's colocate and server modes) and its weight sync.

vLLM cannot be installed here (CUDA only; it pins another transformers), so the engine is a test
double: for colocate, a ``vllm`` module whose ``LLM`` holds its own copy of the tiny model and
loads pushed weights by name through ``llm_engine.model_executor.driver_worker.model_runner.model
.load_weights`` (the path TRL's colocate sync uses); for server, a real OpenAI-compatible HTTP
server (``harness serve``'s) answering the rollouts, and a stand-in for TRL's ``VLLMClient`` that
copies ``update_named_params`` into the served model's copy. Both answer with a letter chosen by
the request seed, so groups have reward variance and the optimiser really moves the weights. The
tests check that the engine holds exactly the weights of the policy each step's rollouts are
meant to come from.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from train_support import SMALL_LIMITS, free_port, needs_train

import harness_plugins.curiosity_grpo as grpo
import harness_plugins.grpo_generation as generation
from harness.backends.vllm_engine import VLLMOptions, engine_kwargs
from harness.cli import main
from harness.loop.policy import Reply, Request
from harness.plugins import Harness
from harness_plugins.curiosity_grpo import GRPOTrainConfig
from harness_plugins.grpo_generation import Generator, server_url

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
LETTERS = "ABCD"


def _letter(seed: int | None) -> str:
    return f"The answer is \\boxed{{{LETTERS[(seed or 0) % 4]}}}."


def _config(tiny_model: Path, out: Path, **kw: Any) -> GRPOTrainConfig:
    base: dict[str, Any] = dict(
        model=str(tiny_model),
        output_dir=str(out),
        limits=SMALL_LIMITS,
        n_samples=2,
        max_steps=2,
        prompts_per_step=2,
        num_generations=8,
        learning_rate=1e-2,
        device="cpu",
        use_vllm=True,
    )
    return GRPOTrainConfig(**{**base, **kw})


class EngineModel:
    """The engine's copy of the weights (a transformers model), loaded by name like vLLM's."""

    def __init__(self, path: str) -> None:
        from transformers import AutoModelForImageTextToText

        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype="float32")
        self.pending: list[str] = []
        self.syncs: list[list[str]] = []  # the names loaded by each sync (closed by a cache reset)

    def load_weights(self, weights: list[tuple[str, Any]]) -> None:
        params = dict(self.model.named_parameters())
        for name, tensor in weights:
            params[name].data.copy_(tensor)  # KeyError on a name the model does not have
            self.pending.append(name)

    def reset_prefix_cache(self) -> None:
        self.syncs.append(self.pending)
        self.pending = []

    def weights(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.model.named_parameters()}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The trained model's weights after each optimiser step (wraps ``optimise``)."""
    taken: list[dict[str, Any]] = []
    real = grpo.optimise

    def spy(model: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        entry = real(model, *args, **kwargs)
        taken.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return entry

    monkeypatch.setattr(grpo, "optimise", spy)
    return taken


@pytest.fixture
def colocate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colocate sets torch.distributed's variables as TRL does; keep them out of other tests."""
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch, colocate_env: None) -> dict[str, Any]:
    """A ``vllm`` module: ``LLM`` records its kwargs, answers by seed and loads weights by name."""
    import trl.trainer.utils  # noqa: F401 (TRL probes for vLLM once, at import: let it find none)

    seen: dict[str, Any] = {"engines": [], "prompts": []}

    class Completion:
        """The text's token ids and ``<|im_end|>``; with ``logprobs=0`` asked, vLLM's per-position
        dicts of the sampled token's log-probability."""

        def __init__(self, text: str, logprobs: bool, ids: list[int]) -> None:
            self.text, self.token_ids, self.finish_reason = text, ids, "stop"
            lp = types.SimpleNamespace(logprob=-0.5)
            self.logprobs = [{t: lp} for t in self.token_ids] if logprobs else None

    class Output:
        def __init__(self, text: str, logprobs: bool, ids: list[int]) -> None:
            self.outputs, self.prompt_token_ids = [Completion(text, logprobs, ids)], [0] * 10

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            from transformers import AutoTokenizer

            self.kwargs = kwargs
            self.weights = EngineModel(kwargs["model"])
            self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
            runner = types.SimpleNamespace(model=self.weights)
            worker = types.SimpleNamespace(model_runner=runner)
            self.llm_engine = types.SimpleNamespace(
                model_executor=types.SimpleNamespace(driver_worker=worker)
            )
            seen["engines"].append(self)

        def reset_prefix_cache(self) -> None:
            self.weights.reset_prefix_cache()

        def generate(self, prompts: list[Any], params: list[Any], use_tqdm: bool = False) -> list[Output]:
            seen["prompts"] += prompts
            seen.setdefault("params", []).extend(params)
            texts = [_letter(p["seed"]) for p in params]
            end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
            ids = [[*self.tokenizer.encode(t, add_special_tokens=False), end] for t in texts]
            return [Output(t, p.get("logprobs") == 0, i) for t, p, i in zip(texts, params, ids, strict=True)]

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM  # type: ignore[attr-defined]
    vllm.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    return seen


@pytest.mark.parametrize(
    ("kw", "url"),
    [
        ({}, "http://0.0.0.0:8000"),
        ({"vllm_server_host": "10.0.0.2", "vllm_server_port": 8001}, "http://10.0.0.2:8001"),
        ({"vllm_server_base_url": "http://gpu7:9000/"}, "http://gpu7:9000"),
        ({"vllm_server_base_url": "http://gpu7:9000/v1"}, "http://gpu7:9000"),
    ],
)
def test_server_url(kw: dict[str, Any], url: str) -> None:
    assert server_url(GRPOTrainConfig(**kw)) == url


class CountingPolicy:
    """Records the size of every ``generate`` call; answers by seed."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, requests: list[Request]) -> list[Reply]:
        self.calls.append(len(requests))
        return [Reply(_letter(r.sampling.seed)) for r in requests]


def test_batched_merges_concurrent_callers_into_one_engine_call(harness_instance: Harness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from harness.data import load_samples
    from harness.loop.policy import Sampling

    inner = CountingPolicy()
    batched = generation.Batched(inner, max_batch=4, window=5.0)  # returns as soon as 4 are queued
    sample = load_samples(harness_instance.task("vstar"), "synthetic", 1)[0]
    barrier = threading.Barrier(2)

    def call(seeds: tuple[int, int]) -> list[str]:
        barrier.wait()
        reqs = [Request([], Sampling(seed=s), sample, 0, s) for s in seeds]
        return [r.text for r in batched.generate(reqs)]

    with ThreadPoolExecutor(2) as pool:
        texts = list(pool.map(call, [(0, 1), (2, 3)]))
    assert inner.calls == [4]
    assert texts == [[_letter(0), _letter(1)], [_letter(2), _letter(3)]]  # each caller its own replies


def test_concurrent_generations_give_the_sequential_rollouts(harness_instance: Harness) -> None:
    from harness.data import load_samples
    from harness.loop.limits import Limits
    from harness.loop.rollout import RolloutConfig
    from harness_plugins.curiosity_grpo import Recorder, collect

    spec = harness_instance.task("vstar")
    samples = load_samples(spec, "synthetic", 3)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS), batch_size=3, seed=11)
    tools = harness_instance.tools
    one_by_one = collect(spec, samples, Recorder(CountingPolicy()), tools, config, 6)
    inner = CountingPolicy()
    together = collect(spec, samples, Recorder(generation.Batched(inner, 18)), tools, config, 6)
    assert [(r.group, r.trajectory, r.messages) for r in together] == [
        (r.group, r.trajectory, r.messages) for r in one_by_one
    ]
    assert sum(inner.calls) == 18 and len({r.trajectory.turns[-1].reply for r in together}) > 1


@needs_train
def test_unreachable_server_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    import trl.generation.vllm_client as trl_client

    def refuse(**kw: Any) -> None:  # what VLLMClient raises when check_server times out
        raise requests.ConnectionError(
            f"The vLLM server can't be reached at {kw['base_url']} after 1 seconds."
        )

    monkeypatch.setattr(trl_client, "VLLMClient", refuse)
    with pytest.raises(
        ValueError, match=r"^curiosity_grpo vllm_mode=server: .*http://gpu7:9 after 1"
    ) as info:
        generation.vllm_client("http://gpu7:9", 51216, 1.0)
    assert "\n" not in str(info.value)


@needs_train
def test_shipped_config_is_the_dataclass_defaults(harness_instance: Harness) -> None:
    from harness.trainer import load_config

    path = Path(__file__).resolve().parents[2] / "plugins" / "configs" / "curiosity_grpo.yaml"
    assert load_config(harness_instance.trainer("curiosity_grpo"), path) == GRPOTrainConfig()


def test_hf_generation_is_the_trained_model_and_never_syncs() -> None:
    class Model:
        def named_parameters(self) -> Iterator[tuple[str, Any]]:
            raise AssertionError("the hf generator must not read the weights")

    engine = generation.generator(GRPOTrainConfig(), policy := object(), "cpu", 0)  # type: ignore[arg-type]
    assert engine.policy is policy and engine.push is None
    engine.sync(Model())


def test_colocate_refuses_tensor_parallel(tmp_path: Path) -> None:
    config = GRPOTrainConfig(use_vllm=True, vllm_model_args="tensor_parallel_size=2")
    with pytest.raises(ValueError, match="tensor_parallel_size must be 1.*vllm_mode=server"):
        generation.colocate(config, 0)


@pytest.mark.parametrize("value", ["colocated", "remote"])
def test_bad_vllm_mode_is_a_one_line_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["train", "--plugin", "curiosity_grpo", "--set", "use_vllm=true", "--set", f"vllm_mode={value}"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "vllm_mode" in err and "colocate" in err and "\n" not in err


@needs_train
@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_without_vllm_the_install_hint(
    mode: str, tiny_model: Path, tmp_path: Path, colocate_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--plugin", "curiosity_grpo", "--set", f"model={tiny_model}", "--set", "use_vllm=true"]
    argv += ["--set", f"vllm_mode={mode}", "--set", f"output_dir={tmp_path}", "--set", "device=cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()  # fails before any model is loaded
    assert "\n" not in err and ("pixel-harness[vllm]" in err if mode == "colocate" else "trl[vllm]" in err)


@needs_train
def test_colocate_rollouts_come_from_vllm_holding_the_current_weights(
    tiny_model: Path,
    tmp_path: Path,
    fake_vllm: dict[str, Any],
    snapshots: list[dict[str, Any]],
    harness_instance: Harness,
) -> None:
    config = _config(tiny_model, tmp_path / "ckpt", vllm_gpu_memory_utilization=0.25)
    out = grpo.train(config, harness_instance)
    (engine,) = fake_vllm["engines"]
    # started as eval's vllm backend starts it, plus TRL's colocate settings
    expected = engine_kwargs(str(tiny_model), VLLMOptions(gpu_memory_utilization=0.25), config.seed)
    assert engine.kwargs == {**expected, "distributed_executor_backend": "external_launcher"}
    # every rollout turn went through the engine (2 steps x 2 prompts x 8 generations, one turn each)
    assert len(fake_vllm["prompts"]) == 32
    assert all(p["prompt"].startswith("<|im_start|>system") for p in fake_vllm["prompts"])
    # one sync before each step: all weights first, then the trainable ones (vision tower frozen)
    syncs = engine.weights.syncs
    assert len(syncs) == 2 and not engine.weights.pending
    all_names = [n for n, _ in engine.weights.model.named_parameters()]
    assert syncs[0] == all_names
    assert syncs[1] and not any("visual" in n for n in syncs[1])
    # the engine holds the weights after step 0 (the policy of step 1's rollouts), which moved
    assert len(snapshots) == 2
    assert _same(engine.weights.weights(), snapshots[0])
    assert not _same(snapshots[0], snapshots[1])
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 2 and all('"generation": "vllm:colocate"' in line for line in log)
    # the importance-sampling correction is on: every request asked for the sampled tokens'
    # log-probabilities, and they lined up with the trainer's tokens
    assert all(p["logprobs"] == 0 for p in fake_vllm["params"])
    for entry in map(json.loads, log):
        assert entry["is_turns_misaligned"] == 0
        assert entry["is_tokens"] > 0 or entry["rollouts_trained"] == 0


@needs_train
def test_colocate_passes_engine_args_through(
    tiny_model: Path, tmp_path: Path, fake_vllm: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import dataclass

    @dataclass
    class EngineArgs:  # a subset of vllm.engine.arg_utils.EngineArgs
        enable_prefix_caching: bool | None = None
        max_num_seqs: int | None = None

    for name in ("vllm.engine", "vllm.engine.arg_utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["vllm.engine.arg_utils"].EngineArgs = EngineArgs  # type: ignore[attr-defined]
    config = _config(
        tiny_model, tmp_path, vllm_model_args="max_num_seqs=32,enable_prefix_caching=true,max_images=8"
    )
    engine = generation.colocate(config, 0)
    kwargs = fake_vllm["engines"][0].kwargs
    assert kwargs["max_num_seqs"] == 32 and kwargs["enable_prefix_caching"] is True
    assert kwargs["limit_mm_per_prompt"]["image"] == 8 and kwargs["gpu_memory_utilization"] == 0.3
    assert isinstance(engine, Generator)
    with pytest.raises(ValueError, match="unknown --model_args max_num_seq"):
        generation.colocate(_config(tiny_model, tmp_path, vllm_model_args="max_num_seq=32"), 0)


class SeedPolicy:
    """What the vLLM server answers in the server test: a letter chosen by the request seed."""

    name = "stand-in"

    def __init__(self) -> None:
        self.requests = 0

    def generate(self, requests: list[Request]) -> list[Reply]:
        self.requests += len(requests)
        return [Reply(_letter(r.sampling.seed)) for r in requests]


class FakeClient:
    """TRL's VLLMClient as the trainer uses it; pushed weights land in the server's copy."""

    def __init__(self, base_url: str, weights: EngineModel) -> None:
        self.base_url, self.weights, self.model = base_url, weights, "served-tiny"
        self.device: Any = None
        self.closed = 0

    def init_communicator(self, device: Any) -> None:
        self.device = device

    def update_named_params(self, metadata: list[tuple[str, str, list[int]]], named: Iterator[Any]) -> None:
        pairs = list(named)
        assert [(n, str(t.dtype).removeprefix("torch."), list(t.shape)) for n, t in pairs] == metadata
        self.weights.load_weights(pairs)

    def reset_prefix_cache(self) -> None:
        self.weights.reset_prefix_cache()

    def close_communicator(self) -> None:
        self.closed += 1


@needs_train
@pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai extra")
def test_server_rollouts_over_http_and_weights_through_the_client(
    tiny_model: Path,
    tmp_path: Path,
    snapshots: list[dict[str, Any]],
    harness_instance: Harness,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.interop.server import make_server

    served = SeedPolicy()
    http = make_server(served, 0, "served-tiny")  # type: ignore[arg-type]
    threading.Thread(target=http.serve_forever, daemon=True).start()
    clients: list[FakeClient] = []

    def client(base_url: str, group_port: int, timeout: float) -> FakeClient:
        assert (group_port, timeout) == (51217, 30.0)
        clients.append(FakeClient(base_url, EngineModel(str(tiny_model))))
        return clients[-1]

    monkeypatch.setattr(generation, "vllm_client", client)
    import trl.trainer.utils  # noqa: F401 (TRL probes for vLLM once, at import: let it find none)

    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))  # "installed" for the preflight
    url = f"http://127.0.0.1:{http.server_address[1]}/v1"
    config = _config(
        tiny_model,
        tmp_path / "ckpt",
        vllm_mode="server",
        vllm_server_base_url=url,
        vllm_group_port=51217,
        vllm_server_timeout=30.0,
    )
    try:
        out = grpo.train(config, harness_instance)
    finally:
        http.shutdown()
        http.server_close()
    (c,) = clients
    assert c.base_url == url.removesuffix("/v1") and str(c.device) == "cpu" and c.closed == 1
    assert served.requests == 32  # every rollout turn over HTTP
    syncs = c.weights.syncs
    assert len(syncs) == 2 and syncs[1] and not any("visual" in n for n in syncs[1])
    assert _same(c.weights.weights(), snapshots[0]) and not _same(snapshots[0], snapshots[1])
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 2 and all('"generation": "vllm:server"' in line for line in log)
    assert all(json.loads(line)["is_tokens"] == 0 for line in log)  # no token log-probabilities over HTTP


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (CI's second environment, .venv-vllm)")
@pytest.mark.parametrize("flat", [False, True])
def test_real_vllm_outputs_give_the_sampled_logprobs(flat: bool) -> None:
    """vLLM's own ``SamplingParams`` takes ``logprobs=0``, and its ``CompletionOutput`` (either
    logprobs container) becomes ``Reply.logprobs``: the importance-sampling correction's input."""
    from vllm import SamplingParams
    from vllm.logprobs import FlatLogprobs, Logprob
    from vllm.outputs import CompletionOutput

    from harness.backends.vllm_engine import sampled_logprobs, sampling_kwargs
    from harness.loop.policy import Sampling

    params = SamplingParams(**sampling_kwargs(Sampling(temperature=1.0), VLLMOptions(logprobs=True)))
    assert params.logprobs == 0
    positions: Any = FlatLogprobs() if flat else []
    for token, lp in ((11, -0.5), (12, -1.25), (151645, -0.0625)):
        positions.append({token: Logprob(lp, rank=1)})
    completion = CompletionOutput(0, "ab", [11, 12, 151645], -1.8125, positions, finish_reason="stop")
    assert sampled_logprobs(completion) == ((11, -0.5), (12, -1.25), (151645, -0.0625))
