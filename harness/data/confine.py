"""Confinement of file references that come from untrusted files.

A run folder's ``samples.jsonl`` names crop files (``observation.saved``) and a data file names
images, videos and frame folders; both may have been written by someone else, by hand or by a
broken tool. Every such name is resolved against its root with :func:`confined`: ``..``, an
absolute path, or a symlink anywhere on the way that leads out of the root is refused with
:class:`PathEscape`, symlinks that stay inside the root are followed. The caller opens the
*resolved* path it gets back, never the name it was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath


class PathEscape(ValueError):
    """A file reference resolves outside its root (or cannot be resolved at all)."""


def confined(root: Path, name: str | PurePath) -> Path:
    """``root / name`` fully resolved (symlinks followed); :class:`PathEscape` when it leaves ``root``.

    The path need not exist; an existing one is resolved through every symlink, so a link inside
    ``root`` that points out of it is refused like ``../`` and absolute names are.
    """
    try:
        base = root.resolve()
        path = (base / name).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise PathEscape(f"path {str(name)!r} cannot be resolved under {str(root)!r}: {exc}") from None
    if not path.is_relative_to(base):
        raise PathEscape(f"path {str(name)!r} leaves {str(base)!r} (it resolves to {str(path)!r})")
    return path


def within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path``, resolved, lies inside one of ``roots`` (resolved)."""
    try:
        resolved = path.resolve()
        return any(resolved.is_relative_to(root.resolve()) for root in roots)
    except (OSError, RuntimeError, ValueError):
        return False
