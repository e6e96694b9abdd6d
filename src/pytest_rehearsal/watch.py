"""The watch: staging's health polled on a thread of its own while the rollback runs.

While the rollback command, the verify and the restore run, :class:`Watch` calls its *poll*
(one health request, ``True`` when it passed) every ``interval`` seconds on a daemon thread
and records each poll's outcome and duration. :meth:`Watch.summary` turns them into the
figures every report carries: polls, failed polls, the longest outage (the longest run of
failed polls, from the first failure to the next success) and the slowest answer.

A poll still unanswered is an outage from the moment it was sent once it is *overdue*:
pending for longer than twice the interval and twice the slowest answer so far (a staging
that stopped answering), not while it is merely on its way (one slow round trip at the
stop). The poll's own timeout cannot be the bound: a staging that hangs through a short
rollback would never be seen down.

Bounded: it never makes more than ``limit / interval + 1`` polls nor polls past ``limit``
seconds, and :meth:`Watch.stop` returns within ``join_timeout`` even if a request hangs
(an answer that comes after the stop is not counted: the poll is judged as it stood then).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .release import WatchSummary

__all__ = ["Poll", "Watch"]

_JOIN_TIMEOUT_S = 1.0
#: An unanswered poll is overdue after this many intervals, or slowest answers if longer.
_OVERDUE_FACTOR = 2.0


@dataclass(frozen=True)
class Poll:
    """One health poll: when it started (seconds after the watch did), whether it passed."""

    at: float
    ok: bool
    elapsed: float


class Watch:
    """Polls *poll* every *interval* seconds for at most *limit* seconds, until stopped.

    *poll* must be thread-safe and bounded in time (a request with a timeout); an exception
    from it counts as a failed poll. Use as a context manager, or :meth:`start` then
    :meth:`stop`.
    """

    def __init__(
        self,
        poll: Callable[[], bool],
        *,
        interval: float,
        limit: float,
        clock: Callable[[], float] = time.monotonic,
        join_timeout: float = _JOIN_TIMEOUT_S,
    ) -> None:
        if interval <= 0 or limit < 0:
            raise ValueError(
                f"interval must be positive and limit not negative: {interval}, {limit}"
            )
        self._poll = poll
        self._interval = interval
        self._limit = limit
        self._max_polls = int(limit / interval) + 1
        self._clock = clock
        self._join_timeout = join_timeout
        self._polls: list[Poll] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = 0.0
        self._stopped_at: float | None = None
        self._pending_since: float | None = None  # clock() when the poll in flight was sent

    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start polling (the first poll is immediate)."""
        if self._thread is not None:
            raise RuntimeError("a watch is started once")
        self._started_at = self._clock()
        self._thread = threading.Thread(target=self._run, name="rehearsal-watch", daemon=True)
        self._thread.start()

    def stop(self) -> WatchSummary:
        """Stop polling and return the summary; a poll still in flight counts as failed
        if it is overdue then (module docstring)."""
        if self._thread is not None and self._stopped_at is None:
            with self._lock:
                self._stopped_at = self._clock()
            self._stopping.set()
            self._thread.join(self._join_timeout)
        return self.summary()

    @property
    def polls(self) -> tuple[Poll, ...]:
        with self._lock:
            return tuple(self._polls)

    def summary(self) -> WatchSummary:
        """The figures so far: polls, failed polls, longest outage, slowest poll.

        An overdue poll still in flight is counted as a failed one, sent when it was.
        """
        with self._lock:
            polls = list(self._polls)
            end = self._stopped_at if self._stopped_at is not None else self._clock()
            pending_since = self._pending_since
        if pending_since is not None:
            waited = end - pending_since
            slowest = max((poll.elapsed for poll in polls), default=0.0)
            if waited > _OVERDUE_FACTOR * max(self._interval, slowest):
                polls.append(Poll(pending_since - self._started_at, False, waited))
        longest = 0.0
        outage_from: float | None = None
        for poll in polls:
            if not poll.ok and outage_from is None:
                outage_from = poll.at
            elif poll.ok and outage_from is not None:
                longest = max(longest, poll.at - outage_from)
                outage_from = None
        if outage_from is not None:  # still failing when the watch stopped
            longest = max(longest, end - self._started_at - outage_from)
        return WatchSummary(
            polls=len(polls),
            failed=sum(not poll.ok for poll in polls),
            longest_outage_s=longest,
            slowest_s=max((poll.elapsed for poll in polls), default=0.0),
        )

    def _run(self) -> None:
        deadline = self._started_at + self._limit
        for _ in range(self._max_polls):
            began = self._clock()
            with self._lock:
                if self._stopped_at is not None or began > deadline:
                    return
                self._pending_since = began
            try:
                ok = bool(self._poll())
            except Exception:  # a failed poll, whatever the fetcher raised
                ok = False
            ended = self._clock()
            with self._lock:
                if self._stopped_at is not None:
                    return  # answered after stop(): judged as it stood then, pending
                self._pending_since = None
                self._polls.append(Poll(began - self._started_at, ok, ended - began))
            if self._stopping.wait(max(0.0, self._interval - (ended - began))):
                return
