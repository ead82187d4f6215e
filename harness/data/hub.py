"""Access to the real benchmarks on the Hugging Face Hub (``--data hub[:KEY=VALUE,...]``).

Options (comma-separated after ``hub:``):

- ``mirror=DIR``: read ``DIR/<owner>/<name>/`` instead of downloading ``<owner>/<name>``; a folder
  that mirrors the hub repository's files (an air-gapped copy, or the tests' generated files).
  ``datasets`` and the task loaders then run exactly as on a download.
- ``cache_dir=DIR``: where ``huggingface_hub`` / ``datasets`` keep downloads (default: theirs).
- ``revision=REV``: a hub revision (branch, tag or commit) for every repository.
- a task's own keys, declared in ``TaskSpec.hub_keys`` and read by its ``load_hub`` with
  :meth:`HubOptions.option` (e.g. ``tallyqa=DIR``: TallyQA's images are not on the Hub, so that
  task reads them from a local folder). A key that neither the list above nor a selected task
  declares is refused, naming the key and the valid ones (:meth:`HubOptions.check_keys`).

Downloads go through ``huggingface_hub.snapshot_download`` (folder-shaped repositories: V*,
MVBench) and ``datasets.load_dataset`` (parquet-backed ones: InfographicVQA). When the hub cannot
be reached, :class:`HubError` says so in one line, naming the dataset id and the local
alternatives (``parquet:PATH``, ``jsonl:PATH``, ``hub:mirror=DIR``). ``HF_HUB_OFFLINE=1`` is
honoured by both libraries (only the local cache is used).

Before the first download of a process, :func:`ensure_hub` probes the hub once (a 3-second
request to ``HF_ENDPOINT``); when it does not answer, the hub libraries are switched to offline
mode for the rest of the process, so a cached id still loads and an id that cannot be had fails
in seconds, in one line, instead of after minutes of retries. ``HF_HUB_OFFLINE=1`` skips the probe.
"""

from __future__ import annotations

import functools
import os
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.confine import PathEscape, confined
from harness.errors import UserError

if TYPE_CHECKING:
    from datasets import Dataset

HUB_KEYS = ("mirror", "cache_dir", "revision")  # shared by every task; tasks add their own
PROBE_TIMEOUT_S = 3.0
DATA_ALTERNATIVES = "--data parquet:PATH, --data jsonl:PATH or --data hub:mirror=DIR"
MODEL_ALTERNATIVES = "--model hf:DIR (a local checkpoint folder) or --model hf:@tiny (built offline)"


class HubError(UserError):
    """The hub (or a mirror) cannot give a dataset; a one-line message with the way out."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def offline_env() -> bool:
    """``HF_HUB_OFFLINE`` is set to a true value."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _probe(url: str, timeout: float) -> str | None:
    """``None`` when ``url`` answers (any HTTP status), else why not; bounded by ``timeout``
    even where name resolution hangs (the request runs in a daemon thread)."""
    outcome: list[str | None] = []

    def ask() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # the server answered
        except Exception as exc:  # noqa: BLE001 (any failure means: not reachable)
            outcome.append(_one_line(exc))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


@functools.cache
def hub_unreachable() -> str | None:
    """Probe the hub once per process: ``None`` when it answers, else the one-line reason
    (``"HF_HUB_OFFLINE is set"`` without probing when offline mode is asked for)."""
    if offline_env():
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    reason = _probe(f"{endpoint}/api/spaces?limit=1", PROBE_TIMEOUT_S)
    return None if reason is None else f"the hub ({endpoint}) cannot be reached: {reason}"


def ensure_hub() -> str | None:
    """Call before a hub download: when the hub cannot be reached, switch ``huggingface_hub``,
    ``transformers`` and ``datasets`` to offline mode (cached files only, no retries) and
    return the reason; ``None`` when the hub answers."""
    reason = hub_unreachable()
    if reason is None:
        return None
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    try:
        import datasets.config as datasets_config

        datasets_config.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    return reason


