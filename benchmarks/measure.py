"""Timing and peak-memory helpers.

Peak memory is measured as the peak resident set size (RSS) above the RSS just before the call:
Linux's VmHWM high-water mark is reset through /proc/self/clear_refs ("5") and read back from
/proc/self/status. This sees native allocations too (OpenDP's Rust library, Polars), which
tracemalloc cannot. Before each measured call the C heap is trimmed (malloc_trim) so freed memory
from earlier calls does not hide new growth. Where clear_refs is unavailable, tracemalloc's peak
(Python + NumPy allocations only) is used instead, in separate untimed calls.
"""
from __future__ import annotations

import ctypes
import gc
import re
import time
import tracemalloc
from typing import Any, Callable

_HWM = re.compile(r"VmHWM:\s+(\d+) kB")
_RSS = re.compile(r"VmRSS:\s+(\d+) kB")

try:
    _libc = ctypes.CDLL("libc.so.6")
    _malloc_trim = _libc.malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def _status() -> tuple[int, int]:
    with open("/proc/self/status") as f:
        s = f.read()
    return int(_HWM.search(s).group(1)) * 1024, int(_RSS.search(s).group(1)) * 1024


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _rss_available() -> bool:
    try:
        _reset_hwm()
        _status()
        return True
    except (OSError, AttributeError):
        return False


RSS_PEAK = _rss_available()
MEMORY_METHOD = ("peak RSS delta (VmHWM reset via /proc/self/clear_refs; includes native OpenDP/Polars memory)"
                 if RSS_PEAK else "tracemalloc peak (Python + NumPy allocations only; native OpenDP memory not seen)")


def _settle() -> None:
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def timed(fn: Callable[[], Any], memory: bool = False) -> tuple[float, int | None, Any]:
    """Run fn once: (seconds, peak bytes above the starting RSS or None, result).

    With `memory` and RSS measurement available, the peak is taken in the same (timed) call at no
    cost to the timing: the bookkeeping happens outside the timed region.
    """
    peak = None
    if memory and RSS_PEAK:
        _settle()
        _reset_hwm()
        _, before = _status()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        hwm, _ = _status()
        peak = max(hwm - before, 0)
        return dt, peak, out
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, None, out


def traced_peak(fn: Callable[[], Any]) -> int:
    """tracemalloc fallback: peak traced bytes above the start, in an untimed call."""
    _settle()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(peak - base, 0)


def peak_of(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    """Time one call and give its peak memory whichever method is available."""
    if RSS_PEAK:
        return timed(fn, memory=True)
    dt, _, out = timed(fn)
    return dt, traced_peak(fn), out


class Reps:
    """Repetition policy: at least `min_reps`, at most `max_reps`, stop early after `budget_s`."""

    def __init__(self, max_reps: int, min_reps: int = 3, budget_s: float = 8.0):
        self.max_reps, self.min_reps, self.budget_s = max_reps, min(min_reps, max_reps), budget_s

    def iterate(self):
        start = time.perf_counter()
        for i in range(self.max_reps):
            if i >= self.min_reps and time.perf_counter() - start > self.budget_s:
                return
            yield i
