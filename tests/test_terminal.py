"""The "staging rehearsal" section of the terminal: failures first, passes collapsed (issue 14)."""

from __future__ import annotations

import pytest

from plugin_helpers import QUIET_CHECKS, TinyStaging, write_config, write_rollback_script
from pytest_rehearsal.report import CheckRecord, RehearsalReport
from pytest_rehearsal.terminal import summary_lines, verdict_fits
from records import rollback_record


def _finding(message: str, accepted: dict[str, str] | None = None) -> dict[str, object]:
    return {"rule": "r", "message": message, "accepted": accepted}


LONG_ID = "rehearsal::headers[/a/very/long/path/that/a/team/really/serves/to/its/customers]"
REPORT = RehearsalReport(
    staging_url="https://staging.example.com",
    started_at="2026-12-01T00:00:00Z",
    duration_s=1.0,
    checks=[
        CheckRecord("rehearsal::health", "health", "passed", owner="@platform", expect="GET /h"),
        CheckRecord(
            LONG_ID,
            "headers",
            "failed",
            owner="@security",
            findings=[
                _finding("X-Content-Type-Options: missing (expected nosniff)"),
                _finding("Referrer-Policy: missing (expected one of no-referrer, same-origin)"),
                _finding("X-Frame-Options: no framing protection"),
                _finding("Content-Security-Policy: missing"),
            ],
        ),
        CheckRecord(
            "rehearsal::headers[/]",
            "headers",
            "accepted",
            owner="@web",
            findings=[
                _finding(
                    "Content-Security-Policy: missing",
                    {"reason": "CSP rollout, WEB-123", "owner": "@web", "until": "2027-01-31"},
                )
            ],
        ),
        CheckRecord("rehearsal::secrets[/.env]", "secrets", "passed", owner="@security"),
    ],
    rollback=rollback_record(message="rolled back in 2.0 s"),
)


def test_failures_come_first_with_their_reasons_and_passes_are_one_line() -> None:
    lines = summary_lines(REPORT, 100)
    assert lines == [
        f"FAILED   {LONG_ID}  @security",
        "         X-Content-Type-Options: missing (expected nosniff)",
        "         Referrer-Policy: missing (expected one of no-referrer, same-origin)",
        "         X-Frame-Options: no framing protection",
        "         + 1 more (see above)",
        "ACCEPTED rehearsal::headers[/]  @web",
        "         accepted until 2027-01-31 (@web: CSP rollout, WEB-123): "
        "Content-Security-Policy: missing",
        "PASSED   2 checks (-v lists them)",
        "PASSED   rehearsal::rollback",
        "         rollback passed: staging answered (not shown to change what it serves), "
        "not restored (no",
        "         rollback.restore)",
    ]


def test_verbose_lists_every_row_with_what_it_expects() -> None:
    lines = summary_lines(REPORT, 200, verbose=True)
    assert "PASSED   rehearsal::health  @platform" in lines
    assert "         GET /h" in lines
    assert "PASSED   rehearsal::secrets[/.env]  @security" in lines


def test_an_80_column_terminal_wraps_and_never_cuts_an_id() -> None:
    lines = summary_lines(REPORT, 80)
    assert all(len(line) <= 80 for line in lines if LONG_ID not in line)
    assert f"FAILED   {LONG_ID}" in lines  # whole, the owner on a line of its own
    assert "         @security" in lines
    assert "…" not in "".join(lines)
    wrapped = " ".join(line.strip() for line in lines)
    assert "Referrer-Policy: missing (expected one of no-referrer, same-origin)" in wrapped


def test_a_long_verdict_is_written_plain_rather_than_squeezed_into_a_ruler() -> None:
    assert verdict_fits("verdict: ready — 1 of 1 checks passed", 80)
    assert not verdict_fits("verdict: blocked — " + "x" * 70, 80)


def test_in_an_80_column_ci_log_the_verdict_line_stays_one_line(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staging, url = tiny_staging
    staging.health_status = 503
    monkeypatch.setenv("COLUMNS", "80")
    write_rollback_script(pytester.path, "rollback.sh", "exit 0\n")
    write_config(pytester, QUIET_CHECKS + "rollback: {command: ./rollback.sh}\n")
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--tb=no", "-k", "health")
    verdict = [line for line in result.stdout.lines if "verdict:" in line]
    # 86 characters: too long for a ruler on 80 columns, so written whole, on one line.
    assert verdict == [
        "verdict: blocked — 0 of 1 checks passed, 1 failed, rollback not rehearsed (deselected)"
    ]


def test_checks_skipped_for_one_reason_share_one_row_and_notes_are_not_repeated() -> None:
    reason = "deploy failed: deploy command `./deploy.sh deploy 1.5.0` exited with status 7"
    note = "no rollback.restore is configured: staging was left on the previous release"
    report = RehearsalReport(
        staging_url="https://staging.example.com",
        started_at="2026-12-01T00:00:00Z",
        duration_s=1.0,
        checks=[
            CheckRecord("rehearsal::health", "health", "skipped", message=reason),
            CheckRecord("rehearsal::secrets[/.env]", "secrets", "skipped", message=reason),
            CheckRecord("test_user.py::test_a", "test_a", "skipped", owner="@web", message=reason),
            CheckRecord("rehearsal::tls", "tls", "skipped", message="staging is not https"),
        ],
        rollback=rollback_record("failed", message=f"the restore failed\n{note}", notes=(note,)),
    )
    lines = summary_lines(report, 200)
    assert lines[:4] == [
        "SKIPPED  3 checks (-v lists them)",
        f"         {reason}",
        "SKIPPED  rehearsal::tls",
        "         staging is not https",
    ]
    assert sum(note in line for line in lines) == 1  # in the message, not again as a note
    verbose = summary_lines(report, 200, verbose=True)
    assert "SKIPPED  test_user.py::test_a  @web" in verbose
    assert verbose.count(f"         {reason}") == 3
