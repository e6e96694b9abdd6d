"""The "staging rehearsal" section of the terminal summary: failures first, with their reasons.

Pure: lines from a (masked) :class:`~.report.RehearsalReport`. What blocks the release comes
first, each row with its reason (the findings' one-line messages); accepted findings and
skipped checks follow with why (one row for the checks skipped for one reason); passes are
one line ("PASSED   31 checks") unless ``-v`` asks for every row. Lines are wrapped to the
terminal's width, never cut: an id is shown whole, however narrow the CI log.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from .report import FAILING, CheckRecord, RehearsalReport, failure_reasons, message_lines
from .text import plural

__all__ = ["REASONS_SHOWN", "summary_lines", "verdict_fits"]

#: Reasons shown under a failed row; the rest are counted ("+ 2 more").
REASONS_SHOWN = 3
_OUTCOME_WIDTH = 9  # "ACCEPTED " and the indent of the lines under a row
_ORDER = {"error": 0, "failed": 0, "accepted": 1, "skipped": 2, "passed": 3}


def summary_lines(report: RehearsalReport, width: int, *, verbose: bool = False) -> list[str]:
    """The section's rows for a terminal *width* characters wide (``-v``: every row)."""
    lines: list[str] = []
    checks = sorted(report.checks, key=lambda check: _ORDER.get(check.outcome, 0))
    passed = [check for check in checks if check.outcome == "passed"]
    skipped = _skipped_alike(checks) if not verbose else {}
    for check in checks:
        if check.outcome == "passed" and not verbose:
            continue
        alike = skipped.get(_skip_reason(check))
        if check.outcome == "skipped" and alike:
            if check is alike[0]:
                # Many checks skipped for one reason (a failed deploy): one row says it.
                head = f"{plural(len(alike), 'check')} (-v lists them)"
                lines += _row("skipped", head, None, [_skip_reason(check)], width)
            continue
        lines += _row(check.outcome, check.id, check.owner, _details(check, verbose), width)
    if passed and not verbose:
        lines.append(f"{'PASSED':<{_OUTCOME_WIDTH}}{plural(len(passed), 'check')} (-v lists them)")
    deploy = report.deploy
    if deploy is not None:
        details = [deploy.summary_line()]
        if deploy.outcome == "failed":
            details += message_lines(deploy.message)[1:]
        lines += _row(deploy.outcome, "deploy", deploy.owner, details, width)
    rollback = report.rollback
    if rollback is not None:
        details = [rollback.summary_line()]
        if rollback.outcome == "failed" or verbose:
            details += message_lines(rollback.message)[1:]
        said = "\n".join(details)
        details += [f"note: {note}" for note in rollback.notes if note not in said]
        lines += _row(rollback.outcome, "rehearsal::rollback", rollback.owner, details, width)
    elif report.error is not None:
        lines += _wrap(report.error.splitlines(), width, indent="")
    lines += _wrap([f"note: {note}" for note in report.notes], width, indent="")
    return lines


def _skip_reason(check: CheckRecord) -> str:
    return next(iter(message_lines(check.message)), "")


def _skipped_alike(checks: Iterable[CheckRecord]) -> dict[str, list[CheckRecord]]:
    """The skipped checks by reason, for the reasons that two or more of them share."""
    by_reason: dict[str, list[CheckRecord]] = {}
    for check in checks:
        if check.outcome == "skipped":
            by_reason.setdefault(_skip_reason(check), []).append(check)
    return {reason: alike for reason, alike in by_reason.items() if len(alike) > 1}


def _details(check: CheckRecord, verbose: bool) -> list[str]:
    """What is said under a check's row: why it failed, why it was accepted or skipped."""
    if check.outcome in FAILING:
        reasons = failure_reasons(check.findings, check.message)
        if len(reasons) > REASONS_SHOWN:
            rest = len(reasons) - REASONS_SHOWN
            reasons = [*reasons[:REASONS_SHOWN], f"+ {rest} more (see above)"]
        return reasons
    if check.outcome == "accepted":
        return [_accepted(f) for f in check.findings if f.get("accepted")]
    if check.outcome == "skipped":
        reason = _skip_reason(check)
        return [reason] if reason else []
    return [check.expect] if verbose and check.expect else []


def _accepted(found: Mapping[str, Any]) -> str:
    why = found["accepted"]
    return f"accepted until {why['until']} ({why['owner']}: {why['reason']}): {found['message']}"


def _row(
    outcome: str, node_id: str, owner: str | None, details: Iterable[str], width: int
) -> list[str]:
    head = f"{outcome.upper():<{_OUTCOME_WIDTH}}{node_id}"
    if owner:
        # The owner beside the id when it fits, on the next line when it does not.
        head = f"{head}  {owner}" if len(head) + 2 + len(owner) <= width else f"{head}\n{owner}"
    lines = head.splitlines()[:1] + _wrap(head.splitlines()[1:], width)
    return lines + _wrap(details, width)


def _wrap(texts: Iterable[str], width: int, indent: str = " " * _OUTCOME_WIDTH) -> list[str]:
    room = max(20, width - len(indent))
    wrapped: list[str] = []
    for text in texts:
        wrapped += [
            indent + line
            for line in textwrap.wrap(text, room, break_long_words=True, break_on_hyphens=False)
            or [""]
        ]
    return wrapped


def verdict_fits(line: str, width: int) -> bool:
    """Whether *line* fits a ``---- line ----`` ruler of *width* (else it is written plain)."""
    return len(line) + 4 <= width
