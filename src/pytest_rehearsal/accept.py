"""Known findings a team accepts for a while: ``accept:`` entries matched against findings.

Pure module. An entry names a check (an item id without ``rehearsal::``, where ``*`` matches
any run of characters, brackets included), text the finding's message contains, and why,
who and until when. :func:`judge` applies the entries to one check's findings: a finding an
entry matches, on or before its ``until`` date, carries the :class:`~.findings.Acceptance`;
an entry past its date no longer applies and says so. A check whose every finding is
accepted has the outcome ``accepted`` (it does not block); one with any other finding still
fails. :func:`unused` names the entries that matched nothing in a run, so that a fixed
problem's entry is removed rather than left to accept the next, unrelated problem.

The rollback and the deploy are not checks and can never be accepted: :func:`refusal` says
so when the config is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from .config import AcceptEntry
from .findings import Acceptance, Finding
from .text import excerpt

__all__ = ["NOT_ACCEPTABLE", "Judgement", "judge", "matches_check", "refusal", "unused"]

#: Steps of the release lifecycle that are reported like checks but must pass: a release
#: whose rollback (or deploy) fails is not ready, whatever anyone accepts.
NOT_ACCEPTABLE: dict[str, str] = {
    "rollback": "the rollback cannot be accepted: a release without a working rollback is "
    "not ready",
    "deploy": "the deploy cannot be accepted: a release that does not deploy is not ready",
}


@dataclass(frozen=True)
class Judgement:
    """One check's findings after the ``accept`` entries: which are accepted, and notes.

    The check's :class:`~.checks._base.Verdict` with these findings and notes says what that
    means: which findings block, whether the check is accepted, and why.
    ``used`` holds the indices (into the entries given to :func:`judge`) of every entry that
    matched a finding, expired ones included; pass them to :func:`unused` at the end of a run.
    """

    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    used: frozenset[int] = frozenset()


def judge(
    check_id: str, findings: Sequence[Finding], entries: Sequence[AcceptEntry], today: date
) -> Judgement:
    """Apply *entries* to the *findings* of check *check_id* (without ``rehearsal::``).

    A finding is accepted by the first entry whose ``check`` matches the id, whose
    ``finding`` text its message contains (case-insensitive), and whose ``until`` is *today*
    or later. An entry that matches but has expired accepts nothing and leaves a note. When
    only some findings are accepted, a note names each accepted one: the check still fails.
    """
    relevant = [(i, e) for i, e in enumerate(entries) if matches_check(e.check, check_id)]
    judged: list[Finding] = []
    accepted: list[tuple[Finding, Acceptance]] = []
    notes: list[str] = []
    used: set[int] = set()
    for finding in findings:
        matching = [(i, e) for i, e in relevant if _mentions(finding, e)]
        used.update(i for i, _ in matching)
        valid = next((e for _, e in matching if today <= e.until), None)
        if valid is None:
            judged.append(finding)
            notes.extend(_expired(entry, finding) for _, entry in matching)
            continue
        acceptance = Acceptance(valid.reason, valid.owner, valid.until.isoformat())
        judged.append(dataclasses.replace(finding, accepted=acceptance))
        accepted.append((finding, acceptance))
    if accepted and len(accepted) < len(judged):
        notes.extend(_accepted_note(finding, acceptance) for finding, acceptance in accepted)
    return Judgement(tuple(judged), tuple(dict.fromkeys(notes)), frozenset(used))


def unused(
    entries: Sequence[AcceptEntry], used: Iterable[int], ran: Collection[str]
) -> tuple[str, ...]:
    """A note for every entry that matched no finding of the checks that *ran* (their ids).

    *used* is the union of :attr:`Judgement.used` over the run. An entry whose check did
    not run at all (deselected, or not configured) is named as such, not as fixed.
    """
    seen = set(used)
    notes = []
    for index, entry in enumerate(entries):
        if index in seen:
            continue
        label = f"{entry.where}: " if entry.where else ""
        what = f"accept entry for {entry.check!r} and {entry.finding!r}"
        if any(matches_check(entry.check, check_id) for check_id in ran):
            notes.append(
                f"{label}{what} matched no finding: if the problem is fixed, remove the entry"
            )
        else:
            notes.append(f"{label}{what} matched no check of this run")
    return tuple(notes)


def matches_check(pattern: str, check_id: str) -> bool:
    """Whether *pattern* (``*`` globs, nothing else special) matches *check_id* whole."""
    return _glob(pattern).fullmatch(check_id) is not None


def refusal(pattern: str, names: Collection[str]) -> str | None:
    """Why *pattern* cannot be an ``accept`` entry's check, or None when it can.

    *names* are the built-in check names; an item id is ``name`` or ``name[param]``, with
    any param. A pattern that can only match the rollback or the deploy is refused, and so
    is one that can match no check at all (a typo would otherwise accept nothing, silently).
    """
    if any(_can_match(pattern, name) for name in names):
        return None
    for step, problem in NOT_ACCEPTABLE.items():
        if matches_check(pattern, step):
            return problem
    base = pattern.split("[", 1)[0].split("*", 1)[0]
    close = difflib.get_close_matches(base, sorted(names), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"matches no built-in check{hint}"


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def _can_match(pattern: str, name: str) -> bool:
    """Whether *pattern* matches ``name`` or ``name[X]`` for some param X."""
    if matches_check(pattern, name):
        return True
    parts = pattern.split("*")
    opening = name + "["
    if len(parts) == 1:
        return pattern.startswith(opening) and pattern.endswith("]")
    # The text between the stars can always be part of X: only the two ends are constrained.
    first, last = parts[0], parts[-1]
    head = opening.startswith(first) or first.startswith(opening)
    return head and (not last or last.endswith("]"))


def _mentions(finding: Finding, entry: AcceptEntry) -> bool:
    return entry.finding.casefold() in finding.message.casefold()


def _expired(entry: AcceptEntry, finding: Finding) -> str:
    label = f"{entry.where}: " if entry.where else ""
    return (
        f"{label}accepted until {entry.until.isoformat()}: expired; the finding blocks again "
        f"({excerpt(finding.message, 160)}; reason: {entry.reason}; owner: {entry.owner})"
    )


def _accepted_note(finding: Finding, acceptance: Acceptance) -> str:
    return (
        f"accepted until {acceptance.until} ({acceptance.reason}; owner: {acceptance.owner}): "
        f"{excerpt(finding.message, 160)}"
    )
