"""EvalConfig is passed typed through a run; its stored form (run_config.json, results.json's
``config``) keeps the keys and values run folders have always had."""

from __future__ import annotations

import json
from pathlib import Path

from harness.loop.limits import Limits
from harness.plugins import Harness
from harness.run.evaluate import EvalConfig, build_result, evaluate
from harness.run.results import RESULTS, RUN_CONFIG

STORED_KEYS = [
    "tasks",
    "model",
    "model_args",
    "data",
    "limit",
    "seed",
    "mode",
    "limits",
    "temperature",
    "top_p",
    "batch_size",
    "workers",
    "scoring",
    "protocol",
    "output_path",
    "log_crops",
    "resume",
    "shard",
]


def test_stored_config_keeps_its_keys_and_values() -> None:
    config = EvalConfig(tasks="vstar", model="scripted:oracle", data="synthetic:2", seed=5, limits=Limits())
    stored = config.to_dict()
    assert list(stored) == STORED_KEYS
    assert stored["data"] == "synthetic:2" and stored["limits"] == json.loads(json.dumps(stored["limits"]))
    assert json.loads(json.dumps(stored)) == stored  # plain JSON values only


def test_build_result_reads_the_typed_config_as_it_reads_a_stored_one(harness_instance: Harness) -> None:
    config = EvalConfig(tasks="vstar", model="scripted:oracle", seed=3, scoring="official")
    specs = harness_instance.resolve_tasks("vstar")
    typed = build_result(config, specs, [], {"vstar": 0}, 0.0, packages={})
    stored = build_result(config.to_dict(), specs, [], {"vstar": 0}, 0.0, packages={})
    for field in ("config", "seed", "model", "fingerprint", "versions", "n_samples"):
        assert getattr(typed, field) == getattr(stored, field), field
    assert (typed.seed, typed.model, typed.config) == (3, "scripted:oracle", config.to_dict())


def test_a_run_folder_stores_the_config_it_resumes_with(harness_instance: Harness, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = EvalConfig(
        tasks="vstar", model="scripted:oracle", data="synthetic:1", limit=2, output_path=str(out)
    )
    evaluate(config, harness_instance, show_progress=False)
    assert json.loads((out / RUN_CONFIG).read_text())["data"] == "synthetic:1"
    assert json.loads((out / RESULTS).read_text())["config"] == config.to_dict()
    resumed = EvalConfig(
        tasks="vstar", model="scripted:oracle", data="synthetic:1", limit=2, output_path=str(out), resume=True
    )
    assert evaluate(resumed, harness_instance, show_progress=False).n_samples == {"vstar": 2}
