"""``rehearsal::health``: status, JSON subset and latency, and what a wrong answer means."""

from __future__ import annotations

import dataclasses

import pytest

from checkdriver import answer, drive
from pytest_rehearsal.checks._base import Probe, Reply, Verdict
from pytest_rehearsal.checks.health import HealthCheck
from pytest_rehearsal.config import HealthCheckConfig, Meta


def health(**spec: object) -> HealthCheck:
    return HealthCheck(HealthCheckConfig(**spec), Meta())  # type: ignore[arg-type]


def judge(
    status: int | None,
    body: bytes | str = b"",
    content_type: str = "application/json",
    *,
    check: HealthCheck | None = None,
    **fields: object,
) -> Verdict:
    def respond(probe: Probe) -> Reply:
        made = answer(probe, status, [("Content-Type", content_type)], body)
        return dataclasses.replace(made, **fields)  # type: ignore[arg-type]

    return drive(check or health(expect_json={"ok": True}), respond)


def test_the_expected_answer_passes_with_the_measured_time() -> None:
    verdict = judge(200, '{"ok": true}', elapsed=0.0123)
    assert verdict.passed
    assert verdict.message == "200 in 12 ms"


def test_a_binary_body_says_not_json_and_prints_no_bytes() -> None:
    verdict = judge(200, bytes(range(64)), "application/octet-stream")
    (found,) = verdict.findings
    assert "64 bytes of application/octet-stream (not text) · not JSON" in found.got
    assert found.message.endswith("got 200: not JSON")
    assert "\\x0" not in verdict.message


def test_json_nested_too_deep_is_a_judged_failure() -> None:
    verdict = judge(200, "[" * 200_000 + "]" * 200_000)
    assert not verdict.passed
    assert "JSON nested deeper than 64 levels" in verdict.message


def test_a_404_points_at_the_health_path_setting() -> None:
    verdict = judge(404, "<html><title>Not Found</title></html>", "text/html")
    (found,) = verdict.findings
    assert found.message == (
        'expected status 200 with JSON containing {"ok": true}, got 404: the health path '
        "does not exist on staging: check checks.health.path"
    )


def test_a_retried_503_shows_its_attempts() -> None:
    verdict = judge(503, b"", reason="Service Unavailable", attempts=2)
    assert "got:      503 Service Unavailable after 2 attempts · empty body" in verdict.message


@pytest.mark.parametrize(("elapsed", "took"), [(3.00955, "3.0 s"), (0.25, "250 ms")])
def test_too_slow_uses_one_duration_format(elapsed: float, took: str) -> None:
    check = health(max_latency=0.2)
    verdict = judge(200, b"{}", check=check, elapsed=elapsed)
    (found,) = verdict.findings
    assert found.message == f"answered after {took}, slower than the 200 ms max_latency"


def test_a_wrong_json_value_shows_the_body() -> None:
    verdict = judge(200, '{"ok": false}')
    assert 'got:      200 · {"ok": false}' in verdict.message
