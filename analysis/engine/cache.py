"""Where the tool keeps what it may rebuild: compiled programs (`programs/`, `xla/`) and the logs of runs
(`logs/`). Light on purpose: commands read it before the sampler stack is imported."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "HHD_CACHE_DIR"


def cache_dir() -> Path:
    """`$HHD_CACHE_DIR`, else the user's cache directory. Safe to delete."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hhd-opioid-antagonists"
