"""A new user's first hour (issue 14): run folders by default, offline in seconds, lm-eval's flags,
each subcommand's own usage with "did you mean", one tiny-model behaviour however it is named.

Black-box through ``python -m harness`` where the behaviour is the command line's; the flag
resolution (``EvalArgs``) is also tested directly where a subprocess would only add seconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness
from harness.backends.tiny import DEMO_MAX_NEW_TOKENS, is_tiny_model
from harness.cli import build_parser
from harness.cli.support import EvalArgs, default_run_dir, parse_gen_kwargs, parse_limit

ORACLE = ("eval", "--tasks", "vstar", "--model", "scripted:oracle", "--no_progress")
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once, no network needed


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def eval_args(*argv: str) -> EvalArgs:
    return EvalArgs(build_parser().parse_args(["eval", "--tasks", "vstar", *argv]))


# -- a run always leaves its files -----------------------------------------------------------


def test_run_without_output_path_writes_a_fresh_run_folder_and_prints_it(tmp_path: Path) -> None:
    first = run(*ORACLE, "--limit", "5", cwd=tmp_path)
    second = run(*ORACLE, "--limit", "5", cwd=tmp_path)
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2, "each run gets its own folder, none is overwritten"
    for proc, folder in zip((first, second), folders, strict=True):
        rel = f"runs/{folder.name}"
        assert folder.name.startswith("scripted-oracle__vstar__")
        assert proc.stdout.startswith(f"harness eval: no --output_path: writing to {rel}\n")  # at the start
        assert f"wrote {rel}/results.json" in proc.stdout  # and at the end, with how to look at it
        assert f"harness view {rel}" in proc.stdout and "harness leaderboard" in proc.stdout
        assert len(rows(folder / "samples.jsonl")) == 5
        assert json.loads((folder / "results.json").read_text())["results"]["vstar"]["n"] == 5


def test_a_run_that_fails_before_any_sample_leaves_no_folder(tmp_path: Path) -> None:
    proc = run("eval", "--tasks", "vstar", "--model", "hf:nobody/nothing", cwd=tmp_path, check=False,
               env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert proc.returncode == 2
    assert not (tmp_path / "runs").exists()


def test_default_run_dir_names_model_tasks_and_time(tmp_path: Path) -> None:
    a = default_run_dir("hf:/models/Qwen2.5-VL-7B/", "vstar, mvbench", root=tmp_path)
    assert a.parent == tmp_path and a.name.startswith("hf-Qwen2.5-VL-7B__vstar+mvbench__")
    a.mkdir()
    b = default_run_dir("hf:/models/Qwen2.5-VL-7B/", "vstar, mvbench", root=tmp_path)
    assert b != a and not b.exists()
    assert default_run_dir("hf:@tiny", "all", root=tmp_path).name.startswith("hf-tiny__all__")


# -- offline in seconds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "reason"),
    [({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"), ({"HF_ENDPOINT": UNREACHABLE}, "cannot be reached")],
)
@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("--model", "hf:nobody/nothing"), "model 'nobody/nothing'"),
        (("--model", "scripted:oracle", "--data", "hub"), "dataset 'craigwu/vstar_bench'"),
    ],
)
def test_unavailable_hub_id_fails_fast_in_one_line(
    tmp_path: Path, env: dict[str, str], reason: str, args: tuple[str, ...], name: str
) -> None:
    env = {"HF_HUB_OFFLINE": "", **env, "HF_HOME": str(tmp_path / "hf")}  # an empty cache
    start = time.monotonic()
    proc = run("eval", "--tasks", "vstar", *args, "--limit", "1", "--output_path", str(tmp_path / "o"),
               cwd=tmp_path, env=env, check=False)  # fmt: skip
    took = time.monotonic() - start
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert name in err[0] and reason in err[0] and "HF_HUB_OFFLINE=1" in err[0]
    assert "--model hf:DIR" in err[0] or "--data jsonl:PATH" in err[0]
    assert took < 10, f"{took:.1f} s"


def test_hub_probe_is_bounded_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.data import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE)
    hub.hub_unreachable.cache_clear()
    try:
        assert "cannot be reached" in (hub.hub_unreachable() or "")
        monkeypatch.setenv("HF_ENDPOINT", "http://unused.invalid")
        assert "127.0.0.1:9" in (hub.hub_unreachable() or ""), "probed once per process"
    finally:
        hub.hub_unreachable.cache_clear()
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        start = time.monotonic()
        reason = hub._probe(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.5)
    assert reason is not None and time.monotonic() - start < 3


# -- lm-eval conventions -----------------------------------------------------------------------


def test_lm_eval_style_command_evaluates_a_tenth_of_the_samples(tmp_path: Path) -> None:
    out = tmp_path / "X"
    proc = run(*ORACLE, "--limit", "0.1", "--log_samples", "--gen_kwargs", "temperature=0",
               "--output_path", str(out))  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["results"]["vstar"]["n"] == 5  # 10% of the 50 synthetic samples
    assert len(rows(out / "samples.jsonl")) == 5
    assert results["config"]["limit"] == 0.1 and results["config"]["temperature"] == 0.0
    assert f"wrote {out}/results.json" in proc.stdout


def test_output_dir_and_gen_kwargs_reach_the_run_config(tmp_path: Path) -> None:
    out = tmp_path / "Y"
    run(*ORACLE, "--limit", "2", "--output_dir", str(out),
        "--gen_kwargs", "temperature=0.5,top_p=0.9,max_gen_toks=77")  # fmt: skip
    config = json.loads((out / "run_config.json").read_text())
    assert (config["temperature"], config["top_p"], config["limits"]["max_new_tokens"]) == (0.5, 0.9, 77)


def test_version() -> None:
    assert run("--version").stdout.strip() == f"harness {harness.__version__}"


@pytest.mark.parametrize(
    ("argv", "usage", "hint"),
    [
        (("eval", "--tasks", "vstar", "--limt", "3"), "usage: harness eval", "did you mean --limit?"),
        (("eval", "--tasks", "vstar", "--lim", "3"), "usage: harness eval", "did you mean --limit?"),
        (("eval", "--tasks", "vstar", "--prompt", "vcott"), "usage: harness eval", "did you mean vcot?"),
        (("leaderboard", "r", "--out", "o", "--trainlog", "f"), "usage: harness leaderboard", "--train_log?"),
        (("evl", "--tasks", "vstar"), "usage: harness [-h]", "did you mean eval?"),
    ],
)
def test_mistakes_show_the_subcommands_usage_and_a_suggestion(
    argv: tuple[str, ...], usage: str, hint: str
) -> None:
    proc = run(*argv, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(usage), proc.stderr
    assert hint in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (("--tasks", "vstr", "--model", "scripted:oracle"), "unknown task 'vstr' (did you mean vstar?)"),
        (("--tasks", "vstar", "--model", "scriptd:oracle"), "(did you mean scripted?)"),
        (("--tasks", "vstar", "--model", "scripted:oracel"), "(did you mean oracle?)"),
        (
            ("--tasks", "vstar", "--model", "scripted:oracle", "--scoring", "pixel_reasonr"),
            "did you mean pixel_reasoner?",
        ),
    ],
)
def test_mistyped_names_get_a_suggestion(argv: tuple[str, ...], hint: str, tmp_path: Path) -> None:
    proc = run("eval", *argv, "--limit", "1", "--output_path", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and hint in proc.stderr, proc.stderr


def test_help_shows_defaults() -> None:
    text = " ".join(run("eval", "--help").stdout.split())
    for shown in ("(default: 8)", "(default: 0)", "(default: vcot)", "50 for synthetic data"):
        assert shown in text


def test_old_limits_spelling_still_works_with_a_note(tmp_path: Path) -> None:
    out = tmp_path / "old"
    proc = run(*ORACLE, "--limit", "1", "--limits", "max_ops=3", "--output_path", str(out))
    assert "--limits is deprecated" in proc.stderr and "--episode_limits" in proc.stderr
    assert json.loads((out / "run_config.json").read_text())["limits"]["max_ops"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--gen_kwargs", "temperature=0.7", "--temperature", "0.2"), "conflicts with --temperature"),
        (("--gen_kwargs", "top_p=0.5", "--top_p", "0.9"), "conflicts with --top_p"),
        (("--gen_kwargs", "max_new_tokens=8", "--episode_limits", "max_new_tokens=9"), "give one"),
        (("--gen_kwargs", "temprature=0"), "did you mean temperature?"),
        (("--gen_kwargs", "do_sample=true"), "do_sample needs false"),
        (("--episode_limits", "max_ops=1", "--limits", "max_ops=2"), "give --episode_limits only"),
        (("--model", "hf:x/y", "--device", "cuda:0", "--model_args", "device=cpu"), "conflicts"),
        (("--model", "vllm:x/y", "--device", "cuda:1"), "CUDA_VISIBLE_DEVICES"),
    ],
)
def test_conflicting_flags_are_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eval_args(*argv)


def test_gen_kwargs_agreeing_with_a_flag_is_fine_and_device_reaches_hf() -> None:
    resolved = eval_args("--model", "hf:x/y", "--temperature", "0", "--gen_kwargs", "temperature=0",
                         "--device", "cuda:1")  # fmt: skip
    assert resolved.temperature == 0.0 and resolved.model_args == {"device": "cuda:1"}
    assert eval_args("--model", "scripted:oracle", "--device", "cpu").model_args == {}


@pytest.mark.parametrize(
    ("text", "expected"), [("5", 5), ("1", 1), ("1.0", 1), ("0.1", 0.1), ("0.5", 0.5), ("200", 200)]
)
def test_parse_limit(text: str, expected: float) -> None:
    value = parse_limit(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "x", "nan", "inf"])
def test_parse_limit_rejects(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_limit(text)


def test_parse_gen_kwargs() -> None:
    assert parse_gen_kwargs("temperature=0, top_p=0.95,max_new_tokens=512") == {
        "temperature": 0.0,
        "top_p": 0.95,
        "max_new_tokens": 512,
    }
    assert parse_gen_kwargs("do_sample=false") == {"temperature": 0.0}
    assert parse_gen_kwargs("") == {}


# -- one tiny-model behaviour -------------------------------------------------------------------


def test_tiny_model_decodes_alike_however_it_is_named(tmp_path: Path) -> None:
    built = tmp_path / "tiny"
    built.mkdir()
    (built / "harness_tiny.json").write_text("{}")
    named = [eval_args(), eval_args("--model", "hf:@tiny"), eval_args("--model", f"hf:{built}")]
    assert {r.model for r in named} == {"hf:@tiny", f"hf:{built}"}
    assert {r.limits_text for r in named} == {f"max_new_tokens={DEMO_MAX_NEW_TOKENS}"}
    assert eval_args("--model", "hf:@tiny", "--gen_kwargs", "max_new_tokens=9").limits_text == (
        "max_new_tokens=9"
    )
    assert eval_args("--model", "hf:@tiny", "--episode_limits", "max_new_tokens=7").limits_text == (
        "max_new_tokens=7"
    )
    assert eval_args("--model", "hf:org/real-model").limits_text == ""
    assert not is_tiny_model("hf:org/real-model") and not is_tiny_model("vllm:@tiny")


def test_flag_table_maps_every_lm_eval_flag_and_names_only_real_flags_of_ours() -> None:
    import importlib.util
    import re

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lm-eval is not installed")
    run_py = Path(spec.submodule_search_locations[0]) / "_cli" / "run.py"
    if not run_py.is_file():
        pytest.skip(f"lm-eval {run_py} not found (another lm-eval layout)")
    ours_doc = (Path(__file__).parents[2] / "docs" / "lm-eval-flags.md").read_text(encoding="utf-8")
    table = [line.split("|") for line in ours_doc.splitlines() if line.startswith("| `")]
    theirs = {f for row in table for f in re.findall(r"`(--\w+)`", row[1])}
    lm_eval_flags = set(re.findall(r'add_argument\(\s*"(--\w+)"', run_py.read_text(encoding="utf-8")))
    assert lm_eval_flags and lm_eval_flags <= theirs, sorted(lm_eval_flags - theirs)
    eval_flags = {s for a in build_parser()._subparsers._group_actions[0].choices["eval"]._actions  # type: ignore[union-attr]
                  for s in a.option_strings}  # fmt: skip
    named = {f for row in table for f in re.findall(r"`(--\w+)", row[2]) if "harness train" not in row[2]}
    assert named <= eval_flags | {"--version", "--out"}, sorted(named - eval_flags)
