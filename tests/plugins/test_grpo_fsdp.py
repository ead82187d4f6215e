"""curiosity_grpo with FSDP (FSDP2, sharded weights) under ``accelerate launch`` on the CPU: 2 gloo
processes with vLLM colocate generation (a stand-in ``vllm`` module, as in test_grpo_vllm.py,
installed in the launched processes by a plugin on ``PYTHONPATH``). accelerate 1.15 sets up FSDP
only on accelerator devices (on CPU processes an FSDP config becomes plain MULTI_CPU), so the same
plugin makes the CPU state FSDP after ``Accelerator()``; the rest (``accelerator.prepare``'s
FSDP2 ``fully_shard``, gradient clipping, ``get_state_dict``, ``save_state``) is accelerate's own. The run completes, every
process's engine receives the full weights, and the train log and the trained parameters equal
the single-process run's with the same rollouts (which test_grpo_distributed.py shows equal to
the data-parallel run's); with hf generation (on a full-weight copy per process) too."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from train_support import SMALL_LIMITS, free_port, needs_train, train_log

pytestmark = [needs_train, pytest.mark.slow]

FAKE_VLLM = '''
"""Stand-ins for launched processes: FSDP on CPU processes, and a ``vllm`` module: ``LLM`` holds its own copy of the model,
loads pushed weights by name, answers with a letter chosen by the request seed, and writes the
sum of each of its weights to $FAKE_VLLM_DIR at every prefix-cache reset (end of a sync)."""
import json
import os
import sys
import types

import trl.trainer.utils  # noqa: F401 (TRL probes for vLLM at import: let it find none)

LETTERS = "ABCD"


class LLM:
    def __init__(self, **kwargs):
        from transformers import AutoModelForImageTextToText, AutoTokenizer

        self.model = AutoModelForImageTextToText.from_pretrained(kwargs["model"], dtype="float32")
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["model"])
        self.syncs = 0
        runner = types.SimpleNamespace(model=self)
        worker = types.SimpleNamespace(model_runner=runner)
        self.llm_engine = types.SimpleNamespace(model_executor=types.SimpleNamespace(driver_worker=worker))

    def load_weights(self, weights):
        params = dict(self.model.named_parameters())
        for name, tensor in weights:
            params[name].data.copy_(tensor)  # a shard would fail here: wrong shape

    def reset_prefix_cache(self):
        self.syncs += 1
        sums = {k: float(v.double().sum()) for k, v in self.model.named_parameters()}
        path = os.path.join(os.environ["FAKE_VLLM_DIR"], f"rank{os.environ.get('RANK', '0')}-{self.syncs}.json")
        with open(path, "w") as f:
            json.dump(sums, f)

    def generate(self, prompts, params, use_tqdm=False):
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        out = []
        for p in params:
            text = "The answer is \\\\boxed{%s}." % LETTERS[(p["seed"] or 0) % 4]
            ids = [*self.tokenizer.encode(text, add_special_tokens=False), end]
            lp = types.SimpleNamespace(logprob=-0.5)
            logprobs = [{t: lp} for t in ids] if p.get("logprobs") == 0 else None
            done = types.SimpleNamespace(text=text, token_ids=ids, finish_reason="stop", logprobs=logprobs)
            out.append(types.SimpleNamespace(outputs=[done], prompt_token_ids=[0] * 10))
        return out


def _fsdp_on_cpu():
    """accelerate 1.15 runs an FSDP config on CPU processes as plain MULTI_CPU (FSDP is only set
    up for accelerator devices); turn such a state into FSDP (FSDP2 over gloo works on the CPU)."""
    from accelerate import Accelerator
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    real = Accelerator.__init__

    def init(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if os.environ.get("ACCELERATE_USE_FSDP") == "true" and self.state.distributed_type == DistributedType.MULTI_CPU:
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            self.state.distributed_type = DistributedType.FSDP
            self.state.fsdp_plugin = FullyShardedDataParallelPlugin()

    Accelerator.__init__ = init


_fsdp_on_cpu()
vllm = types.ModuleType("vllm")
vllm.LLM = LLM
vllm.SamplingParams = lambda **kw: kw
sys.modules["vllm"] = vllm
'''

FSDP_CPU = """
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: {wrap}
  fsdp_reshard_after_forward: true
  fsdp_offload_params: false
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
  fsdp_activation_checkpointing: false
