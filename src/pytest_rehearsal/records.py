"""What each test of the rehearsal came to: :class:`~.report.CheckRecord` s from pytest's reports.

pytest glue, on the controller. Every phase report of a rehearsal test (a built-in check, the
rollback's own item excepted, or a user test with the ``rehearsal`` marker) folds into one
record: the worst phase names the outcome, durations add up, and the metadata travels in the
``rehearsal_*`` user properties. Failed tests outside the rehearsal are counted apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from .items import FINDINGS_ATTRIBUTE, NOTE_PROPERTY, PROPERTY_PREFIX, ROLLBACK_NODEID
from .report import CheckRecord

__all__ = ["MESSAGE_LIMIT", "RecordBook"]

MESSAGE_LIMIT = 4000
# When phases disagree, the worst one names the check's outcome.
_RANK = {"passed": 0, "skipped": 1, "accepted": 1, "failed": 2, "error": 3}
# Properties that become fields of a record rather than entries of its properties.
_RECORD_FIELDS = frozenset(
    PROPERTY_PREFIX + name for name in ("check", "owner", "expect", "rollback_note", "note")
)


class RecordBook:
    """The records of one run, by node id, and the failures outside the rehearsal."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact
        self.records: dict[str, CheckRecord] = {}
        self.other_failures: set[str] = set()

    def add(self, report: pytest.TestReport) -> None:
        """Fold one phase report in."""
        if report.nodeid == ROLLBACK_NODEID:
            return  # the rollback has a record of its own, from the release lifecycle
        props = dict(report.user_properties)
        name = props.get(PROPERTY_PREFIX + "check")
        if name is None:
            if report.failed:
                self.other_failures.add(report.nodeid)
            return
        outcome = _phase_outcome(report, builtin=name != "user")
        if outcome is None:
            return
        previous = self.records.get(report.nodeid)
        duration = report.duration + (previous.duration_s if previous else 0.0)
        if previous is not None and _RANK[previous.outcome] >= _RANK[outcome]:
            self.records[report.nodeid] = dataclasses.replace(previous, duration_s=duration)
            return
        self.records[report.nodeid] = CheckRecord(
            id=report.nodeid,
            name=str(name) if name != "user" else report.nodeid.rsplit("::", 1)[-1],
            outcome=outcome,
            owner=_str_or_none(props.get(PROPERTY_PREFIX + "owner")),
            expect=_str_or_none(props.get(PROPERTY_PREFIX + "expect")),
            rollback_note=_str_or_none(props.get(PROPERTY_PREFIX + "rollback_note")),
            message=_message(report, self._redact),
            duration_s=duration,
            properties={
                key.removeprefix(PROPERTY_PREFIX): str(value)
                for key, value in props.items()
                if key.startswith(PROPERTY_PREFIX) and key not in _RECORD_FIELDS
            },
            findings=tuple(getattr(report, FINDINGS_ATTRIBUTE, ()) or ()),
            builtin=name != "user",
        )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _phase_outcome(report: pytest.TestReport, *, builtin: bool) -> str | None:
    """A phase's contribution to the check's outcome (None: nothing new to say).

    Only a built-in check can be accepted (by an ``accept:`` entry): a team's test xfailed
    with a reason that happens to start with "accepted: " is a skipped rehearsal test.
    """
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "accepted" if builtin and _is_acceptance(report) else "skipped"
        return {"passed": "passed", "failed": "failed", "skipped": "skipped"}[report.outcome]
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


def _is_acceptance(report: pytest.TestReport) -> bool:
    """An xfail that is an accepted finding ("accepted: <reason>"), not a user's xfail."""
    return str(getattr(report, "wasxfail", "")).startswith("accepted: ")


def _message(report: pytest.TestReport, redact: Callable[[str], str]) -> str:
    if report.passed:
        return str(dict(report.user_properties).get(NOTE_PROPERTY, ""))
    if hasattr(report, "wasxfail"):
        text = str(report.wasxfail)
    elif report.skipped and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    else:
        text = report.longreprtext
    text = redact(text)
    # The end of a long traceback holds the error itself: keep that part.
    return text if len(text) <= MESSAGE_LIMIT else "…" + text[-(MESSAGE_LIMIT - 1) :]
