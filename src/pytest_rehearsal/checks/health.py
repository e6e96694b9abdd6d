"""``rehearsal::health``: the service answers its health endpoint as expected, fast enough."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import HealthCheckConfig, Meta
from ..units import format_duration
from ._base import Check, CheckRun, Probe, ReplyLog, Verdict, fail

if TYPE_CHECKING:
    from ..config import RehearsalConfig

__all__ = ["HealthCheck", "build", "describe_answer", "json_contains", "judge_answer"]


def json_contains(actual: Any, expected: Any) -> bool:
    """Whether *actual* holds *expected* as a subset: mappings by key, recursively; else equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and json_contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected  # true is not 1
    return bool(actual == expected)


def describe_answer(status: int, expect_json: Mapping[str, Any] | None) -> str:
    """``status 200 with JSON containing {"ok": true}``: the expectation in words."""
    text = f"status {status}"
    if expect_json:
        text += f" with JSON containing {json.dumps(expect_json, sort_keys=True)}"
    return text


def judge_answer(
    status: int | None, body: bytes, expect_status: int, expect_json: Mapping[str, Any] | None
) -> bool:
    """Whether a reply meets a status and JSON-subset expectation (health and rollback verify)."""
    if status != expect_status:
        return False
    if not expect_json:
        return True
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return json_contains(document, expect_json)


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
        spec = self.spec
        expected = describe_answer(spec.expect_status, spec.expect_json)
        if not judge_answer(reply.status, reply.body, spec.expect_status, spec.expect_json):
            return fail(reply, expected)
        if spec.max_latency is not None and reply.elapsed > spec.max_latency:
            return fail(
                reply,
                f"{expected} within {format_duration(spec.max_latency)}",
                f"{reply.status} after {format_duration(reply.elapsed)} (too slow)",
            )
        return Verdict.ok(f"{reply.status} in {format_duration(reply.elapsed)}")


def build(config: RehearsalConfig) -> list[Check]:
    """The health check, unless ``checks.health: false``."""
    spec = config.checks.health
    if spec is None:
        return []
    defaults = Meta(owner=config.defaults.owner, rollback_note=config.defaults.rollback_note)
    return [HealthCheck(spec, spec.meta.merged_over(defaults))]
