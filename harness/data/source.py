"""A ``--data`` source, parsed once: :class:`DataSource`.

``--data KIND[:ARG]`` is split at its first ``:`` into a kind (``synthetic``, ``hub``, ``jsonl``,
or a kind a task offers in ``TaskSpec.sources`` such as ``parquet``) and its argument. The
command line and the configuration records parse the text once with :meth:`DataSource.parse`
(a bad ``synthetic`` seed or a malformed ``hub`` option is an error naming ``--data`` there);
everything after that passes the typed record on. ``str(source)`` gives back the text exactly as
given, which is what run folders store (``run_config.json``, ``results.json``).

Which kinds a task can read is known only with the task (its ``sources``), so an unknown kind is
refused when a task's samples are loaded (:func:`harness.data.load_samples`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.data.hub import HubOptions

SOURCES = "synthetic[:SEED], hub[:KEY=VALUE,...], parquet:PATH, jsonl:PATH"


class DataError(UserError):
    """Bad data source or malformed record; the message names the file, row and field."""


@dataclass(frozen=True, slots=True)
class DataSource:
    """``--data KIND[:ARG]``: ``kind`` before the first ``:``, ``arg`` after it (``None`` when
    the text has no ``:``, so ``synthetic`` and ``synthetic:`` stay two spellings)."""

    kind: str
    arg: str | None = None

    @classmethod
    def parse(cls, text: str) -> DataSource:
        """Split ``text`` and check what can be checked without the tasks: a ``synthetic`` seed
        is an integer, ``hub`` options are ``KEY=VALUE`` pairs (:class:`DataError` /
        :class:`~harness.data.hub.HubError` naming ``--data``)."""
        kind, sep, arg = text.partition(":")
        source = cls(kind, arg if sep else None)
        if kind == "synthetic":
            source.seed  # noqa: B018 (raises on a bad seed)
        elif kind == "hub":
            source.hub_options()
        return source

    @classmethod
    def of(cls, data: DataSource | str) -> DataSource:
        """``data`` as a :class:`DataSource` (text is parsed; a record is returned as is)."""
        return data if isinstance(data, DataSource) else cls.parse(data)

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"

    @property
    def text(self) -> str:
        """The argument after ``KIND:`` (``""`` when none was given)."""
        return self.arg or ""

    @property
    def seed(self) -> int:
        """The generator seed of ``synthetic[:SEED]`` (0 when not given)."""
        try:
            return int(self.text) if self.text else 0
        except ValueError:
            raise DataError(f"--data synthetic:SEED needs an integer seed, got {self.text!r}") from None

    @property
    def path(self) -> Path:
        """The file of a ``KIND:PATH`` source (``jsonl:PATH``)."""
        return Path(self.text)

    def hub_options(self) -> HubOptions:
        """The options of ``hub[:KEY=VALUE,...]`` (syntax checked; which keys are valid depends
        on the tasks, see :meth:`harness.data.hub.HubOptions.check_keys`)."""
        from harness.data.hub import HubOptions

        return HubOptions.parse(self.text)
