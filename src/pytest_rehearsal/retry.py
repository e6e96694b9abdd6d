"""The retry policy of every request to staging, built on tenacity.

At most a given number of attempts. Between two of them a pause: what ``Retry-After`` asks,
or an exponential backoff with jitter; but only while the pause fits the request's
:class:`~pytest_rehearsal.deadline.Deadline`. A ``Retry-After`` longer than the time left ends
the retries with a note saying so.

Imported by :func:`pytest_rehearsal.client.with_retries` only once a first attempt has failed
in a way worth another: most requests succeed at once, and importing tenacity up front would
cost every rehearsal about 5 ms of start-up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import tenacity
from tenacity.stop import stop_base

if TYPE_CHECKING:
    from .deadline import Deadline

__all__ = ["Pushback", "retrying"]

# Retries wait briefly: staging that is down for longer is a finding, not something to sit out.
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 1.0
_T = TypeVar("_T")

#: The status and ``Retry-After`` (seconds) of a result worth another attempt.
Pushback = tuple[int | None, float | None]


def _plan_retry(
    attempt: int, status: int | None, retry_after: float | None, deadline: Deadline
) -> tuple[float | None, str | None]:
    """How long to wait before the next attempt (``None``: stop), and why we stopped."""
    left = deadline.left()
    if retry_after is not None:
        if retry_after >= left:
            label = "rate limited" if status == 429 else "unavailable"
            return None, (
                f"{label}: Retry-After {retry_after:g} s exceeds the {deadline.total()} budget"
            )
        return retry_after, None
    base = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (attempt - 1))
    # Jitter, so that the 32 parallel probes of a round do not all retry in step.
    pause = base + random.uniform(0, base / 2)
    return (pause, None) if pause < left else (None, None)


class _RetryPlan(stop_base):
    """Stops when the pause before the next attempt does not fit the time left.

    tenacity asks both its stop and its wait after an attempt (in an order that differs
    between versions); both read one plan made once per attempt, so the jitter is drawn
    once and they cannot disagree.
    """

    def __init__(self, deadline: Deadline, pushback: Callable[[Any], Pushback | None]) -> None:
        self._deadline = deadline
        self._pushback = pushback
        self._made: tuple[int, float | None, str | None] = (0, None, None)

    def plan(self, state: tenacity.RetryCallState) -> tuple[float | None, str | None]:
        """The pause after this attempt (``None``: stop), and why it stopped, if it says."""
        if self._made[0] != state.attempt_number:
            outcome = state.outcome
            assert outcome is not None  # tenacity plans only after an attempt
            pushback = None if outcome.failed else self._pushback(outcome.result())
            status, retry_after = pushback or (None, None)
            planned = _plan_retry(state.attempt_number, status, retry_after, self._deadline)
            self._made = (state.attempt_number, *planned)
        return self._made[1], self._made[2]

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return self.plan(state)[0] is None

    def wait(self, state: tenacity.RetryCallState) -> float:
        """tenacity's wait: the planned pause (0 when it stops instead)."""
        return self.plan(state)[0] or 0.0


def retrying(
    attempts: int,
    deadline: Deadline,
    transient: Callable[[BaseException], bool],
    pushback: Callable[[_T], Pushback | None],
    *,
    release: Callable[[_T], object] | None = None,
    noted: Callable[[_T, str], _T] | None = None,
) -> tenacity.Retrying:
    """The retries of one request: at most *attempts*, every pause within *deadline*.

    An error is retried when *transient* says so; a result when *pushback* gives its status
    and ``Retry-After`` (``None``: the result is final). *release* frees a result before it
    is retried (an open response); *noted* adds to the last result why no further attempt
    fitted (a ``Retry-After`` beyond the deadline). When retrying stops, the last result is
    returned, or the last error raised.
    """
    plan = _RetryPlan(deadline, pushback)

    def release_retried(state: tenacity.RetryCallState) -> None:
        if release is not None and state.outcome is not None and not state.outcome.failed:
            release(state.outcome.result())

    def give_up(state: tenacity.RetryCallState) -> Any:
        assert state.outcome is not None  # tenacity gives up only after an attempt
        result = state.outcome.result()  # raises the last error
        # After the last allowed attempt there is no early stop to explain.
        if noted is None or state.attempt_number >= attempts:
            return result
        _, note = plan.plan(state)
        return noted(result, note) if note else result

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | plan,
        wait=plan.wait,
        retry=tenacity.retry_if_exception(transient)
        | tenacity.retry_if_result(lambda result: pushback(result) is not None),
        before_sleep=release_retried,
        retry_error_callback=give_up,
    )
