"""The rehearsal's outcome: verdict, JSON report, Markdown summary and terminal rows.

Pure logic over plain records; the plugin collects the records from pytest's reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SCHEMA",
    "CheckRecord",
    "RehearsalReport",
    "RollbackRecord",
    "decide_verdict",
    "render_markdown",
    "terminal_rows",
]

SCHEMA = "pytest-rehearsal/report@1"
FAILING = frozenset({"failed", "error"})
VERDICT_MARKS = {"ready": "✅", "blocked": "❌", "incomplete": "⚠️"}


@dataclass(frozen=True)
class CheckRecord:
    """One check (built-in or user-written) as it ended."""

    id: str
    name: str
    outcome: str  # passed | failed | error | skipped
    owner: str | None = None
    expect: str | None = None
    rollback_note: str | None = None
    message: str = ""
    duration_s: float = 0.0
    # Extra facts a check reports, such as the ASVS requirement it maps to.
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RollbackRecord:
    """The rollback rehearsal as it ended."""

    outcome: str  # passed | failed | skipped
    command: list[str] = field(default_factory=list)
    exit_code: int | None = None
    duration_s: float = 0.0
    message: str = ""
    output_tail: str = ""
    owner: str | None = None
    note: str | None = None
    expect: str | None = None
    phase: str = ""


def decide_verdict(
    checks: Sequence[CheckRecord],
    rollback: RollbackRecord,
    *,
    interrupted: bool,
    other_failures: int = 0,
) -> str:
    """``blocked`` if anything failed or the run was cut short; ``incomplete`` without rollback.

    *other_failures* counts failed tests outside the checklist: they fail the pytest run, so
    a report that said ``ready`` beside exit status 1 would mislead a gate that reads it.
    """
    failed = other_failures or any(c.outcome in FAILING for c in checks)
    if interrupted or failed or rollback.outcome == "failed":
        return "blocked"
    if rollback.outcome != "passed":
        return "incomplete"
    return "ready"


@dataclass(frozen=True)
class RehearsalReport:
    """The whole outcome; :meth:`to_json` is the ``--rehearsal-report`` document."""

    staging_url: str
    started_at: str
    duration_s: float
    checks: Sequence[CheckRecord]
    rollback: RollbackRecord
    interrupted: bool = False
    config_path: str | None = None
    other_failures: int = 0  # failed tests outside the checklist

    @property
    def verdict(self) -> str:
        return decide_verdict(
            self.checks,
            self.rollback,
            interrupted=self.interrupted,
            other_failures=self.other_failures,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "staging_url": self.staging_url,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "verdict": self.verdict,
            "interrupted": self.interrupted,
            "other_failures": self.other_failures,
            "config": self.config_path,
            "checks": [_rounded(asdict(check)) for check in self.checks],
            "rollback": _rounded(asdict(self.rollback)),
        }

    def verdict_line(self) -> str:
        """One sentence for the terminal and the summary heading."""
        failed = [c for c in self.checks if c.outcome in FAILING]
        passed = sum(c.outcome == "passed" for c in self.checks)
        parts = [f"{passed} of {len(self.checks)} checks passed"]
        if failed:
            parts.append(f"{len(failed)} failed")
        if self.other_failures:
            parts.append(f"{self.other_failures} other test(s) failed")
        rollback = self.rollback
        if rollback.outcome == "skipped":
            parts.append(f"rollback not rehearsed ({rollback.message})")
        else:
            parts.append(f"rollback {rollback.outcome}")
        if self.interrupted:
            parts.append("the run was interrupted")
        return f"verdict: {self.verdict} — " + ", ".join(parts)


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    if isinstance(record.get("duration_s"), float):
        record["duration_s"] = round(record["duration_s"], 3)
    return record


def _cell(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(report: RehearsalReport) -> str:
    """The Markdown summary (also appended to ``$GITHUB_STEP_SUMMARY``)."""
    mark = VERDICT_MARKS[report.verdict]
    lines = [
        f"## {mark} Staging rehearsal: {report.verdict}",
        "",
        f"Staging `{report.staging_url}` · started {report.started_at} · {report.duration_s:.1f} s",
        "",
        report.verdict_line(),
        "",
        "| Check | Outcome | Owner | Expected | Rollback note |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{c.id}` | {c.outcome} | {_cell(c.owner)} | {_cell(c.expect)} | "
        f"{_cell(c.rollback_note)} |"
        for c in report.checks
    ]
    rb = report.rollback
    command = " ".join(rb.command) or "(none)"
    lines += [
        "",
        "### Rollback",
        "",
        f"- command: `{command}`",
        f"- outcome: **{rb.outcome}**"
        + (f" (exit {rb.exit_code})" if rb.exit_code is not None else "")
        + f" in {rb.duration_s:.1f} s",
    ]
    if rb.owner:
        lines.append(f"- owner: {rb.owner}")
    if rb.note:
        lines.append(f"- note: {_cell(rb.note)}")
    if rb.message:
        lines += ["", "```text", rb.message.rstrip(), "```"]
    failures = [c for c in report.checks if c.outcome in FAILING]
    if failures:
        lines += ["", "### Failures", ""]
        for check in failures:
            lines += [
                f"<details><summary><code>{check.id}</code> ({check.owner or 'no owner'})"
                "</summary>",
                "",
                "```text",
                check.message.rstrip(),
                "```",
                "</details>",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def terminal_rows(report: RehearsalReport, width: int | None) -> list[str]:
    """One aligned row per check and one for the rollback: outcome, id, owner, expected, note.

    Rows are cut to *width* characters (``None``: never cut, as with ``-v``); the rollback's
    message follows its row when the rollback did not pass.
    """
    rb = report.rollback
    rows = [(c.outcome, c.id, c.owner, c.expect, c.rollback_note) for c in report.checks]
    rows.append((rb.outcome, "rehearsal::rollback", rb.owner, rb.expect, rb.note))
    id_width = min(max(len(row[1]) for row in rows), 40)
    owner_width = min(max(len(row[2] or "-") for row in rows), 20)
    lines: list[str] = []
    for outcome, node, owner, expect, note in rows:
        details = " ".join(
            " · ".join(part for part in (expect, note and f"rollback note: {note}") if part).split()
        )
        prefix = f"{outcome.upper():<8} {node:<{id_width}}  {owner or '-':<{owner_width}}  "
        if width is not None and len(prefix) + 30 > width:
            # Too narrow for a useful excerpt beside the id: the details go on their own line.
            lines.append(prefix.rstrip())
            prefix = " " * 9
        lines.append(_cut(prefix + details, width).rstrip())
    if rb.outcome != "passed" and rb.message:
        lines += ["    " + line for line in rb.message.splitlines()]
    return lines


def _cut(line: str, width: int | None) -> str:
    if width is None or len(line) <= width:
        return line
    return line[: width - 1] + "…"


def report_json_text(report: RehearsalReport, redact: Callable[[str], str]) -> str:
    """The JSON report as text, with every known secret masked."""
    return redact(json.dumps(report.to_json(), indent=2, ensure_ascii=False)) + "\n"
