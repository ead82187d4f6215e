"""``rescore``: every score recomputed from samples.jsonl, new files beside the old, warnings."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness import hookimpl
from harness.plugins import Harness, UnknownNameError, make_plugin_manager
from harness.records import RunResult, Sample, Trajectory
from harness.run.results import read_samples
from harness.task import Scored, TaskSpec
from harness_leaderboards.build import build_report
from harness_leaderboards.load import ReportError, ReportWarning
from harness_leaderboards.rescore import rescore


def always_right(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    return Scored(1.0, sample.answer)


def vstar_only(spec: TaskSpec, sample: Sample, trajectory: Trajectory) -> Scored:
    if spec.name != "vstar":
        raise ValueError(f"vstar_only does not apply to {spec.name}")
    return spec.score(trajectory.final_reply, sample)


class _Modes:
    @hookimpl
    def harness_register_scoring_modes(self) -> dict[str, object]:
        return {"always_right": always_right, "vstar_only": vstar_only}


@pytest.fixture
def harness() -> Harness:
    return Harness(make_plugin_manager(autoload=False, extra=[_Modes()]))


@pytest.fixture
def run(scripted_runs: dict[str, Path], tmp_path: Path) -> Path:
    out = tmp_path / "random"
    shutil.copytree(scripted_runs["random"], out)
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {
        n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("results.json", "samples.jsonl")
    }


@pytest.mark.filterwarnings("error::harness_leaderboards.load.ReportWarning")
@pytest.mark.parametrize(("mode", "expect_all_right"), [("official", False), ("always_right", True)])
def test_rescore_writes_new_files_beside_the_originals(
    run: Path, harness: Harness, mode: str, expect_all_right: bool
) -> None:
    before = _digest(run)
    old = RunResult.from_dict(json.loads((run / "results.json").read_text()))
    done = rescore(run, mode, harness)
    assert _digest(run) == before  # originals untouched
    assert done.results_path == run / f"results.{mode}.json"
    assert done.samples_path == run / f"samples.{mode}.jsonl"
    new = RunResult.from_dict(json.loads(done.results_path.read_text()))
    assert new.config["scoring"] == mode and new.config["rescored"]["mode"] == mode
    assert new.model == old.model and new.seed == old.seed
    records = read_samples(done.samples_path)
    assert len(records) == 12 and {r.score.scoring for r in records} == {mode}
    for task, tr in new.results.items():
        assert tr.n == old.results[task].n
        assert tr.scorer["scoring"] == mode
        if expect_all_right:
            assert tr.value == 1.0
        else:
            assert tr.value == old.results[task].value
    assert (done.changed > 0) == expect_all_right


@pytest.mark.filterwarnings("error::harness_leaderboards.load.ReportWarning")
def test_rescored_results_feed_the_leaderboard(run: Path, harness: Harness) -> None:
    done = rescore(run, "always_right", harness)
    report = build_report([str(run), str(done.results_path)], harness=harness)
    labels = [r[0] for r in report.section("headline").rows]
    assert labels == ["scripted:random", "scripted:random [scoring=always_right]"]


def test_a_mode_that_does_not_apply_leaves_the_task_out(run: Path, harness: Harness) -> None:
    with pytest.warns(ReportWarning) as record:
        done = rescore(run, "vstar_only", harness)
    assert set(done.result.results) == {"vstar"}
    messages = " ".join(str(w.message) for w in record)
    for task in ("infovqa", "mvbench", "tallyqa"):
        assert f"does not apply to task {task!r}" in messages


def test_version_mismatch_is_warned(run: Path, harness: Harness) -> None:
    data = json.loads((run / "results.json").read_text())
    data["versions"]["vstar"] = 99
    (run / "results.json").write_text(json.dumps(data))
    with pytest.warns(
        ReportWarning, match=r"task vstar: the run was made with v99, the installed task is v\d+"
    ):
        done = rescore(run, "official", harness)
    assert done.result.config["rescored"]["run_versions"]["vstar"] == 99


def test_rescore_without_results_json_uses_samples_alone(run: Path, harness: Harness) -> None:
    (run / "results.json").unlink()
    with pytest.warns(ReportWarning, match="results.json: missing"):
        done = rescore(run, "official", harness)
    assert done.result.model == "scripted:random"  # from run_config.json
    assert sum(done.result.n_samples.values()) == 12


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (lambda run: (run / "samples.jsonl").unlink(), ReportError, "no such file"),
        (lambda run: (run / "samples.jsonl").write_text(""), ReportError, "no sample records"),
    ],
)
def test_rescore_user_errors(run: Path, harness: Harness, setup, error, match) -> None:  # type: ignore[no-untyped-def]
    setup(run)
    with pytest.raises(error, match=match):
        rescore(run, "official", harness)


@pytest.mark.parametrize(("mode", "error"), [("nope", UnknownNameError), ("../x", ReportError)])
def test_bad_mode_names(run: Path, harness: Harness, mode: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        rescore(run, mode, harness)
