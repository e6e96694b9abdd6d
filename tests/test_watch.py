"""The watch: a bounded poller on its own thread, and the figures it reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from plugin_helpers import TinyStaging
from pytest_rehearsal.release import WatchSummary
from pytest_rehearsal.watch import Watch


class ScriptedTime:
    """A clock that each poll moves on: *outcomes* say whether successive polls pass."""

    def __init__(self, outcomes: list[bool], step: float = 1.0) -> None:
        self.now = 0.0
        self.outcomes = outcomes
        self.step = step
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def poll(self) -> bool:
        ok = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        self.now += self.step
        return ok


def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def health_poll(
    tiny_staging: tuple[TinyStaging, str],
) -> Iterator[tuple[TinyStaging, Callable[[], bool]]]:
    """A real health request to the tiny staging app, as the lifecycle's watch makes it."""
    staging, url = tiny_staging
    with httpx.Client(base_url=url, timeout=2.0) as client:

        def poll() -> bool:
            return client.get("/health").status_code == 200

        yield staging, poll


def test_polls_a_real_server_until_stopped_and_counts_failures(
    health_poll: tuple[TinyStaging, Callable[[], bool]],
) -> None:
    staging, poll = health_poll
    watch = Watch(poll, interval=0.05, limit=30.0)
    watch.start()
    wait_for(lambda: len(watch.polls) >= 3)
    staging.health_status = 503
    wait_for(lambda: sum(not p.ok for p in watch.polls) >= 2)
    staging.health_status = 200
    wait_for(lambda: watch.polls[-1].ok)
    stopped_at = time.monotonic()
    summary = watch.stop()
    assert time.monotonic() - stopped_at < 1.0
    assert summary.polls == len(watch.polls) >= 6
    assert summary.failed >= 2
    assert summary.longest_outage_s >= 0.05  # at least one interval without health
    assert 0 < summary.slowest_s < 2.0
    count = len(staging.requests)
    time.sleep(0.2)
    assert len(staging.requests) == count  # stopped means stopped


def test_never_polls_more_than_the_limit_allows() -> None:
    calls: list[float] = []
    watch = Watch(lambda: calls.append(time.monotonic()) is None, interval=0.05, limit=0.2)
    with watch:
        time.sleep(0.6)  # three times the limit, and never told to stop meanwhile
    assert 1 <= len(calls) <= int(0.2 / 0.05) + 1
    assert calls[-1] - calls[0] <= 0.2 + 0.05


def test_longest_outage_runs_from_the_first_failure_to_the_next_success() -> None:
    fake = ScriptedTime([True, False, False, False, True, False, True, True])
    watch = Watch(fake.poll, interval=0.001, limit=1000.0, clock=fake.clock)
    watch.start()
    wait_for(lambda: len(watch.polls) >= 8)
    summary = watch.stop()
    # Polls start at 0, 1, 2, ...: failing from t=1 until the success at t=4.
    assert summary.failed >= 4
    assert summary.longest_outage_s == 3.0
    assert summary.slowest_s == 1.0


def test_an_outage_still_going_when_stopped_lasts_until_the_stop() -> None:
    fake = ScriptedTime([True, False])
    watch = Watch(fake.poll, interval=0.001, limit=1000.0, clock=fake.clock)
    watch.start()
    wait_for(lambda: len(watch.polls) >= 3)
    summary = watch.stop()
    first_failure = watch.polls[1].at
    assert summary.longest_outage_s >= fake.now - 1.0 - first_failure
    assert summary.longest_outage_s > 0


def test_an_exception_from_the_poll_is_a_failed_poll() -> None:
    def poll() -> bool:
        raise httpx.ConnectError("connection refused")

    with Watch(poll, interval=0.01, limit=10.0) as watch:
        wait_for(lambda: len(watch.polls) >= 2)
    assert watch.summary().failed == watch.summary().polls >= 2


def test_a_poll_that_hangs_until_the_stop_does_not_hold_it_up_and_is_an_outage() -> None:
    # A staging that stops answering during the rollback is down from the poll it left
    # unanswered, however short the rollback.
    release = threading.Event()
    hanging = threading.Event()
    calls = 0

    def poll() -> bool:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return True
        hanging.set()
        release.wait(10)
        return True

    watch = Watch(poll, interval=0.01, limit=30.0, join_timeout=0.2)
    watch.start()
    assert hanging.wait(5)
    time.sleep(0.3)  # thirty intervals without an answer
    before = time.monotonic()
    summary = watch.stop()
    assert time.monotonic() - before < 1.0
    release.set()
    assert (summary.polls, summary.failed) == (3, 1)
    assert summary.longest_outage_s >= 0.3
    assert summary.slowest_s == summary.longest_outage_s  # the unanswered poll's wait
    time.sleep(0.05)
    assert watch.summary() == summary  # the late answer is judged as it stood at the stop


@pytest.mark.parametrize(
    ("in_flight", "failed"),
    [(0.15, 0), (0.25, 1)],
    ids=["one-slow-round-trip-is-no-outage", "two-round-trips-unanswered-is-down"],
)
def test_a_poll_in_flight_at_the_stop_is_down_only_once_overdue(
    in_flight: float, failed: int
) -> None:
    # Answers take 100 ms (one round trip at the bench's +100 ms), as long as the interval:
    # a poll still on its way at the stop is no outage; one pending for more than twice
    # the interval and the slowest answer is.
    now = 0.0
    held = threading.Event()
    release = threading.Event()
    calls = 0

    def poll() -> bool:
        nonlocal calls, now
        calls += 1
        if calls <= 2:
            now += 0.1
            return True
        held.set()
        release.wait(10)
        return True

    watch = Watch(poll, interval=0.1, limit=1000.0, clock=lambda: now, join_timeout=0.2)
    watch.start()
    assert held.wait(5)
    now += in_flight
    summary = watch.stop()
    release.set()
    assert (summary.polls, summary.failed) == (2 + failed, failed)
    assert summary.longest_outage_s == pytest.approx(in_flight if failed else 0.0)


def test_a_watch_starts_once_and_refuses_nonsense() -> None:
    watch = Watch(lambda: True, interval=0.01, limit=1.0)
    watch.start()
    with pytest.raises(RuntimeError):
        watch.start()
    watch.stop()
    assert watch.stop() == watch.summary()  # stopping twice is harmless
    with pytest.raises(ValueError):
        Watch(lambda: True, interval=0, limit=1.0)


def test_the_summary_reads_as_people_expect() -> None:
    assert WatchSummary(17, 0, 0.0, 0.02).describe() == "0 of 17 health polls failed"
    assert WatchSummary(1, 1, 0.5, 0.02).describe() == "1 of 1 health poll failed"