mixed_precision: 'no'
num_machines: 1
num_processes: 2
machine_rank: 0
rdzv_backend: static
same_network: true
main_training_function: main
use_cpu: true
debug: false
"""


def _site(root: Path) -> Path:
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "fake_vllm_plugin.py").write_text(textwrap.dedent(FAKE_VLLM))
    info = site / "fake_vllm_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-vllm-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness]\nfake_vllm = fake_vllm_plugin\n")
    (info / "RECORD").write_text("")
    return site


def _env(site: Path, engine_dir: Path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("HARNESS_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    engine_dir.mkdir(parents=True, exist_ok=True)
    env["FAKE_VLLM_DIR"] = str(engine_dir)
    return env


def _args(tiny_model: Path, out: Path, *extra: str) -> list[str]:
    sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "learning_rate=1e-2"]
    sets += ["n_samples=4", "prompts_per_step=2", "num_generations=4", "max_steps=2", "save_every=1"]
    sets += ["progress=false", "device=cpu", "report_to=none", "use_vllm=true", "seed=1", *extra]
    sets += ["max_grad_norm=0.005"]  # below the gradient norms: the clipping scales
    sets += ["update_batch_size=4"]  # 2 updates per collection: uneven splits, collection-time log-probs
    return ["-m", "harness", "train", "--plugin", "curiosity_grpo", *[x for s in sets for x in ("--set", s)]]


def _launch(
    config: Path, args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    launch = ["--config_file", str(config), "--main_process_port", str(free_port())]
    command = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", *launch, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def _run_one(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same training in one process (the reference)."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=400, cwd=cwd, env=env
    )


def _same_rollouts(log: list[dict[str, Any]]) -> list[list[Any]]:
    """What must be equal between runs that drew the same rollouts."""
    keys = ["step", "rollouts", "reward", "accuracy", "groups", "groups_dropped", "rollouts_trained", "lr"]
    return [[entry[k] for k in keys] for entry in log]


def _config(tmp_path: Path, wrap: str = "Qwen2_5_VLDecoderLayer") -> Path:
    path = tmp_path / "fsdp_cpu.yaml"
    path.write_text(FSDP_CPU.format(wrap=wrap))
    return path


@pytest.fixture
def need_accelerate() -> None:
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("needs accelerate")


def test_fsdp_with_vllm_colocate_equals_one_process(
    tmp_path: Path, tiny_model: Path, need_accelerate: None
) -> None:
    import torch
    from safetensors.torch import load_file

    site = _site(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    env_one, env_two = _env(site, tmp_path / "engine-one"), _env(site, tmp_path / "engine-two")
    proc = _run_one(_args(tiny_model, one), env_one, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _launch(_config(tmp_path), _args(tiny_model, two), env_two, tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert json.loads((two / "harness_train.json").read_text())["num_processes"] == 2
    assert (two / "checkpoints" / "step-1").is_dir()

    a, b = train_log(one), train_log(two)
    assert _same_rollouts(a) == _same_rollouts(b)
    assert all(e["generation"] == "vllm:colocate" for e in b)
    assert any(e["loss"] != 0.0 for e in a)
    for x, y in zip(a, b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-4, abs=1e-7)
        for u, v in zip(x["updates"], y["updates"], strict=True):
            assert u.get("grad_norm", 0.0) == pytest.approx(v.get("grad_norm", 0.0), rel=1e-4, abs=1e-7)

    # every process's engine got the full weights of the same policy as the one-process engine
    def sums(path: Path) -> dict[str, float]:
        values: dict[str, float] = json.loads(path.read_text())
        return values

    for n in (1, 2):  # the sync before step 0's and before step 1's rollouts
        ref = sums(tmp_path / "engine-one" / f"rank0-{n}.json")
        for rank in (0, 1):
            got = sums(tmp_path / "engine-two" / f"rank{rank}-{n}.json")
            assert got.keys() == ref.keys()
            assert all(got[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-5) for k in ref)
    start, moved = (
        sums(tmp_path / "engine-one" / "rank0-1.json"),
        sums(tmp_path / "engine-one" / "rank0-2.json"),
    )
    assert start != moved  # the second sync carried trained weights

    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-5
    assert any(not torch.equal(wa[k], load_file(str(tiny_model / "model.safetensors"))[k]) for k in wa)
    # the checkpoint after step 0 holds the full (gathered) state dict, written by accelerate's
    # save_state: the weights the engines got before step 1
    full = torch.load(str(two / "checkpoints" / "step-1" / "pytorch_model_fsdp.bin"), weights_only=True)
    synced = sums(tmp_path / "engine-two" / "rank0-2.json")  # named_parameters' names
    assert full.keys() == synced.keys()
    assert sum(v.numel() for v in full.values()) == sum(v.numel() for v in wb.values())  # not shards
    assert all(float(full[k].double().sum()) == pytest.approx(synced[k], rel=1e-6, abs=1e-6) for k in full)
    # and the same gathered weights as model.safetensors beside config.json, so that `harness eval
    # --model hf:CHECKPOINT` loads the folder (save_pretrained's names, as the final folder's)
    saved = load_file(str(two / "checkpoints" / "step-1" / "model.safetensors"))
    assert saved.keys() == wb.keys() and (two / "checkpoints" / "step-1" / "config.json").is_file()
    assert sorted(float(v.double().sum()) for v in saved.values()) == pytest.approx(
        sorted(synced.values()), rel=1e-6, abs=1e-6
    )

    # --resume from the FSDP checkpoint after step 1 (as if killed during step 2): the same train
    # log and final weights as the uninterrupted 2-process run
    three = tmp_path / "three"
    shutil.copytree(two / "checkpoints" / "step-1", three / "checkpoints" / "step-1")
    env_three = _env(site, tmp_path / "engine-three")
    proc = _launch(_config(tmp_path), [*_args(tiny_model, three), "--resume"], env_three, tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "resuming from" in proc.stderr and "at step 1" in proc.stderr
    c = train_log(three)
    assert _same_rollouts(c) == _same_rollouts(b)
    assert [e["loss"] for e in c] == pytest.approx([e["loss"] for e in b], rel=1e-6, abs=1e-9)
    wc = load_file(str(three / "model.safetensors"))
    assert max(float((wc[k] - wb[k]).abs().max()) for k in wb) < 1e-6


def test_fsdp_with_hf_generation_equals_one_process(
    tmp_path: Path, tiny_model: Path, need_accelerate: None
) -> None:
    """hf generation under FSDP runs on a full-weight copy per process (the sharded module would
    deadlock on different decode lengths): the same rollouts, log and weights as one process."""
    from safetensors.torch import load_file

    site = _site(tmp_path)
    env = _env(site, tmp_path / "engine")
    hf = [a.replace("use_vllm=true", "use_vllm=false") for a in _args(tiny_model, tmp_path / "one")]
    proc = _run_one(hf, env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf = [a.replace("use_vllm=true", "use_vllm=false") for a in _args(tiny_model, tmp_path / "two")]
    proc = _launch(_config(tmp_path), hf, env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert json.loads((tmp_path / "two" / "harness_train.json").read_text())["num_processes"] == 2

    a, b = train_log(tmp_path / "one"), train_log(tmp_path / "two")
    assert _same_rollouts(a) == _same_rollouts(b)
    assert all(e["generation"] == "hf" for e in b) and any(e["loss"] != 0.0 for e in a)
    assert [e["loss"] for e in b] == pytest.approx([e["loss"] for e in a], rel=1e-4, abs=1e-7)
    wa = load_file(str(tmp_path / "one" / "model.safetensors"))
    wb = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-5


def test_fsdp_wrapping_vision_blocks_is_refused_in_one_line(
    tmp_path: Path, tiny_model: Path, need_accelerate: None
) -> None:
    site = _site(tmp_path)
    wrap = "Qwen2_5_VLDecoderLayer,Qwen2_5_VLVisionBlock"
    proc = _launch(
        _config(tmp_path, wrap),
        _args(tiny_model, tmp_path / "out"),
        _env(site, tmp_path / "engine"),
        tmp_path,
    )
    assert proc.returncode != 0
    message = "FSDP must not wrap vision blocks"
    assert f"harness train: error: curiosity_grpo: {message}" in proc.stderr  # then the launcher's traceback
    assert "curiosity_grpo.py" not in proc.stderr  # no traceback from the trainer
