"""Where co-simulation keeps its Verilator builds: one per-user folder, whatever the cwd.

A whole network's Verilator model takes tens of seconds and ~150 MB to build and depends only
on its Verilog, the driver and the flags (:func:`sim.cosim.build_cosim` names each build by
their hash), so one folder per user serves every build directory and every working directory.
``HWGEN_CACHE_DIR`` overrides the place; otherwise it follows the XDG base directory rules.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_root", "cosim_cache_dir"]

#: Environment variable that moves the cache.
CACHE_ENV = "HWGEN_CACHE_DIR"


def cache_root() -> Path:
    """``$HWGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/hwgen``, else ``~/.cache/hwgen``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: absolute only
    return base / "hwgen"


def cosim_cache_dir() -> Path:
    """The folder of whole-network Verilator builds."""
    return cache_root() / "cosim"
