"""Wall time and peak memory of one call.

tracemalloc only sees Python's allocator, not torch's or numpy's C buffers, so memory is measured
as resident set size from the kernel: before each call the process's peak RSS (VmHWM in
/proc/self/status) is reset to its current RSS by writing 5 to /proc/self/clear_refs (Linux >= 4.0),
and read again after the call. The peak is the whole process's (Python, torch, the test set in
memory); `delta_mb` is that peak minus the RSS just before the call, i.e. what the call itself
added at its highest point. Where clear_refs cannot be written, the fallback is
resource.getrusage's ru_maxrss, which can only grow, so a call that stays under an earlier peak
shows a delta of 0 (`method` says which was used). Before each call glibc's malloc_trim returns
freed heap to the OS, so the RSS before the call is close to what is live.
"""

from __future__ import annotations

import ctypes
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_method() -> str:
    if _status_kb("VmHWM") is not None and _reset_peak():
        return "VmHWM (reset via /proc/self/clear_refs)"
    return "ru_maxrss delta (cannot reset; underestimates calls below an earlier peak)"


@dataclass
class Measure:
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the whole process (all threads) during the call
    peak_mb: float = float("nan")
    delta_mb: float = float("nan")


def _trim() -> None:
    """Hand freed heap back to the OS (glibc malloc_trim), so the RSS before a call is what is
    live, not what earlier calls left in the allocator's free lists. (No gc.collect: with torch
    loaded it costs ~85 ms a call, and the arrays here are freed by reference counting.)"""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc = None


class measure:
    """with measure() as m: ...  -> m.seconds, m.peak_mb (process peak RSS), m.delta_mb."""

    def __enter__(self) -> Measure:
        _trim()
        self.m = Measure()
        self.hwm = _status_kb("VmHWM") is not None and _reset_peak()
        rss = _status_kb("VmRSS")
        self.rss0 = rss if rss is not None else 0
        self.maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.c0 = time.process_time()
        self.t0 = time.perf_counter()
        return self.m

    def __exit__(self, *exc) -> None:
        self.m.seconds = time.perf_counter() - self.t0
        self.m.cpu_seconds = time.process_time() - self.c0
        if self.hwm:
            peak = _status_kb("VmHWM") or 0
            self.m.peak_mb = peak / 1024.0
            self.m.delta_mb = max(0, peak - self.rss0) / 1024.0
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.m.peak_mb = peak / 1024.0
            self.m.delta_mb = max(0, peak - max(self.maxrss0, self.rss0)) / 1024.0