def cached_snapshot(repo_id: str, repo_type: str = "model") -> Path | None:
    """The local cache's snapshot folder of ``repo_id`` (no network), or ``None``."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, repo_type=repo_type, local_files_only=True))
    except Exception:  # noqa: BLE001 (not cached, malformed id, library missing: not available)
        return None


def unavailable(kind: str, repo_id: str, reason: str, alternatives: str) -> str:
    """One line for a hub id that cannot be had offline: the id, HF_HUB_OFFLINE=1, the alternatives."""
    return (
        f"cannot load {kind} {repo_id!r}: {reason} and it is not in the local Hugging Face cache; "
        f"run where the hub is reachable once (later runs can use HF_HUB_OFFLINE=1 with the cache), "
        f"or use local files: {alternatives}"
    )


@dataclass(frozen=True)
class HubOptions:
    """Parsed ``hub:`` options (see the module docstring); ``task_options`` are the
    ``KEY=VALUE`` pairs of keys that tasks declare, in the order given."""

    mirror: Path | None = None
    cache_dir: Path | None = None
    revision: str | None = None
    task_options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, arg: str) -> HubOptions:
        """``"mirror=/x,k=/y"`` -> options; a missing ``=`` or value is an error. Which task
        keys are valid depends on the tasks: :meth:`check_keys`."""
        values: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in arg.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key or not value.strip():
                raise HubError(f"--data hub: bad option {part!r}; expected KEY=VALUE")
            if key == "revision":
                values[key] = value.strip()
            elif key in HUB_KEYS:
                values[key] = Path(value.strip()).expanduser()
            else:
                extra[key] = value.strip()
        return cls(**values, task_options=tuple(extra.items()))

    def check_keys(self, task_keys: Iterable[str]) -> None:
        """Refuse a task option that none of ``task_keys`` (the selected tasks' ``hub_keys``)
        names, in one line naming it and the valid keys."""
        valid = (*HUB_KEYS, *sorted(set(task_keys) - set(HUB_KEYS)))
        for key, value in self.task_options:
            if key not in valid:
                raise HubError(
                    f"--data hub: bad option {key + '=' + value!r}; expected KEY=VALUE with KEY in {', '.join(valid)}"
                )

    def option(self, key: str) -> str | None:
        """The value of a task's own option ``key`` (``None`` when not given)."""
        return dict(self.task_options).get(key)

    def repo_dir(self, repo_id: str, allow_patterns: list[str] | None = None) -> Path:
        """A local folder holding the dataset repository ``repo_id`` (downloaded when needed)."""
        if self.mirror is not None:
            path = self.mirror / repo_id
            if not path.is_dir():
                raise HubError(f"--data hub:mirror: no folder {path} for dataset {repo_id!r}")
            return path
        offline = ensure_hub()
        try:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=self.revision,
                cache_dir=self.cache_dir,
                allow_patterns=allow_patterns,
            )
        except Exception as exc:  # network, auth, missing repo: all end the same way
            if offline:
                raise HubError(unavailable("dataset", repo_id, offline, DATA_ALTERNATIVES)) from exc
            raise unreachable(repo_id, exc) from exc
        return Path(folder)

    def load_dataset(self, repo_id: str, config: str, split: str) -> Dataset:
        """``datasets.load_dataset(repo_id, config, split=split)`` (from the mirror when given)."""
        import datasets

        path = str(self.mirror / repo_id) if self.mirror is not None else repo_id
        if self.mirror is not None and not Path(path).is_dir():
            raise HubError(f"--data hub:mirror: no folder {path} for dataset {repo_id!r}")
        offline = ensure_hub() if self.mirror is None else None
        try:
            ds = datasets.load_dataset(
                path,
                config,
                split=split,
                revision=self.revision,
                cache_dir=str(self.cache_dir) if self.cache_dir else None,
            )
        except Exception as exc:
            if offline:
                what = f"dataset {config}/{split} of"
                raise HubError(unavailable(what, repo_id, offline, DATA_ALTERNATIVES)) from exc
            raise unreachable(repo_id, exc, config=config, split=split) from exc
        if not isinstance(ds, datasets.Dataset):
            raise HubError(f"{repo_id} {config}/{split}: expected one split, got {type(ds).__name__}")
        return ds


def unreachable(repo_id: str, exc: BaseException, *, config: str = "", split: str = "") -> HubError:
    """The one-line error for a dataset the hub could not give."""
    what = f"{repo_id!r}" + (f" (config {config!r}, split {split!r})" if config else "")
    offline = (
        " HF_HUB_OFFLINE is set and the dataset is not cached;" if os.environ.get("HF_HUB_OFFLINE") else ""
    )
    return HubError(
        f"cannot load dataset {what} from the Hugging Face Hub ({_one_line(exc)});{offline} "
        "use local files instead: --data parquet:PATH, --data jsonl:PATH or --data hub:mirror=DIR"
    )


def extract_zips(folder: Path) -> list[Path]:
    """Unpack every ``*.zip`` in ``folder`` into ``folder`` once (a ``.<name>.done`` marker is
    left behind). Members with absolute paths or ``..`` are refused (no zip-slip)."""
    done = []
    root = folder.resolve()
    for archive in sorted(folder.glob("*.zip")):
        marker = folder / f".{archive.name}.done"
        if marker.exists():
            continue
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                try:  # resolved through any symlink already in the folder
                    confined(root, member)
                except PathEscape:
                    raise HubError(f"{archive}: member {member!r} would be written outside {root}") from None
            zf.extractall(root)
        marker.touch()
        done.append(archive)
    return done
