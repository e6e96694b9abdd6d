"""The executor's round: identical safe requests go out once, uploads beside the pool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pytest_rehearsal.checks import build_checks
from pytest_rehearsal.checks._base import Check, CheckRun, Probe, Reply, ReplyLog, Upload, Verdict
from pytest_rehearsal.checks.secrets import ExposureCheck
from pytest_rehearsal.config import Meta
from pytest_rehearsal.config_loader import parse_config
from pytest_rehearsal.executor import MAX_PARALLEL_REQUESTS, execute


class Asks(Check):
    """Sends one batch of *probes* and records the replies it was given."""

    def __init__(self, name: str, *probes: Probe) -> None:
        super().__init__(name, None, Meta())
        self.probes = probes
        self.replies: list[Reply] = []

    def describe_expectation(self) -> str:
        return "anything"

    def run(self, seen: ReplyLog) -> CheckRun:
        self.replies = list((yield list(self.probes)))
        return Verdict.ok()


def serve(sent: list[Probe], log: ReplyLog) -> Callable[[Probe, float], Reply]:
    """A fake staging that records every probe sent and answers 200 with the path."""

    def send(probe: Probe, not_after: float) -> Reply:
        sent.append(probe)
        reply = Reply(probe, "http://staging" + probe.path, 200, body=probe.path.encode())
        log.add(reply)
        return reply

    return send


def test_identical_gets_of_a_round_are_sent_once_and_answer_every_check() -> None:
    log, sent = ReplyLog(), list[Probe]()
    baseline = Probe("GET", "/__rehearsal_x")
    a = Asks("a", baseline, Probe("GET", "/.env"))
    b = Asks("b", baseline, Probe("GET", "/.git/config"))
    execute([a, b], serve(sent, log), log, timeout=5.0)
    assert sorted(p.path for p in sent) == ["/.env", "/.git/config", "/__rehearsal_x"]
    assert [r.probe.path for r in a.replies] == ["/__rehearsal_x", "/.env"]
    assert [r.probe.path for r in b.replies] == ["/__rehearsal_x", "/.git/config"]
    assert a.replies[0] is b.replies[0]
    assert len(log) == 3


def test_requests_that_differ_or_may_change_staging_are_all_sent() -> None:
    log, sent = ReplyLog(), list[Probe]()
    order = Probe("POST", "/orders", json={"sku": "A1"})
    anonymous = Probe("GET", "/admin", credentials=None)
    checks = [
        Asks("a", order, anonymous, Probe("GET", "/admin")),
        Asks("b", order, anonymous, Probe("GET", "/admin", headers=(("Origin", "x"),))),
    ]
    execute(checks, serve(sent, log), log, timeout=5.0)
    assert [p.method for p in sent].count("POST") == 2  # never merged: not idempotent
    assert sent.count(anonymous) == 1
    assert len(sent) == 5


def test_the_secrets_checks_of_one_run_share_their_soft_404_baseline(tmp_path: Path) -> None:
    text = "checks:\n  secrets: {paths: [/.env, /.git/config, /.git/HEAD]}\n"
    config = parse_config(text, tmp_path / "rehearsal.yaml")
    exposures = [c for c in build_checks(config) if isinstance(c, ExposureCheck)]
    assert len(exposures) == 3
    assert len({c.baseline_path for c in exposures}) == 1
    log, sent = ReplyLog(), list[Probe]()
    execute(exposures, serve(sent, log), log, timeout=5.0)
    assert len(sent) == 4  # one baseline and three paths


def test_uploads_do_not_wait_for_a_thread_of_the_pooled_requests() -> None:
    # MAX_PARALLEL_REQUESTS GETs fill the pool; the upload must be in flight beside them.
    everyone = threading.Barrier(MAX_PARALLEL_REQUESTS + 1, timeout=10)
    broken: list[str] = []

    def send(probe: Probe, not_after: float) -> Reply:
        try:
            everyone.wait()
        except threading.BrokenBarrierError:
            broken.append(probe.path)
        return Reply(probe, "http://staging" + probe.path, 200)

    gets = [Probe("GET", f"/{i}") for i in range(MAX_PARALLEL_REQUESTS)]
    upload = Probe("POST", "/upload", upload=Upload("file", 2048), idempotent=False)
    log = ReplyLog()
    execute([Asks("a", *gets, upload)], send, log, timeout=5.0)
    assert broken == []
