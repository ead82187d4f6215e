"""Test-session settings: no third-party plugin autoload, synthetic data cached per session."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile

os.environ["HARNESS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
if "HARNESS_CACHE_DIR" not in os.environ:
    # One cache per test session, removed when the session ends (subprocesses inherit the path).
    _cache = tempfile.mkdtemp(prefix="harness-test-cache-")
    os.environ["HARNESS_CACHE_DIR"] = _cache
    atexit.register(functools.partial(shutil.rmtree, _cache, ignore_errors=True))
