"""``rehearsal::health``: the service answers its health endpoint as expected, fast enough."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..answers import describe_answer, judge_answer
from ..config import HealthCheckConfig, Meta
from ..units import format_duration, format_elapsed
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict, fail

if TYPE_CHECKING:
    from ..config import RehearsalConfig

__all__ = ["HealthCheck", "build"]


class HealthCheck(Check):
    """GET the health path; judge status, JSON subset and latency."""

    def __init__(self, spec: HealthCheckConfig, meta: Meta) -> None:
        super().__init__("health", None, meta)
        self.spec = spec

    def describe_expectation(self) -> str:
        text = f"GET {self.spec.path} answers " + describe_answer(
            self.spec.expect_status, self.spec.expect_json
        )
        if self.spec.max_latency is not None:
            text += f" within {format_duration(self.spec.max_latency)}"
        return text

    def probe(self) -> Probe:
        return Probe("GET", self.spec.path)

    def run(self, seen: ReplyLog) -> CheckRun:
        (reply,) = yield [self.probe()]
        return self.judge(reply)

    def judge(self, reply: Reply) -> Verdict:
        """The verdict on the health reply (pure)."""
        spec = self.spec
        expected = describe_answer(spec.expect_status, spec.expect_json)
        if not judge_answer(reply.status, reply.body, spec.expect_status, spec.expect_json):
            why = self.why(reply)
            if not why:
                return fail(reply, expected, rule="unexpected-answer")
            got = f"{reply.describe()} · {why}"
            message = f"expected {expected}, got {reply.status_line}: {why}"
            return fail(reply, expected, got, rule="unexpected-answer", message=message)
        if spec.max_latency is not None and reply.elapsed > spec.max_latency:
            limit = format_duration(spec.max_latency)
            took = format_elapsed(reply.elapsed)
            return fail(
                reply,
                f"{expected} within {limit}",
                f"{reply.status} after {took} (too slow)",
                rule="too-slow",
                message=f"answered after {took}, slower than the {limit} max_latency",
            )
        return Verdict.ok(f"{reply.status} in {format_elapsed(reply.elapsed)}")

    def why(self, reply: Reply) -> str:
        """What a wrong answer means, beyond its status line and body ("" when nothing)."""
        if reply.status == 404 and self.spec.expect_status != 404:
            return "the health path does not exist on staging: check checks.health.path"
        if reply.status == self.spec.expect_status and self.spec.expect_json:
            parsed = reply.json()
            return "" if parsed.ok else parsed.problem
        return ""


def build(config: RehearsalConfig) -> list[Check]:
    """The health check, unless ``checks.health: false``."""
    spec = config.checks.health
    if spec is None:
        return []
    defaults = Meta(owner=config.defaults.owner, rollback_note=config.defaults.rollback_note)
    return [HealthCheck(spec, spec.meta.merged_over(defaults))]
