"""Whether the processes a rollback started are gone: shared by the runner and e2e tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["PEAK_RSS_CONFTEST", "alive", "read_pids", "survivors"]


def alive(pid: int) -> bool:
    """Whether *pid* runs; an unreaped zombie counts as dead (PID 1 may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def survivors(pids: list[int], within: float = 3.0) -> list[int]:
    """PIDs still alive after waiting up to *within* seconds for them to go."""
    end = time.monotonic() + within
    while (living := [pid for pid in pids if alive(pid)]) and time.monotonic() < end:
        time.sleep(0.05)
    return living


def read_pids(path: Path) -> list[int]:
    """The PIDs a test script appended to *path*, one a line."""
    return [int(line) for line in path.read_text().split()]


#: A conftest that writes the pytest process's peak RSS (KiB) to ``maxrss.txt`` at the end.
#: VmHWM is the high-water mark of the process's own memory since its exec; ru_maxrss would
#: also count what the forking parent (a big xdist worker) had at the fork.
PEAK_RSS_CONFTEST = """\
from pathlib import Path

def pytest_unconfigure(config):
    status = Path("/proc/self/status").read_text()
    peak_kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    (config.rootpath / "maxrss.txt").write_text(peak_kib)
"""
