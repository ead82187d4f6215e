"""Test-session settings: no third-party plugin autoload, synthetic data cached per session."""

from __future__ import annotations

import os
import tempfile

os.environ["HARNESS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.setdefault("HARNESS_CACHE_DIR", tempfile.mkdtemp(prefix="harness-test-cache-"))
