"""`harness train`: config validation, `harness plugins` lists trainers, a third-party trainer."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from harness.cli import main
from harness.plugins import Harness, UnknownNameError, make_plugin_manager
from harness.trainer import TrainerSpec, build_config, load_config, parse_overrides


@dataclass
class Toy:
    steps: int = 1
    lr: float = 1e-6
    name: str = "x"
    form: Literal["paper", "released"] = "paper"
    path: str | None = None
    flag: bool = False


SPEC = TrainerSpec("toy", Toy, lambda config, harness: Path("."))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, Toy()),
        ({"steps": 3, "lr": 1}, Toy(steps=3, lr=1.0)),
        ({"form": "released", "path": None, "flag": True}, Toy(form="released", flag=True)),
        ({"name": 5}, Toy(name="5")),
    ],
)
def test_build_config(values: dict[str, object], expected: Toy) -> None:
    assert build_config(SPEC, values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stepz": 1}, "unknown config key 'stepz'; valid keys: steps, lr, name, form, path, flag"),
        ({"steps": "many"}, "steps: expected int"),
        ({"steps": True}, "steps: expected int"),
        ({"form": "other"}, "'other' is not one of"),
        ({"flag": 1}, "flag: expected bool"),
    ],
)
def test_build_config_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build_config(SPEC, values)


def test_yaml_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("steps: 2\nlr: 1e-4\nform: released\n")
    assert load_config(SPEC, path, ["steps=5", "path=/x"]) == Toy(
        steps=5, lr=1e-4, form="released", path="/x"
    )
    assert parse_overrides(["lr=3e-5", "name=@tiny", "path="]) == {"lr": 3e-5, "name": "@tiny", "path": ""}
    (tmp_path / "bad.yaml").write_text("a: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(SPEC, tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["steps"])
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        load_config(SPEC, tmp_path / "list.yaml")


def test_builtin_trainers_registered(harness_instance: Harness) -> None:
    assert {"trl_sft", "curiosity_grpo"} <= set(harness_instance.trainers)
    with pytest.raises(UnknownNameError, match="valid trainers: "):
        harness_instance.trainer("nope")


def test_cli_lists_trainers_and_rejects_unknown_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    assert "trainers: curiosity_grpo, trl_sft" in capsys.readouterr().out
    assert main(["train", "--plugin", "trl_sft", "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness train: error: trainer 'trl_sft': unknown config key 'bogus'")
    assert len(err.splitlines()) == 1
    assert main(["train", "--plugin", "nope"]) == 2
    assert "unknown trainer 'nope'" in capsys.readouterr().err


def _install_toy_package(root: Path) -> None:
    """A tiny installed distribution (dist-info on sys.path) with a `harness` entry point."""
    root.mkdir()
    (root / "toy_trainer_plugin.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from pathlib import Path
            from harness import hookimpl
            from harness.trainer import TrainerSpec

            @dataclass
            class ToyConfig:
                out: str = "toy-out"
                steps: int = 1

            def train(config, harness):
                out = Path(config.out)
                out.mkdir(parents=True, exist_ok=True)
                (out / "steps.txt").write_text(str(config.steps))
                return out

            @hookimpl
            def harness_register_trainers():
                return [TrainerSpec("toy", ToyConfig, train, "a third-party trainer")]
            """
        )
    )
    info = root / "toy_trainer_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-trainer-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness]\ntoy = toy_trainer_plugin\n")
    (info / "RECORD").write_text("")


def test_third_party_trainer_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _install_toy_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    assert "toy" in Harness(make_plugin_manager()).trainers
    config = tmp_path / "toy.yaml"
    config.write_text(f"out: {tmp_path / 'ckpt'}\n")
    assert main(["train", "--plugin", "toy", "--config", str(config), "--set", "steps=7"]) == 0
    assert (tmp_path / "ckpt" / "steps.txt").read_text() == "7"
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "toy_trainer_plugin (toy-trainer-plugin)" in out or "toy (toy-trainer-plugin)" in out
    assert "trainers: curiosity_grpo, toy, trl_sft" in out
