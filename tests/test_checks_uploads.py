"""The ``uploads`` check: small body accepted, max_bytes + 1 refused with 413, resets."""

from __future__ import annotations

import pytest

from checkdriver import Recorder, answer, drive
from pytest_rehearsal.checks import uploads
from pytest_rehearsal.checks._base import Probe, Reply, Upload, Verdict
from pytest_rehearsal.checks.uploads import UploadCheck
from pytest_rehearsal.config import ChecksConfig, RehearsalConfig, UploadsCheckConfig

MIB = 1024 * 1024
RESET = "connection closed without a response (reset after 1310720 bytes sent)"


def check(max_bytes: int = MIB, field: str = "file") -> UploadCheck:
    section = UploadsCheckConfig(path="/upload", max_bytes=max_bytes, field=field)
    (built,) = uploads.build(RehearsalConfig(checks=ChecksConfig(uploads=section)))
    assert isinstance(built, UploadCheck)
    return built


def run(
    small: tuple[int | None, str | None], big: tuple[int | None, str | None], **kw: int
) -> Verdict:
    def respond(probe: Probe) -> Reply:
        assert probe.upload is not None
        status, error = small if probe.upload.size <= 1024 else big
        return answer(probe, status, [("Server", "nginx")], "{}" if status else b"", error=error)

    return drive(check(**kw), respond)


def test_build() -> None:
    assert uploads.build(RehearsalConfig()) == []
    assert check().id == "uploads[/upload]"


def test_both_uploads_in_one_batch_sized_and_not_idempotent() -> None:
    recorder = Recorder(lambda p: answer(p, 201 if p.upload and p.upload.size == 1024 else 413))
    assert drive(check(max_bytes=10 * MIB, field="doc"), recorder).passed
    (batch,) = recorder.rounds
    assert [p.upload for p in batch] == [Upload("doc", 1024), Upload("doc", 10 * MIB + 1)]
    assert all(p.method == "POST" and not p.is_idempotent for p in batch)


def test_small_limit_keeps_the_small_body_within_it() -> None:
    assert check(max_bytes=600).small_size == 600


def test_limit_enforced_passes_and_names_the_hop() -> None:
    verdict = run((201, None), (413, None))
    assert verdict.passed
    assert "413 for 1048577 bytes (answered by Server: nginx)" in verdict.message


def test_reset_without_status_is_reported_as_such() -> None:
    verdict = run((201, None), (None, RESET))
    assert not verdict.passed
    assert (
        "rejected without a status (connection closed without a response (reset after"
        in verdict.message
    )
    assert "nginx often closes the connection after an early 413" in verdict.message
    assert "a proxy hop may have eaten the 413" in verdict.message
    assert "retry:    not safe" in verdict.message


def test_over_limit_accepted_fails() -> None:
    verdict = run((201, None), (201, None))
    assert "accepted a body over the limit" in verdict.message
    assert "expected: 413 for an upload of max_bytes + 1 (1048577 bytes)" in verdict.message


@pytest.mark.parametrize(
    ("big", "text"),
    [
        ((400, None), "refused with 400 instead of 413"),
        ((502, None), "the server failed instead of refusing"),
        ((None, "no response within 10 s (100 bytes sent)"), "no response within 10 s"),
    ],
)
def test_other_big_outcomes_fail(big: tuple[int | None, str | None], text: str) -> None:
    verdict = run((201, None), big)
    assert not verdict.passed
    assert text in verdict.message


@pytest.mark.parametrize(
    ("small", "text"),
    [
        ((413, None), "the small body was refused as too large (answered by Server: nginx)"),
        ((422, None), "the small body was refused (422)"),
        ((500, None), "the server failed on a small upload"),
        ((None, RESET), "no response (connection closed"),
    ],
)
def test_small_body_problems_fail(small: tuple[int | None, str | None], text: str) -> None:
    verdict = run(small, (413, None))
    assert not verdict.passed
    assert text in verdict.message
    assert "expected: the 1KiB upload accepted (2xx)" in verdict.message


def test_both_problems_are_reported_together() -> None:
    verdict = run((422, None), (201, None))
    assert verdict.message.count("  expected: ") == 2
