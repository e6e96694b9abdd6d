"""Timing, memory, CPU and statistics helpers of the benchmark driver (standard library only).

Whole-process figures are wall clock around a subprocess; peak memory is the child's own
``ru_maxrss``, read with ``os.wait4`` so that each child is measured alone (``RUSAGE_CHILDREN``
would report the largest child so far).

Comparisons are paired: :func:`interleave` runs the variants of a comparison one after the
other in each round, in the opposite order every other round (A B, B A, A B, ...), and
:func:`paired` takes the ratio (or difference) within each round. A burst of load hits
both members of a pair alike, so the median of the per-pair ratios moves far less than a
ratio of medians; the spread of the per-pair ratios shows how far noise moved them.

:class:`CpuMeter` says how busy the machine was while something was measured: the share of
every CPU that went to other processes (``/proc/stat``, the hypervisor's steal time
included, minus what the bench and its children used), and the highest 1-minute load
average seen.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CpuMeter",
    "Load",
    "Result",
    "Rounds",
    "RunFailed",
    "Stats",
    "interleave",
    "median_interval",
    "paired",
    "run",
    "straddles",
]

#: No single benchmark command may run longer than this (the scale-out run takes ~25 s).
COMMAND_TIMEOUT = 120.0
#: Others' share of the CPUs above which a missed target is "undecided (busy)", not NO.
BUSY_SHARE = 0.10
_PROC_STAT = Path("/proc/stat")


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

    @property
    def quartiles(self) -> tuple[float, float]:
        """The first and third quartiles (both the value itself when there is one)."""
        if len(self.values) < 2:
            return self.values[0], self.values[0]
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3


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


# -- paired comparisons --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rounds:
    """What :func:`interleave` measured: each variant's value in each round, in round order,
    and how busy the machine was meanwhile (when it was given a meter)."""

    samples: Mapping[str, tuple[float, ...]]
    load: Load | None = None

    def __getitem__(self, name: str) -> Stats:
        return Stats(self.samples[name])


def interleave(
    variants: Mapping[str, Callable[[], float]],
    *,
    warmups: int,
    repeats: int,
    meter: CpuMeter | None = None,
) -> Rounds:
    """Measure every variant *repeats* times after *warmups* unmeasured rounds.

    Each round runs every variant once, forwards in even rounds and backwards in odd ones, so
    that neither member of a pair always goes first (a cache warmed by the first, or a burst
    of load that starts mid-round, would otherwise favour one of them). With a *meter*, the
    measured rounds' :class:`Load` comes with them.
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    loads: list[Load] = []

    def rounds(numbers: range) -> None:
        for round_number in numbers:
            order = names if round_number % 2 == 0 else names[::-1]
            for name in order:
                value = variants[name]()
                if round_number >= warmups:
                    samples[name].append(value)

    rounds(range(warmups))
    if meter is None:
        rounds(range(warmups, warmups + repeats))
    else:
        with meter.window(loads):
            rounds(range(warmups, warmups + repeats))
    load = loads[0] if loads else None
    return Rounds({name: tuple(values) for name, values in samples.items()}, load)


def paired(
    rounds: Rounds,
    numerator: str,
    denominator: str,
    how: Callable[[float, float], float] = lambda a, b: a / b,
) -> Stats:
    """*how* (a ratio by default) of the two variants within each round: one value per pair."""
    pairs = zip(rounds.samples[numerator], rounds.samples[denominator], strict=True)
    return Stats(tuple(how(a, b) for a, b in pairs))


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval holding the true median with *confidence*.

    The order statistics of the sign test: with n pairs, the median lies between the k-th
    smallest and the k-th largest value, k the largest with P(Binomial(n, 1/2) < k) at most
    (1 - confidence) / 2 (k = 6 for 20 pairs). With too few values it is their whole range.
    """
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    below, k = 0.0, 0
    while k < n and below + math.comb(n, k) / 2**n <= tail:
        below += math.comb(n, k) / 2**n
        k += 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def straddles(stats: Stats, limit: float) -> bool:
    """Whether *limit* lies inside the 95 % interval of the median of *stats*: the pairs,
    however many, cannot tell which side of the limit the true median is on."""
    low, high = median_interval(stats.values)
    return low <= limit <= high


# -- how busy the machine was --------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """How busy the machine was during one window of measurements."""

    seconds: float
    #: The share of all CPUs that went to other processes (steal time included), or None
    #: where ``/proc/stat`` cannot be read.
    others: float | None
    #: The highest 1-minute load average sampled (the bench's own processes count in it).
    load_max: float
    cores: int

    @property
    def busy(self) -> bool:
        """Too busy to decide a target that misses.

        From the others' share of the CPUs where it is known; elsewhere, from the load
        average, which also counts the bench's own processes.
        """
        if self.others is not None:
            return self.others > BUSY_SHARE
        return self.load_max > self.cores

    def describe(self) -> str:
        shown = "" if self.others is None else f"others used {self.others:.0%} of the CPUs, "
        return f"{shown}load average up to {self.load_max:.2f} on {self.cores} cores"


@dataclass
class CpuMeter:
    """Measures :class:`Load` over windows; *own_pids* are long-lived helpers of the bench.

    The bench's own CPU time is that of this process and every child it reaped (the measured
    commands, their reaped descendants), plus the helpers' (the services), read from
    ``/proc/<pid>/stat``. Everything else the CPUs did is the others'.
    """

    own_pids: list[int] = field(default_factory=list)
    _tick: float = field(default=1.0 / os.sysconf("SC_CLK_TCK"), init=False)

    @contextmanager
    def window(self, loads: list[Load]) -> Iterator[None]:
        """Measure the ``with`` block; its :class:`Load` is appended to *loads* at the end."""
        before = self._sample()
        peak = [os.getloadavg()[0]]
        stop = threading.Event()

        def watch_load() -> None:
            while not stop.wait(5.0):
                peak.append(os.getloadavg()[0])

        watcher = threading.Thread(target=watch_load, name="bench-load", daemon=True)
        watcher.start()
        started = time.monotonic()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            peak.append(os.getloadavg()[0])
            after = self._sample()
            others = None
            if before[0] is not None and after[0] is not None:
                busy = after[0] - before[0]
                total = after[1] - before[1]
                own = after[2] - before[2]
                others = max(0.0, busy - own) / total if total > 0 else 0.0
            cores = os.cpu_count() or 1
            loads.append(Load(time.monotonic() - started, others, max(peak), cores))

    def _sample(self) -> tuple[float | None, float, float]:
        """(busy CPU seconds of the machine or None, all CPU seconds, the bench's own)."""
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        own += sum(self._process_cpu(pid) for pid in self.own_pids)
        try:
            fields = _PROC_STAT.read_text(encoding="ascii").splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None, 0.0, own
        # user nice system idle iowait irq softirq steal (guest time is counted in user)
        ticks = [int(value) for value in fields[:8]]
        idle = ticks[3] + ticks[4]
        return (sum(ticks) - idle) * self._tick, sum(ticks) * self._tick, own

    def _process_cpu(self, pid: int) -> float:
        """utime + stime of a running helper and of the children it reaped, in seconds."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        except OSError:
            return 0.0
        # The command name may hold spaces: the fields start after its closing parenthesis.
        numbers = stat.rsplit(")", 1)[1].split()
        return sum(int(numbers[i]) for i in (11, 12, 13, 14)) * self._tick
