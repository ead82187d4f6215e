"""lm-eval interop: our metrics in its registries, its statistics in our results, results.json in its
shape, and the exported task folder scored by ``lm_eval.simple_evaluate`` exactly as
``harness eval --prompt notool`` scores the same samples (offline)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.interop.lm_eval_bridge import TASK_PREFIX, HarnessLM, register
from harness.records import RunResult
from harness.scoring import rmse
from harness.scoring.aggregate import bootstrap_stderr

TASKS = ("vstar", "tallyqa", "infovqa")
METRIC = {"vstar": "accuracy", "tallyqa": "accuracy", "infovqa": "anls"}


def test_metrics_and_aggregations_are_registered_once() -> None:
    from lm_eval.api import registry

    register()
    register()  # idempotent
    for metric, better in (("accuracy", True), ("anls", True), ("rmse", False)):
        assert metric in registry.metric_registry and registry.is_higher_better(metric) is better
    assert registry.get_metric_aggregation("accuracy") is registry.get_aggregation("mean")
    assert registry.get_metric_aggregation("rmse") is registry.get_aggregation("harness_rmse")


def test_bootstrap_is_lm_evals(monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_eval.api.metrics import bootstrap_stderr as lm_bootstrap

    rng = random.Random(0)
    pairs = [(rng.randint(0, 9), rng.randint(0, 9)) for _ in range(40)]

    def statistic(items: Any) -> float:
        return rmse([p for p, _ in items], [g for _, g in items])

    monkeypatch.setenv("DISABLE_MULTIPROC", "1")  # lm-eval's in-process path, same draws as its pool
    ours = bootstrap_stderr(statistic, pairs, iters=2000)
    assert ours == pytest.approx(lm_bootstrap(statistic, pairs, iters=2000), rel=1e-12)
    assert ours == bootstrap_stderr(statistic, pairs, iters=2000) > 0  # deterministic
    assert math.isnan(bootstrap_stderr(statistic, pairs[:1]))


@pytest.fixture(scope="module")
def notool_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    argv = ["eval", "--tasks", ",".join(TASKS), "--model", "scripted:random", "--prompt", "notool"]
    assert cli.main([*argv, "--limit", "5", "--seed", "3", "--output_path", str(run), "--no_progress"]) == 0
    return run


def test_results_json_has_lm_eval_keys_and_still_reads_back(notool_run: Path) -> None:
    data = json.loads((notool_run / "results.json").read_text())
    for key in ("results", "configs", "versions", "n-samples", "config", "higher_is_better"):
        assert key in data, key
    vstar = data["results"]["vstar"]
    assert vstar["alias"] == "vstar" and vstar["accuracy,none"] == vstar["value"]
    assert vstar["accuracy_stderr,none"] == vstar["stderr"]
    tally = data["results"]["tallyqa"]
    assert tally["rmse,none"] == tally["metrics"]["rmse"]["value"] and tally["rmse_stderr,none"] > 0
    assert data["higher_is_better"]["tallyqa"] == {"accuracy": True, "rmse": False}
    assert data["n-samples"]["infovqa"] == {"original": 5, "effective": 5}
    assert data["versions"] == {t: data["results"][t]["version"] for t in TASKS}
    result = RunResult.from_dict(data)
    assert RunResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    # a results.json written before these keys existed reads the same
    old = {k: v for k, v in data.items() if k not in ("configs", "n-samples", "higher_is_better")}
    old["results"] = {
        t: {
            k: v
            for k, v in r.items()
            if "," not in k and k not in ("alias", "name", "sample_len", "metrics", "higher_is_better")
        }
        for t, r in data["results"].items()
    }
    assert RunResult.from_dict(old).results["vstar"].value == result.results["vstar"].value


def test_lm_eval_scores_equal_harness_eval_notool(notool_run: Path, tmp_path: Path) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    folder = tmp_path / "lm_eval_tasks"
    assert cli.main(["export-lm-eval", str(folder), "--tasks", ",".join(TASKS), "--limit", "5"]) == 0
    names = [TASK_PREFIX + t for t in TASKS]
    out = simple_evaluate(
        model=HarnessLM(model="scripted:random", seed=3),
        tasks=names,
        task_manager=TaskManager(include_path=str(folder), include_defaults=False),
        bootstrap_iters=1000,
    )
    assert out is not None
    ours = {
        json.loads(line)["key"]: json.loads(line)
        for line in (notool_run / "samples.jsonl").read_text().splitlines()
    }
    results = json.loads((notool_run / "results.json").read_text())["results"]
    scores = []
    for task in TASKS:
        metric = METRIC[task]
        logged = out["samples"][TASK_PREFIX + task]
        assert len(logged) == 5
        for row in logged:
            mine = ours[row["doc"]["key"]]
            assert row[metric] == mine["score"]["score"]
            assert row["resps"][0][0] == mine["trajectory"]["turns"][0]["reply"]
            assert row["arguments"][0][0] == mine["trajectory"]["prompt"]  # the same notool text
            scores.append(row[metric])
        theirs = out["results"][TASK_PREFIX + task]
        assert theirs[f"{metric},none"] == pytest.approx(results[task][f"{metric},none"], abs=1e-12)
        assert theirs[f"{metric}_stderr,none"] == pytest.approx(
            results[task][f"{metric}_stderr,none"], abs=1e-12
        )
    assert out["results"][TASK_PREFIX + "tallyqa"]["rmse,none"] == pytest.approx(
        results["tallyqa"]["rmse,none"]
    )
    assert 0 in scores and 1 in scores  # a chance policy: the comparison is not all-equal by luck


def test_export_refuses_video_and_all_skips_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export-lm-eval", str(tmp_path / "a"), "--tasks", "mvbench", "--limit", "1"]) == 2
    assert "lm-eval has no video input" in capsys.readouterr().err
    assert cli.main(["export-lm-eval", str(tmp_path / "b"), "--tasks", "all", "--limit", "1"]) == 0
    assert "skipped video task(s) mvbench" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "b").glob("*.yaml")) == [
        f"{TASK_PREFIX}{t}.yaml" for t in sorted(TASKS)
    ]


def test_harness_lm_only_generates() -> None:
    lm = HarnessLM(model="scripted:oracle")
    with pytest.raises(NotImplementedError, match="generate"):
        lm.loglikelihood([])
    with pytest.raises(ValueError, match="needs a policy or a model"):
        HarnessLM()


@pytest.mark.parametrize("size", [(3840, 2160), (640, 480), (300, 5000)])
def test_lm_eval_images_are_the_pixels_an_episode_shows(tmp_path: Path, size: tuple[int, int]) -> None:
    """The single-turn lm-eval path shows each input exactly as Episode does (two resizes: the
    tools' source copy, then the engine's bounds), for exported docs with and without the
    source bounds (folders exported before they existed)."""
    from PIL import Image

    from harness.interop.lm_eval_bridge import _budget, doc_to_image
    from harness.loop.episode import Episode
    from harness.loop.limits import Limits
    from harness.records import Sample

    Image.new("RGB", size, (90, 120, 150)).save(tmp_path / "a.png")
    sample = Sample(task="vstar", id="1", question="Q?", answer="A", media=("a.png",), root=str(tmp_path))
    limits = Limits()
    episode = Episode(sample, [Image.open(tmp_path / "a.png")], mode="notool", question="Q?", tools=())
    doc = {"key": sample.key, "sample": json.dumps(sample.to_dict()), **_budget(limits)}
    assert [im.size for im in doc_to_image(doc)] == [im.size for im in episode.images]
    old = {k: v for k, v in doc.items() if not k.startswith("source_")}
    assert [im.size for im in doc_to_image(old)] == [im.size for im in episode.images]
