"""Training operations of curiosity_grpo through the real CLI (``python -m harness train``):
checkpoints every N steps, kill -9 then ``--resume`` equal to an uninterrupted run (weights and
train log), keep-last-K, TensorBoard event files, the progress bar, the all-groups-dropped warning
and its configurable stop, Ctrl-C saving a checkpoint with the resume command.

The tiny random model never answers correctly, so every group would have zero reward variance;
the runs that must update use ``correctness=binary`` with a scoring mode from a test plugin
(``parity``: score = length of the final reply mod 2), installed as a real entry-point package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from train_support import SMALL_LIMITS, needs_train, train_log

from harness.cli import main

pytestmark = needs_train


def _install_parity_scoring(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "parity_scoring.py").write_text(
        textwrap.dedent(
            """
            from harness import hookimpl
            from harness.task import Scored

            def parity(spec, sample, trajectory):
                return Scored(float(len(trajectory.final_reply or "") % 2), None)

            @hookimpl
            def harness_register_scoring_modes():
                return {"parity": parity}
            """
        )
    )
    info = root / "parity_scoring-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: parity-scoring\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness]\nparity = parity_scoring\n")
    (info / "RECORD").write_text("")


def _argv(tiny_model: Path, out: Path, *extra: str) -> list[str]:
    sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "learning_rate=1e-2"]
    sets += ["n_samples=4", "prompts_per_step=2", "num_generations=2", "correctness=binary"]
    sets += ["scoring=parity", "save_every=1", "save_total_limit=2", "progress=true", *extra]
    return ["train", "--plugin", "curiosity_grpo", *[x for s in sets for x in ("--set", s)]]


def _env(site: Path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("HARNESS_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=cwd)


def _weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    _install_parity_scoring(root)
    return root


@pytest.mark.slow
def test_kill_9_then_resume_equals_the_uninterrupted_run(
    tmp_path: Path, tiny_model: Path, site: Path
) -> None:
    import torch

    env = _env(site)
    full = tmp_path / "full"
    proc = _run(_argv(tiny_model, full, "max_steps=4"), env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "curiosity_grpo: 100%" in proc.stderr and "4/4" in proc.stderr  # the progress bar
    log = train_log(full)
    assert [e["step"] for e in log] == [0, 1, 2, 3]
    assert any(e["loss"] != 0.0 for e in log)  # the parity scores give groups variance: real updates
    # keep-last-2 of the checkpoints after steps 1, 2, 3 (none after the last: the final save)
    assert sorted(p.name for p in (full / "checkpoints").iterdir()) == ["step-2", "step-3"]
    events = list((full / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and sum(p.stat().st_size for p in events) > 0

    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "harness", *_argv(tiny_model, cut, "max_steps=4")]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not (cut / "checkpoints" / "step-2").is_dir() and time.monotonic() < deadline:
        assert child.poll() is None, "the run ended before it was killed"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (cut / "model.safetensors").exists()  # really killed before the end
    resumed = _run([*_argv(tiny_model, cut, "max_steps=4"), "--resume"], env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    assert (cut / "train_log.jsonl").read_text() == (full / "train_log.jsonl").read_text()
    a, b = _weights(full), _weights(cut)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_all_groups_dropped_warns_and_can_stop(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dropped"
    sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "n_samples=2"]
    sets += ["max_steps=2", "prompts_per_step=1", "num_generations=2", "report_to=none", "progress=false"]
    sets += ["no_update_patience=2"]
    argv = ["train", "--plugin", "curiosity_grpo", *[x for s in sets for x in ("--set", s)]]
    assert main(argv) == 0  # the tiny model's rewards are all equal: every group is dropped
    err = capsys.readouterr()
    text = err.out + err.err
    assert "curiosity_grpo: warning: step 0: every group was dropped" in text
    assert "the loss has been 0 for 2 steps in a row" in text
    assert not (out / "tensorboard").exists()  # report_to=none

    stop = tmp_path / "stop"
    argv = [a.replace(str(out), str(stop)) for a in argv] + ["--set", "stop_on_no_update=true"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("harness train: error: curiosity_grpo: step 0: every group was dropped")
    assert "stopped (stop_on_no_update)" in lines[-1]
    assert (stop / "checkpoints" / "step-1" / "harness_state.json").is_file()
    assert len(train_log(stop)) == 1


def test_resume_without_checkpoint_and_unknown_tracker_are_one_line_errors(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--plugin", "curiosity_grpo", "--set", f"output_dir={tmp_path / 'x'}"]
    assert main([*base, "--set", f"model={tiny_model}", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness train: error: curiosity_grpo: --resume: no checkpoint in ")
    assert len(err.splitlines()) == 1
    assert main([*base, "--set", "report_to=mlflow"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "harness train: error: curiosity_grpo: report_to: 'mlflow' is not one of tensorboard, wandb, none"
    )
    if importlib.util.find_spec("wandb") is None:  # asked for but not installed: one line, nothing loaded
        assert main([*base, "--set", "report_to=tensorboard,wandb"]) == 2
        err = capsys.readouterr().err.strip()
        assert (
            err
            == "harness train: error: curiosity_grpo: report_to: wandb is not installed (pip install wandb)"
        )


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness_plugins.curiosity_grpo as grpo

    real = grpo.collect_items
    calls = []

    def interrupted_on_second_step(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo, "collect_items", interrupted_on_second_step)
    out = tmp_path / "ctrlc"
    sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "n_samples=2"]
    sets += ["max_steps=3", "prompts_per_step=1", "num_generations=2", "report_to=none", "save_every=0"]
    assert main(["train", "--plugin", "curiosity_grpo", *[x for s in sets for x in ("--set", s)]]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("harness train: curiosity_grpo interrupted after 1 step(s); checkpoint ")
    assert "--resume" in err and "finished samples" not in err  # not eval's hint
    ckpt = out / "checkpoints" / "step-1"
    assert json.loads((ckpt / "harness_state.json").read_text())["next_step"] == 1
    assert len(train_log(out)) == 1 and (ckpt / "config.json").is_file()
    assert json.loads((out / "harness_train.json").read_text())["finished"] is False
    assert (
        main(
            [
                "eval",
                "--tasks",
                "vstar",
                "--model",
                f"hf:{out}",
                "--limit",
                "1",
                "--limits",
                SMALL_LIMITS,
                "--output_path",
                str(tmp_path / "ev-out"),
                "--no_progress",
            ]
        )
        == 0
    )  # loads: the completed steps
    # the checkpoint folder is itself a model folder harness eval loads
    argv = ["eval", "--tasks", "vstar", "--model", f"hf:{ckpt}", "--limit", "1", "--limits", SMALL_LIMITS]
    assert main([*argv, "--output_path", str(tmp_path / "ev"), "--no_progress"]) == 0


def test_sft_ctrl_c_then_resume_equals_the_uninterrupted_run(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """trl_sft through TRL's own mechanisms: a SIGINT mid-run saves checkpoint-N (a callback asks
    the Trainer to save and stop), ``--resume`` continues it (resume_from_checkpoint), and the
    final weights equal an uninterrupted run's; TensorBoard events through report_to."""
    import torch

    import harness_plugins.tokens as tokens

    def argv(out: Path) -> list[str]:
        sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "learning_rate=1e-2"]
        sets += ["n_samples=4", "max_steps=5", "batch_size=1", "grad_accum=1", "warmup_ratio=0"]
        sets += ["save_every=100", "progress=false"]
        return ["train", "--plugin", "trl_sft", *[x for s in sets for x in ("--set", s)]]

    full = tmp_path / "full"
    assert main(argv(full)) == 0
    assert list((full / "runs").rglob("events.out.tfevents.*"))  # TensorBoard by default

    real, calls = tokens.collate, []

    def interrupting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(tokens, "collate", interrupting)
    cut = tmp_path / "cut"
    assert main(argv(cut)) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("harness train: trl_sft interrupted at step ") and "--resume" in err
    assert list(cut.glob("checkpoint-*")) and not (cut / "model.safetensors").exists()
    monkeypatch.setattr(tokens, "collate", real)
    assert main([*argv(cut), "--resume"]) == 0
    a, b = _weights(full), _weights(cut)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [e["step"] for e in train_log(cut) if "loss" in e]
    assert steps == [e["step"] for e in train_log(full) if "loss" in e] == [1, 2, 3, 4, 5]


