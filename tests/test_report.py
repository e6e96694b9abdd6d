from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_rehearsal.report import (
    CheckRecord,
    RehearsalReport,
    decide_verdict,
    failure_reasons,
    report_json_text,
)
from pytest_rehearsal.report_files import append_text, write_atomically
from records import rollback_record

PASSED = CheckRecord("rehearsal::health", "health", "passed", owner="@platform")
FAILED = CheckRecord(
    "rehearsal::headers[/]", "headers", "failed", owner="@web", message="GET /\n  expected: x"
)


def test_a_failure_s_reasons_are_its_findings_not_accepted_else_its_message_lines() -> None:
    accepted = {"rule": "r", "message": "CSP: missing", "accepted": {"reason": "WEB-1"}}
    blocking = {"rule": "r", "message": "X-Frame-Options: missing", "accepted": None}
    assert failure_reasons([accepted, blocking], "GET /\n  got: 200") == [
        "X-Frame-Options: missing"
    ]
    traceback = "\n  def test_x():\n\n>     assert False\nE     assert False\n"
    assert failure_reasons([accepted], traceback) == [
        "  def test_x():",
        ">     assert False",
        "E     assert False",
    ]
    assert failure_reasons([], traceback, most_lines=1) == ["  def test_x():"]
    assert failure_reasons([], " \n") == []


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


# -- any text, the JUnit file's mode, the path in every error (issue 11.6, 11.16) -----------

UNDECODABLE = os.fsdecode(b"x-\xff")  # "x-\udcff": what a non-UTF-8 byte becomes in Python


def test_a_report_holding_lone_surrogates_is_written_and_stays_json(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    document = {"message": f"AssertionError: {UNDECODABLE} \ud800", "ok": "é ✓"}
    write_atomically(target, json.dumps(document, ensure_ascii=False))
    # The surrogate is written as its escape, which JSON reads back as the same character.
    assert "x-\\udcff" in target.read_text(encoding="utf-8")
    assert json.loads(target.read_text(encoding="utf-8")) == document


def test_append_text_appends_any_text(tmp_path: Path) -> None:
    target = tmp_path / "step-summary.md"
    append_text(target, "## one\n")
    append_text(target, f"## {UNDECODABLE}\n")
    assert target.read_text(encoding="utf-8") == "## one\n## x-\\udcff\n"


def _modes_under_umask(tmp_path: Path, umask: int) -> tuple[int, int, int]:
    """(report, appended file, a file made like pytest's JUnit XML) modes under *umask*."""
    code = textwrap.dedent(
        f"""
        import os, stat, sys
        from pathlib import Path
        from pytest_rehearsal.report_files import append_text, write_atomically
        os.umask({umask:#o})
        base = Path(sys.argv[1])
        write_atomically(base / "report.json", "{{}}")
        append_text(base / "summary.md", "x")
        with open(base / "junit.xml", "w") as handle:  # what pytest's junitxml does
            handle.write("<x/>")
        print(*(stat.S_IMODE((base / n).stat().st_mode) for n in
                ("report.json", "summary.md", "junit.xml")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report, summary, junit = map(int, result.stdout.split())
    return report, summary, junit


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_report_files_get_the_mode_of_the_junit_file(tmp_path: Path, umask: int, mode: int) -> None:
    assert _modes_under_umask(tmp_path, umask) == (mode, mode, mode)


def test_a_write_beyond_the_file_size_limit_names_the_report_path(tmp_path: Path) -> None:
    """A full disk, for real: RLIMIT_FSIZE makes write() fail with EFBIG (SIGXFSZ ignored)."""
    code = textwrap.dedent(
        """
        import resource, signal, sys
        from pathlib import Path
        from pytest_rehearsal.report_files import append_text, write_atomically
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        target = Path(sys.argv[1])
        for write in (write_atomically, append_text):
            try:
                write(target, "x" * 100_000)
            except OSError as exc:
                print(exc.errno, exc.filename)
        """
    )
    target = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == [f"{errno.EFBIG} {target}"] * 2
    # The atomic write left no temporary file; the append got as far as the limit.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert target.stat().st_size == 4096
