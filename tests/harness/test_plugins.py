from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import hookimpl
from harness.plugins import BUILTIN_PLUGINS, Harness, PluginError, UnknownNameError, make_plugin_manager

BUILTIN_TASKS = ["infovqa", "mvbench", "tallyqa", "vstar"]


def test_builtins_register_through_hooks(harness_instance: Harness) -> None:
    assert list(harness_instance.tasks) == BUILTIN_TASKS
    assert "scripted" in harness_instance.backends
    assert [t.name for t in harness_instance.tools] == ["crop_image_normalized", "select_frames"]
    names = {i.name for i in harness_instance.plugin_info()}
    assert set(BUILTIN_PLUGINS) <= names


def test_plugin_info_lists_hooks(harness_instance: Harness) -> None:
    info = {i.name: i.hooks for i in harness_instance.plugin_info()}
    assert info["harness_tasks.vstar"] == ("harness_register_tasks",)
    assert info["harness.tools"] == ("harness_register_tools",)


def test_misspelled_hook_fails_fast() -> None:
    class Typo:
        @hookimpl
        def harness_register_taks(self) -> list[object]:
            return []

    with pytest.raises(PluginError, match="harness_register_taks"):
        make_plugin_manager(autoload=False, extra=[Typo()])


def test_task_name_collision_names_both_plugins(harness_instance: Harness) -> None:
    vstar = harness_instance.task("vstar")

    class Dup:
        @hookimpl
        def harness_register_tasks(self) -> list[object]:
            return [vstar]

    h = Harness(make_plugin_manager(autoload=False, extra=[Dup()]))
    with pytest.raises(PluginError, match="'vstar' is registered by both"):
        _ = h.tasks


def test_unknown_names_list_valid_ones(harness_instance: Harness) -> None:
    with pytest.raises(UnknownNameError, match="valid tasks: infovqa, mvbench, tallyqa, vstar"):
        harness_instance.task("vstr")
    with pytest.raises(UnknownNameError, match="valid backends: .*scripted"):
        harness_instance.backend("nope")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("all", BUILTIN_TASKS), ("vstar,mvbench", ["vstar", "mvbench"]), (" vstar , vstar ", ["vstar"])],
)
def test_resolve_tasks(harness_instance: Harness, spec: str, expected: list[str]) -> None:
    assert [t.name for t in harness_instance.resolve_tasks(spec)] == expected


def test_block_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_BLOCK_PLUGINS", "harness_tasks.mvbench")
    h = Harness(make_plugin_manager(autoload=False))
    assert "mvbench" not in h.tasks
    assert "vstar" in h.tasks


def _install_fake_distribution(root: Path) -> None:
    (root / "harness_demo_plugin.py").write_text(
        textwrap.dedent(
            """
            from harness import hookimpl

            class _Policy:
                name = "demo"
                def generate(self, requests):
                    return []

            @hookimpl
            def harness_register_backends():
                return {"demo": lambda rest, ctx: _Policy()}
            """
        )
    )
    dist = root / "harness_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness]\ndemo = harness_demo_plugin\n")


def test_entry_point_plugins_autoload_and_can_be_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_fake_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = Harness(make_plugin_manager(autoload=True))
    assert "demo" in loaded.backends
    assert any(i.distribution == "harness-demo-plugin" for i in loaded.plugin_info())
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "demo" not in Harness(make_plugin_manager()).backends


def test_import_harness_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import harness, harness.plugins, sys; harness.plugins.Harness().tasks; "
        "bad = [m for m in ('torch', 'transformers', 'trl', 'vllm') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
