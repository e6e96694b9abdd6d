"""When everything one request does must be over: a point in time and what it bounds.

Pure; the HTTP clients enforce it on every socket operation (:mod:`._deadline_transport`),
and the retry policy (:mod:`.retry`) plans its pauses within it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .units import format_duration

__all__ = ["Deadline"]


@dataclass(frozen=True)
class Deadline:
    """When everything one request does must be over (``time.monotonic()``), and why."""

    at: float
    #: The length it is named by: the timeout the team set.
    seconds: float
    what: str

    @classmethod
    def after(cls, seconds: float, what: str, not_after: float | None = None) -> Deadline:
        """A deadline *seconds* from now, or at *not_after* if that comes first.

        *not_after* is the end of the round the request belongs to: the round's start plus
        the same timeout (:mod:`.executor`). A request that waited for a thread in its round
        has less time left, and its deadline is still the team's "2 s", not the 1.8 s that
        were left when it started.
        """
        now = time.monotonic()
        at = now + seconds if not_after is None else min(now + seconds, not_after)
        return cls(at, seconds, what)

    def left(self) -> float:
        return self.at - time.monotonic()

    def total(self) -> str:
        """The deadline's length for people: ``2 s``."""
        return format_duration(self.seconds)

    def message(self) -> str:
        return f"exceeded the {self.total()} total deadline for {self.what}"
