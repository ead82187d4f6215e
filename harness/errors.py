"""The errors a user can fix, as one base class.

A :class:`UserError` is a bad flag, option value, file or name: the command line prints its
message in one line (exit status 2) and no traceback. Anything else that escapes a command is a
bug: the command line prints its traceback and asks for a report. Both subclass ``ValueError``
so code that caught ``ValueError`` before still catches them.
"""

from __future__ import annotations


class UserError(ValueError):
    """An error the user can fix; its message says what was wrong and what is valid."""


class OptionError(UserError):
    """A bad option: ``--model_args``, ``--episode_limits``, ``--gen_kwargs``, a trainer config key."""
