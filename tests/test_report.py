from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_rehearsal.report import (
    CheckRecord,
    RehearsalReport,
    RollbackRecord,
    decide_verdict,
    render_markdown,
    report_json_text,
)
from pytest_rehearsal.report_files import write_atomically

PASSED = CheckRecord("rehearsal::health", "health", "passed", owner="@platform")
FAILED = CheckRecord(
    "rehearsal::headers[/]", "headers", "failed", owner="@web", message="GET /\n  expected: x"
)


@pytest.mark.parametrize(
    ("checks", "rollback", "interrupted", "verdict"),
    [
        ([PASSED], "passed", False, "ready"),
        ([], "passed", False, "ready"),
        ([PASSED, FAILED], "passed", False, "blocked"),
        ([PASSED], "failed", False, "blocked"),
        ([PASSED], "skipped", False, "incomplete"),
        ([FAILED], "skipped", False, "blocked"),
        ([PASSED], "passed", True, "blocked"),
        ([CheckRecord("x", "x", "error")], "passed", False, "blocked"),
        ([CheckRecord("x", "x", "skipped")], "passed", False, "ready"),
    ],
)
def test_verdict(checks: list[CheckRecord], rollback: str, interrupted: bool, verdict: str) -> None:
    assert decide_verdict(checks, RollbackRecord(rollback), interrupted=interrupted) == verdict


def _report(**kwargs: object) -> RehearsalReport:
    values: dict[str, object] = {
        "staging_url": "https://staging.example.com",
        "started_at": "2026-01-01T00:00:00Z",
        "duration_s": 1.23456,
        "checks": [PASSED, FAILED],
        "rollback": RollbackRecord("passed", ["./deploy.sh", "rollback"], 0, 3.2, owner="@oncall"),
    }
    values.update(kwargs)
    return RehearsalReport(**values)  # type: ignore[arg-type]


def test_json_report_follows_the_schema() -> None:
    document = json.loads(report_json_text(_report(), lambda text: text))
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


def test_markdown_summary_lists_every_check_and_the_failures() -> None:
    text = render_markdown(_report())
    assert text.startswith("## ❌ Staging rehearsal: blocked\n")
    assert "| `rehearsal::health` | passed | @platform |" in text
    assert "<code>rehearsal::headers[/]</code> (@web)" in text
    assert "- command: `./deploy.sh rollback`" in text
    ready = render_markdown(_report(checks=[PASSED]))
    assert ready.startswith("## ✅ Staging rehearsal: ready")
    assert "### Failures" not in ready


def test_reports_are_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    write_atomically(target, "first")
    write_atomically(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]
