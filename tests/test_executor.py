"""The executor drives checks side by side: one round trip per dependent step, not per request."""

from __future__ import annotations

import ssl
import threading
import time

from pytest_rehearsal.checks._base import (
    Action,
    ActionContext,
    Check,
    CheckRun,
    Probe,
    Reply,
    ReplyLog,
    Request,
    Verdict,
)
from pytest_rehearsal.config import Meta
from pytest_rehearsal.executor import execute


class Chain(Check):
    """Sends *depth* dependent batches of *width* requests each."""

    def __init__(self, name: str, depth: int, width: int, runs_last: bool = False) -> None:
        super().__init__(name, None, Meta())
        self.depth, self.width, self.runs_last = depth, width, runs_last
        self.seen_count = -1

    def describe_expectation(self) -> str:
        return "every reply is 200"

    def run(self, seen: ReplyLog) -> CheckRun:
        for step in range(self.depth):
            replies = yield [Probe("GET", f"/{self.name}/{step}/{i}") for i in range(self.width)]
            assert [r.probe.path for r in replies] == [
                f"/{self.name}/{step}/{i}" for i in range(self.width)
            ]
        self.seen_count = len(seen)
        return Verdict.ok()


class Broken(Check):
    def describe_expectation(self) -> str:
        return "nothing"

    def run(self, seen: ReplyLog) -> CheckRun:
        yield [Probe("GET", "/x")]
        raise RuntimeError("bug in a check")


class Recorder:
    def __init__(self, log: ReplyLog, delay: float = 0.0) -> None:
        self.log, self.delay = log, delay
        self.rounds: list[int] = []
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, probe: Probe, not_after: float) -> Reply:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        reply = Reply(probe, "http://staging" + probe.path, 200)
        self.log.add(reply)
        return reply


def test_independent_requests_are_sent_together() -> None:
    log = ReplyLog()
    send = Recorder(log, delay=0.05)
    checks = [Chain(f"c{i}", depth=2, width=3) for i in range(5)]
    outcomes = execute(checks, send, log, timeout=5.0)
    assert all(o.verdict is not None and o.verdict.passed for o in outcomes.values())
    assert len(log) == 5 * 2 * 3
    assert send.peak > 3  # several checks' probes were in flight at once


def test_runs_last_checks_see_every_other_reply() -> None:
    log = ReplyLog()
    scanner = Chain("scan", depth=0, width=0, runs_last=True)
    execute([scanner, Chain("a", 2, 2), Chain("b", 1, 3)], Recorder(log), log, timeout=5.0)
    assert scanner.seen_count == 2 * 2 + 3


def test_a_broken_check_is_an_error_and_the_others_still_finish() -> None:
    log = ReplyLog()
    outcomes = execute(
        [Broken("broken", None, Meta()), Chain("ok", 2, 1)], Recorder(log), log, timeout=5.0
    )
    assert isinstance(outcomes["broken"].error, RuntimeError)
    assert outcomes["ok"].verdict == Verdict.ok()


class Paced(Check):
    """Two dependent requests; records when its second one was sent."""

    def __init__(self, name: str, first_path: str) -> None:
        super().__init__(name, None, Meta())
        self.first_path = first_path
        self.second_sent_at = 0.0

    def describe_expectation(self) -> str:
        return "two answers"

    def run(self, seen: ReplyLog) -> CheckRun:
        yield [Probe("GET", self.first_path)]
        self.second_sent_at = time.monotonic()
        yield [Probe("GET", f"/{self.name}/second")]
        return Verdict.ok()


def test_a_check_goes_on_as_soon_as_its_own_replies_are_in() -> None:
    log = ReplyLog()

    def send(probe: Probe, not_after: float) -> Reply:
        if probe.path == "/slow":
            time.sleep(0.5)
        return Reply(probe, "http://staging" + probe.path, 200)

    fast, slow = Paced("fast", "/fast"), Paced("slow", "/slow")
    started = time.monotonic()
    execute([fast, slow], send, log, timeout=5.0)
    # No lockstep rounds: the fast check's second request did not wait for /slow.
    assert fast.second_sent_at - started < 0.25
    assert slow.second_sent_at - started >= 0.5


def test_the_driver_sleeps_while_part_of_a_batch_is_pending() -> None:
    log = ReplyLog()

    def send(probe: Probe, not_after: float) -> Reply:
        if probe.path.endswith("/1"):
            time.sleep(1.0)  # one reply of the batch takes a second; the other is in at once
        return Reply(probe, "http://staging" + probe.path, 200)

    cpu = time.thread_time()
    execute([Chain("pair", depth=1, width=2)], send, log, timeout=5.0)
    # Waiting on a future that is already done returns at once: the driver used to spin
    # for the whole second, holding the GIL the request threads need.
    assert time.thread_time() - cpu < 0.3


def test_every_request_of_a_batch_ends_by_the_batch_start_plus_the_timeout() -> None:
    log = ReplyLog()
    deadlines: list[float] = []

    def send(probe: Probe, not_after: float) -> Reply:
        deadlines.append(not_after)
        return Reply(probe, "http://staging" + probe.path, 200)

    started = time.monotonic()
    execute([Chain("wide", depth=1, width=100)], send, log, timeout=2.0)
    # 100 requests queue for 32 threads, yet all share the deadline of their batch.
    assert len(set(deadlines)) == 1
    assert started + 2.0 <= deadlines[0] < started + 2.5


class Handshake(Action):
    def perform(self, context: ActionContext, not_after: float) -> object:
        return f"handshake with {context.staging_url}"


class UsesAnAction(Check):
    def describe_expectation(self) -> str:
        return "a handshake and a page"

    def run(self, seen: ReplyLog) -> CheckRun:
        result, reply = yield [Handshake(), Probe("GET", "/")]
        return Verdict.ok(f"{result}; {reply.status}")


def test_actions_are_performed_beside_probes_and_answered_in_order() -> None:
    log = ReplyLog()
    context = ActionContext("https://staging.test", 1.0, ssl.create_default_context(), str)

    def send(request: Request, not_after: float) -> object:
        if isinstance(request, Probe):
            return Reply(request, "https://staging.test/", 204)
        return request.perform(context, not_after)

    outcomes = execute([UsesAnAction("tls", None, Meta())], send, log, timeout=1.0)
    verdict = outcomes["tls"].verdict
    assert verdict is not None
    assert verdict.message == "handshake with https://staging.test; 204"
