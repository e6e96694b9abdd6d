"""Timing, memory and statistics helpers of the benchmark driver (standard library only).

Whole-process figures are wall clock around a subprocess; peak memory is the child's own
``ru_maxrss``, read with ``os.wait4`` so that each child is measured alone (``RUSAGE_CHILDREN``
would report the largest child so far).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Result", "RunFailed", "Stats", "interleave", "run"]

#: No single benchmark command may run longer than this (the scale-out run takes ~25 s).
COMMAND_TIMEOUT = 120.0


class RunFailed(RuntimeError):
    """A measured command exited with an unexpected status; the message has its output tail."""


@dataclass(frozen=True)
class Stats:
    """Repeated measurements of one figure (seconds, bytes or a ratio)."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


@dataclass(frozen=True)
class Result:
    """One finished command: wall-clock seconds, peak RSS in bytes, and its output."""

    seconds: float
    peak_rss: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    expect: int = 0,
    timeout: float = COMMAND_TIMEOUT,
) -> Result:
    """Run *argv* to completion; its wall clock and its own peak RSS.

    Raises :class:`RunFailed` when it exits with another status than *expect* or outlives
    *timeout* (it is killed then).
    """
    out_path = cwd / ".bench-stdout"
    err_path = cwd / ".bench-stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=out, stderr=err)
        status, rusage = _wait(process, timeout)
        seconds = time.perf_counter() - started
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    if status != expect:
        tail = "\n".join((stdout + stderr).splitlines()[-25:])
        raise RunFailed(f"{' '.join(argv)} exited {status}, expected {expect}:\n{tail}")
    # ru_maxrss is in KiB on Linux.
    return Result(seconds, rusage.ru_maxrss * 1024, stdout, stderr)


def _wait(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, resource.struct_rusage]:
    """Reap *process* with its resource usage; a watchdog kills it after *timeout* seconds."""
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        _, wait_status, rusage = os.wait4(process.pid, 0)
    finally:
        watchdog.cancel()
    status = os.waitstatus_to_exitcode(wait_status)
    process.returncode = status  # reaped here: Popen must not wait for it again
    return status, rusage


def interleave(
    variants: Mapping[str, Callable[[], float]], *, warmups: int, repeats: int
) -> dict[str, Stats]:
    """Measure every variant *repeats* times, round-robin, after *warmups* unmeasured rounds.

    Round-robin order spreads any drift of the machine (another process waking up, CPU
    frequency) over every variant alike, so their ratios stay fair.
    """
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(warmups + repeats):
        for name, measure in variants.items():
            value = measure()
            if round_number >= warmups:
                samples[name].append(value)
    return {name: Stats(tuple(values)) for name, values in samples.items()}
