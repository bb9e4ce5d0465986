"""Timing shared by the benchmarks: one call's wall time, the garbage collector paused."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = ["wall_s"]


def wall_s(run: Callable[[], Any]) -> float:
    """Wall time of one call, garbage collector paused as ``timeit`` does."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start
    finally:
        gc.enable()
