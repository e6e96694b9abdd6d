"""When everything one request does must be over: a point in time and what it bounds.

Pure; the HTTP clients enforce it on every socket operation (:mod:`._deadline_transport`),
and the retry policy (:mod:`.retry`) plans its pauses within it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .units import format_duration

__all__ = ["Deadline"]


@dataclass(frozen=True)
class Deadline:
    """When everything one request does must be over (``time.monotonic()``), and why."""

    at: float
    seconds: float
    what: str

    @classmethod
    def after(cls, seconds: float, what: str, not_after: float | None = None) -> Deadline:
        """A deadline *seconds* from now, or at *not_after* if that comes first."""
        now = time.monotonic()
        at = now + seconds if not_after is None else min(now + seconds, not_after)
        return cls(at, max(0.0, at - now), what)

    def left(self) -> float:
        return self.at - time.monotonic()

    def total(self) -> str:
        """The deadline's length for people, rounded up.

        A request of a round waits a moment for a thread, and its deadline (the round's
        start plus the timeout) is named by the timeout the team set, "2 s", not by the
        1.94 s that were left when it started.
        """
        step = 0.1 if self.seconds >= 1 else 0.001
        return format_duration(round(math.ceil(round(self.seconds / step, 6)) * step, 3))

    def message(self) -> str:
        return f"exceeded the {self.total()} total deadline for {self.what}"
