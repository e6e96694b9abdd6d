"""The Markdown summary: verdict first, blockers before passes, a Mermaid timeline (issue 14)."""

from __future__ import annotations

import re

from pytest_rehearsal.markdown import Phase, gantt, render_markdown
from pytest_rehearsal.report import CheckRecord, RehearsalReport
from records import rollback_record

FAILED = CheckRecord(
    "rehearsal::headers[/]",
    "headers",
    "failed",
    owner="@security",
    expect="GET / carries the secure-headers policy",
    rollback_note="Headers ship with the app",
    message="GET https://staging/\n  expected: the html policy",
    findings=[{"rule": "X-Frame-Options", "message": "X-Frame-Options: missing", "accepted": None}],
)
PASSES = [CheckRecord(f"rehearsal::secrets[/p{n}]", "secrets", "passed") for n in range(30)]
ACCEPTED = CheckRecord(
    "rehearsal::headers[/health]",
    "headers",
    "accepted",
    findings=[
        {
            "rule": "CSP",
            "message": "Content-Security-Policy: missing",
            "accepted": {"reason": "CSP rollout, WEB-123", "owner": "@web", "until": "2027-01-31"},
        }
    ],
)
PHASES = [
    Phase("Checks", "33 checks", 1_764_633_600.0, 1.2, "passed"),
    Phase("Rollback", "command: ./deploy.sh rollback", 1_764_633_601.5, 0.4, "passed"),
    Phase("Rollback", "verify #1", 1_764_633_601.9, 2.0, "failed"),
]


def _summary() -> str:
    report = RehearsalReport(
        staging_url="https://staging.example.com",
        started_at="2026-12-01T00:00:00Z",
        duration_s=4.2,
        checks=[*PASSES[:15], FAILED, *PASSES[15:], ACCEPTED],
        rollback=rollback_record(),
    )
    return render_markdown(report, PHASES)


def test_the_verdict_comes_first_then_what_blocks_then_everything_else_collapsed() -> None:
    text = _summary()
    assert text.startswith("## ❌ Staging rehearsal: blocked\n\n> **Blocked: do not promote")
    blockers = text.index("### What blocks the release")
    row = (
        "| `rehearsal::headers[/]` | @security | GET / carries the secure-headers policy | "
        "X-Frame-Options: missing | Headers ship with the app |"
    )
    assert text.index(row) > blockers
    # Every pass comes after the blocker, inside a collapsed block.
    assert all(text.index(f"`{check.id}`") > text.index(row) for check in PASSES)
    passes = text.index("<details><summary>30 other checks: passed or skipped</summary>")
    assert passes > text.index("### Rollback") > blockers
    accepted = text.index("<details><summary>Accepted findings (1)</summary>")
    assert (
        "| `rehearsal::headers[/health]` | Content-Security-Policy: missing | CSP rollout, "
        in (text[accepted:])
    )


_TASK = re.compile(r"^    [^:#;]+ :(done|crit|active), p\d+, (\d+), (\d+)$")


def _valid_gantt(lines: list[str]) -> None:
    """A small validator of the gantt syntax this summary uses (mermaid-js docs: gantt)."""
    assert lines[0] == "gantt"
    assert lines[1].startswith("    title ")
    assert lines[2] == "    dateFormat x"
    assert lines[3].startswith("    axisFormat ")
    seen_section = False
    for line in lines[4:]:
        if line.startswith("    section "):
            seen_section = True
            continue
        match = _TASK.match(line)
        assert match, f"not a gantt task line: {line!r}"
        assert seen_section, "a task before any section"
        assert int(match.group(3)) > int(match.group(2)), "a bar must end after it starts"


def test_the_timeline_is_a_mermaid_gantt_chart_that_parses() -> None:
    text = _summary()
    block = text[text.index("```mermaid\n") + len("```mermaid\n") :]
    lines = block[: block.index("```")].rstrip("\n").splitlines()
    _valid_gantt(lines)
    assert "    section Checks" in lines
    assert "    command ./deploy.sh rollback :done, p1, 1764633601500, 1764633601900" in lines
    assert "    verify 1 :crit, p2, 1764633601900, 1764633603900" in lines


def test_a_zero_length_phase_still_draws_a_bar() -> None:
    (task,) = gantt([Phase("Rollback", "baseline", 10.0, 0.0, "passed")])[5:]
    assert task == "    baseline :done, p0, 10000, 10001"
