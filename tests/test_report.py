from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_rehearsal.report import (
    CheckRecord,
    RehearsalReport,
    decide_verdict,
    report_json_text,
)
from pytest_rehearsal.report_files import write_atomically
from records import rollback_record

PASSED = CheckRecord("rehearsal::health", "health", "passed", owner="@platform")
FAILED = CheckRecord(
    "rehearsal::headers[/]", "headers", "failed", owner="@web", message="GET /\n  expected: x"
)


def _report(**kwargs: object) -> RehearsalReport:
    values: dict[str, object] = {
        "staging_url": "https://staging.example.com",
        "started_at": "2026-01-01T00:00:00Z",
        "duration_s": 1.23456,
        "checks": [PASSED, FAILED],
        "rollback": rollback_record(owner="@oncall"),
    }
    values.update(kwargs)
    return RehearsalReport(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({"checks": [PASSED]}, "ready"),
        ({"checks": []}, "ready"),
        ({}, "blocked"),
        ({"checks": [PASSED], "rollback": rollback_record("failed")}, "blocked"),
        ({"checks": [PASSED], "not_rehearsed": ["rehearsal::rollback"]}, "incomplete"),
        ({"not_rehearsed": ["rehearsal::rollback"]}, "blocked"),
        ({"checks": [PASSED], "interrupted": True}, "blocked"),
        ({"checks": [CheckRecord("x", "x", "error")]}, "blocked"),
        ({"checks": [CheckRecord("x", "x", "accepted")]}, "ready"),
        ({"checks": [PASSED], "not_rehearsed": ["rehearsal::headers[/]"]}, "incomplete"),
        ({"checks": [PASSED], "collection_errors": ["test_x.py"]}, "blocked"),
        ({"checks": [PASSED], "other_failures": 1}, "blocked"),
        ({"checks": [PASSED], "error": "bad config"}, "blocked"),
    ],
)
def test_verdict(changes: dict[str, object], verdict: str) -> None:
    assert decide_verdict(_report(**changes)) == verdict


def test_masking_touches_values_never_the_reports_own_words() -> None:
    report = _report(checks=[CheckRecord("rehearsal::x", "x", "accepted", message="accepted: ok")])
    masked = report.masked(lambda text: text.replace("accepted", "***"))
    document = masked.to_json()
    assert document["checks"][0]["outcome"] == "accepted"
    assert document["checks"][0]["message"] == "***: ok"
    assert document["verdict"] == "ready"


def test_json_report_follows_the_schema() -> None:
    document = json.loads(report_json_text(_report()))
    assert document["schema"] == "pytest-rehearsal/report@1"
    assert document["verdict"] == "blocked"
    assert document["duration_s"] == 1.235
    assert set(document["checks"][0]) >= {
        "id",
        "name",
        "outcome",
        "owner",
        "expect",
        "rollback_note",
        "message",
        "duration_s",
    }
    assert set(document["rollback"]) >= {
        "outcome",
        "command",
        "exit_code",
        "duration_s",
        "message",
        "output_tail",
        "owner",
        "note",
    }


def test_reports_are_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    write_atomically(target, "first")
    write_atomically(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]
