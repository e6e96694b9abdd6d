"""The rehearsal's outcome: verdict, JSON report, Markdown summary and terminal rows.

Pure logic over plain records; the plugin collects the records from pytest's reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from .release import DeployRecord, RollbackRecord
from .text import plural

__all__ = [
    "SCHEMA",
    "CheckRecord",
    "RehearsalReport",
    "decide_verdict",
    "failure_reasons",
    "message_lines",
]

SCHEMA = "pytest-rehearsal/report@1"
FAILING = frozenset({"failed", "error"})


@dataclass(frozen=True)
class CheckRecord:
    """One check (built-in or user-written) as it ended; ``findings`` as JSON-ready dicts."""

    id: str
    name: str
    outcome: str  # passed | failed | error | skipped | accepted
    owner: str | None = None
    expect: str | None = None
    rollback_note: str | None = None
    message: str = ""
    duration_s: float = 0.0
    # Extra facts a check reports, such as the ASVS requirement it maps to.
    properties: Mapping[str, str] = field(default_factory=dict)
    findings: Sequence[Mapping[str, Any]] = ()
    builtin: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``checks[]`` entry of the JSON report."""
        return {
            "id": self.id,
            "name": self.name,
            "outcome": self.outcome,
            "owner": self.owner,
            "expect": self.expect,
            "rollback_note": self.rollback_note,
            "message": self.message,
            "duration_s": round(self.duration_s, 3),
            "properties": dict(self.properties),
            "findings": [dict(finding) for finding in self.findings],
        }


def message_lines(text: str) -> list[str]:
    """The lines of *text* that say something (blank ones dropped)."""
    return [line for line in text.splitlines() if line.strip()]


def failure_reasons(
    findings: Iterable[Mapping[str, Any]], message: str, *, most_lines: int | None = None
) -> list[str]:
    """Why a check failed, one line each: the messages of its findings that no ``accept``
    entry accepts; without such findings (a team's test, a crash), the lines of its *message*,
    the first *most_lines* of them when given (a traceback is long).

    The terminal summary, the Markdown summary and the short summary line all show these.
    """
    reasons = [str(found["message"]) for found in findings if not found.get("accepted")]
    return reasons or message_lines(message)[:most_lines]


def decide_verdict(report: RehearsalReport) -> str:
    """``blocked`` if anything failed or stopped the run; ``incomplete`` if part of the
    rehearsal did not run (``not_rehearsed``); otherwise ``ready``.

    Failed tests outside the checklist block too: they fail the pytest run, so a report that
    said ``ready`` beside exit status 1 would mislead a gate that reads it.
    """
    deploy_failed = report.deploy is not None and report.deploy.outcome == "failed"
    if (
        report.error is not None
        or report.interrupted
        or report.collection_errors
        or report.other_failures
        or any(check.outcome in FAILING for check in report.checks)
        or deploy_failed
        or (report.rollback is not None and report.rollback.outcome == "failed")
    ):
        return "blocked"
    if report.not_rehearsed:
        return "incomplete"
    return "ready"


