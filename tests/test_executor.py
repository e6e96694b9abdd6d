"""The executor drives checks side by side: one round trip per dependent step, not per request."""

from __future__ import annotations

import threading
import time

from pytest_rehearsal.checks._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict
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

    def __call__(self, probe: Probe) -> Reply:
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
    outcomes = execute(checks, send, log)
    assert all(o.verdict is not None and o.verdict.passed for o in outcomes.values())
    assert len(log) == 5 * 2 * 3
    assert send.peak > 3  # several checks' probes were in flight at once


def test_runs_last_checks_see_every_other_reply() -> None:
    log = ReplyLog()
    scanner = Chain("scan", depth=0, width=0, runs_last=True)
    execute([scanner, Chain("a", 2, 2), Chain("b", 1, 3)], Recorder(log), log)
    assert scanner.seen_count == 2 * 2 + 3


def test_a_broken_check_is_an_error_and_the_others_still_finish() -> None:
    log = ReplyLog()
    outcomes = execute([Broken("broken", None, Meta()), Chain("ok", 2, 1)], Recorder(log), log)
    assert isinstance(outcomes["broken"].error, RuntimeError)
    assert outcomes["ok"].verdict == Verdict.ok()