def test_in_training_eval_folders_read_by_leaderboard(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """eval_every: harness eval's code scores the live weights into OUTPUT_DIR/evals/step-N (normal
    run folders that harness leaderboard reads); the numbers join the train log's curves."""
    out = tmp_path / "grpo"
    sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "n_samples=2"]
    sets += ["max_steps=2", "prompts_per_step=1", "num_generations=2", "report_to=none", "progress=false"]
    sets += ["eval_every=1", "eval_limit=2", f"eval_limits={SMALL_LIMITS}"]
    assert main(["train", "--plugin", "curiosity_grpo", *[x for s in sets for x in ("--set", s)]]) == 0
    log = train_log(out)
    assert [e["eval/vstar/accuracy"] for e in log] == [0.0, 0.0]  # the tiny random model
    assert all("eval/vstar/rapr" in e for e in log)
    for step in (1, 2):
        result = json.loads((out / "evals" / f"step-{step}" / "results.json").read_text())
        assert result["results"]["vstar"]["n"] == 2
        assert result["model"].endswith(f"@step-{step}")
    report = tmp_path / "report"
    runs = [str(out / "evals" / "step-1"), str(out / "evals" / "step-2")]
    capsys.readouterr()
    assert (
        main(["leaderboard", *runs, "--out", str(report), "--train_log", str(out / "train_log.jsonl")]) == 0
    )
    text = "".join(p.read_text(errors="replace") for p in report.rglob("*") if p.suffix in (".md", ".html"))
    assert "@step-1" in text and "@step-2" in text
    assert "eval/vstar/accuracy" in text


def test_sft_in_training_eval(tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "sft"
    sets = [f"model={tiny_model}", f"output_dir={out}", f"limits={SMALL_LIMITS}", "n_samples=2"]
    sets += [
        "max_steps=2",
        "grad_accum=1",
        "report_to=none",
        "progress=false",
        "eval_every=2",
        "eval_limit=1",
    ]
    sets += [f"eval_limits={SMALL_LIMITS}"]
    assert main(["train", "--plugin", "trl_sft", *[x for s in sets for x in ("--set", s)]]) == 0
    evals = [e for e in train_log(out) if "eval/vstar/accuracy" in e]
    assert [e["step"] for e in evals] == [2]
    assert json.loads((out / "evals" / "step-2" / "results.json").read_text())["results"]["vstar"]["n"] == 1