@dataclass(frozen=True)
class RehearsalReport:
    """The whole outcome; :meth:`to_json` is the ``--rehearsal-report`` document.

    ``not_rehearsed`` names what did not run (deselected checks, a skipped rollback);
    ``builtin_configured`` counts the built-in checks the config switches on and
    ``builtin_selected`` those that ``-k``/``-m``/``--deselect`` left in (``None``: all),
    so that a partial selection says "3 of 33 built-in checks selected". ``error`` is a
    usage error that stopped the run before anything was sent.
    """

    staging_url: str
    started_at: str
    duration_s: float
    checks: Sequence[CheckRecord]
    rollback: RollbackRecord | None
    deploy: DeployRecord | None = None
    interrupted: bool = False
    config_path: str | None = None
    other_failures: int = 0  # failed tests outside the checklist
    collection_errors: Sequence[str] = ()
    not_rehearsed: Sequence[str] = ()
    builtin_configured: int = 0
    builtin_selected: int | None = None
    error: str | None = None
    notes: Sequence[str] = ()  # about the run as a whole: accept entries that matched nothing

    @classmethod
    def for_usage_error(cls, message: str, staging_url: str, started_at: str) -> RehearsalReport:
        """The report of a run that a usage error stopped before anything was sent."""
        return cls(staging_url, started_at, 0.0, [], None, error=message)

    @property
    def verdict(self) -> str:
        return decide_verdict(self)

    def masked(self, redact: Callable[[str], str]) -> RehearsalReport:
        """This report with every known secret masked in its values (never in its fixed
        words: verdicts, outcomes, phases and keys stay as they are)."""
        masked: RehearsalReport = _masked(self, redact)
        return masked

    def to_json(self) -> dict[str, Any]:
        rollback = self.rollback
        return {
            "schema": SCHEMA,
            "staging_url": self.staging_url,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "verdict": self.verdict,
            "error": self.error,
            "not_rehearsed": list(self.not_rehearsed),
            "notes": list(self.notes),
            "interrupted": self.interrupted,
            "other_failures": self.other_failures,
            "collection_errors": list(self.collection_errors),
            "config": self.config_path,
            "checks": [check.to_json() for check in self.checks],
            "deploy": self.deploy.to_json() if self.deploy is not None else None,
            "rollback": rollback.to_json() if rollback is not None else None,
        }

    def verdict_line(self) -> str:
        """One sentence for the terminal and the summary heading."""
        if self.error is not None:
            return f"verdict: {self.verdict} — usage error: {self.error.splitlines()[0]}"
        failed = [c for c in self.checks if c.outcome in FAILING]
        passed = sum(c.outcome == "passed" for c in self.checks)
        accepted = sum(c.outcome == "accepted" for c in self.checks)
        ran = len(self.checks)
        parts = [f"{passed} of {ran} checks passed"]
        selected = self.builtin_selected
        if selected is not None and selected < self.builtin_configured:
            parts.insert(0, f"{selected} of {self.builtin_configured} built-in checks selected")
        if accepted:
            parts.append(f"{accepted} accepted")
        if failed:
            parts.append(f"{len(failed)} failed")
        if self.other_failures:
            parts.append(f"{plural(self.other_failures, 'other test')} failed")
        if self.collection_errors:
            parts.append(f"{plural(len(self.collection_errors), 'collection error')}")
        if self.deploy is not None:
            parts.append(f"deploy {self.deploy.outcome}")
        rollback = self.rollback
        if rollback is None:
            parts.append("rollback not rehearsed")
        elif rollback.outcome == "skipped":
            parts.append(f"rollback not rehearsed ({rollback.message})")
        else:
            parts.append(f"rollback {rollback.outcome}")
        if self.interrupted:
            parts.append("the run was interrupted")
        return f"verdict: {self.verdict} — " + ", ".join(parts)


#: Values that are the report's own words, never masked (a token is at least 8 characters,
#: but "accepted" or "incomplete" could still be one).
_FIXED_FIELDS = frozenset(
    {"schema", "verdict", "outcome", "phase", "step", "started_at", "name", "rule", "builtin"}
)


def _masked(value: Any, redact: Callable[[str], str], name: str = "") -> Any:
    """*value* with *redact* applied to every string in it, fixed fields excepted."""
    if name in _FIXED_FIELDS:
        return value
    if isinstance(value, str):
        return redact(value)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {
            item.name: _masked(getattr(value, item.name), redact, item.name)
            for item in fields(value)
        }
        return replace(value, **changes)
    if isinstance(value, Mapping):
        return {key: _masked(item, redact, str(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(item, redact) for item in value)
    return value


def report_json_text(report: RehearsalReport) -> str:
    """The JSON report as text (mask the report first: :meth:`RehearsalReport.masked`)."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
