"""The rehearsal's own test items: each built-in check, and the rollback, under ``rehearsal``.

pytest glue. The items are collected like tests, so ``-k``, ``-m``, ``--deselect`` and
``--collect-only`` treat them as users expect (``rehearsal::health``,
``rehearsal::headers[/]``, ..., ``rehearsal::rollback``). They do not do the work
themselves: the engine runs every selected check concurrently, and a check item waits for
its own outcome; the rollback item is run by the engine once, after every other test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from .checks._base import Check, Verdict
    from .findings import Finding

__all__ = [
    "FINDINGS_ATTRIBUTE",
    "NOTE_PROPERTY",
    "PROPERTY_PREFIX",
    "ROLLBACK_NODEID",
    "Engine",
    "RehearsalCollector",
    "RehearsalItem",
    "Rollback",
    "RollbackItem",
    "metadata_properties",
]

ROLLBACK_NODEID = "rehearsal::rollback"
PROPERTY_PREFIX = "rehearsal_"
NOTE_PROPERTY = PROPERTY_PREFIX + "note"
#: The findings of a test, as JSON-ready dicts, on its item and its call-phase report (a
#: report attribute travels from an xdist worker like the report's own fields).
FINDINGS_ATTRIBUTE = "rehearsal_findings"


class Engine(Protocol):
    """What the items ask of the engine (:class:`pytest_rehearsal.session.RehearsalSession`)."""

    def verdict_for(self, check: Check) -> Verdict | None:
        """The verdict of *check*, waiting for it; ``None`` when it was not judged."""

    def redact(self, text: str) -> str:
        """*text* with every known secret masked."""


class Rollback(Protocol):
    """What the rollback item asks of the release lifecycle (:class:`.release_run.ReleaseRun`)."""

    def preflight(self) -> str | None:
        """Skip the item when the rollback is not to run; why it cannot even start."""

    def rehearse(self, item: RollbackItem) -> None:
        """Run the rollback; fail the item when it fails."""


def metadata_properties(
    name: str, owner: str | None, expect: str | None, note: str | None
) -> list[tuple[str, object]]:
    """The ``rehearsal_*`` properties that carry a test's metadata to JUnit and the records."""
    values = {"check": name, "owner": owner, "expect": expect, "rollback_note": note}
    return [(PROPERTY_PREFIX + key, value) for key, value in values.items() if value is not None]


class RehearsalCollector(pytest.Collector):
    """The ``rehearsal`` node under the session: the built-in checks, then the rollback."""

    def __init__(
        self,
        *,
        engine: Engine,
        release: Rollback,
        checks: list[Check],
        rollback: RollbackItemSpec,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.release = release
        self.checks = checks
        self.rollback = rollback

    def collect(self) -> list[pytest.Item]:
        items: list[pytest.Item] = [
            RehearsalItem.from_parent(self, name=check.id, check=check) for check in self.checks
        ]
        items.append(RollbackItem.from_parent(self, name="rollback", spec=self.rollback))
        return items


class _RehearsalNode(pytest.Item):
    """Shared by the rehearsal's items: shown like a file named ``rehearsal``."""

    @property
    def engine(self) -> Engine:
        parent = self.parent
        assert isinstance(parent, RehearsalCollector)
        return parent.engine

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # Progress lines read "rehearsal ....", as if the checks were a file.
        return self.session.path / "rehearsal", None, f"rehearsal::{self.name}"


class RehearsalItem(_RehearsalNode):
    """One built-in check as a test item: ``rehearsal::<check id>``."""

    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker("rehearsal")
        self.user_properties.extend(
            metadata_properties(
                check.name, check.meta.owner, check.expected, check.meta.rollback_note
            )
        )
        self.findings: tuple[Finding, ...] = ()

    def runtest(self) -> None:
        verdict = self.engine.verdict_for(self.check)
        if verdict is None:
            return
        # Report properties (ASVS ids, the header profile) reach JUnit and the JSON report;
        # so does the note of a passing check (a warning, such as a JWT in a response).
        self.user_properties.extend(
            (PROPERTY_PREFIX + key, value) for key, value in verdict.properties.items()
        )
        self.findings = verdict.findings
        if verdict.passed and verdict.message:
            self.user_properties.append((NOTE_PROPERTY, self.engine.redact(verdict.message)))
        if not verdict.passed:
            pytest.fail(self.engine.redact(verdict.message), pytrace=False)
        if verdict.accepted:
            # Shown as xfailed: known, tracked, not blocking until its entry's date.
            pytest.xfail(self.engine.redact(verdict.accepted_reason))


class RollbackItemSpec(Protocol):
    """The rollback's metadata, as the item shows it before it runs."""

    owner: str | None
    expect: str
    note: str | None


class RollbackItem(_RehearsalNode):
    """``rehearsal::rollback``: the engine runs it once, after every other test has finished.

    Deselecting it (``-k 'not rollback'``) skips the rollback; selecting only it
    (``-k rollback``) rehearses the rollback alone.
    """

    def __init__(self, *, spec: RollbackItemSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker("rehearsal")
        self.user_properties.extend(
            metadata_properties("rollback", spec.owner, spec.expect, spec.note)
        )

    @property
    def release(self) -> Rollback:
        parent = self.parent
        assert isinstance(parent, RehearsalCollector)
        return parent.release

    def setup(self) -> None:
        problem = self.release.preflight()
        if problem is not None:
            # It cannot be executed at all: a setup error (JUnit <error>), not a failure.
            pytest.fail(problem, pytrace=False)

    def runtest(self) -> None:
        self.release.rehearse(self)
