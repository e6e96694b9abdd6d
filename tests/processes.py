"""Whether the processes a rollback started are gone: shared by the runner and e2e tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["alive", "read_pids", "survivors"]


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
