"""What the release lifecycle did: the records of the deploy and of the rollback, step by step.

Pure, frozen records (no I/O, no pytest), built by :mod:`.lifecycle` with every text field
already redacted. Each has ``to_json()`` (the ``deploy`` / ``rollback`` objects of the JSON
report, built from these records rather than re-derived), and the rollback also has its JUnit
properties and its closing line for the terminal.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .answers import describe_answer
from .text import excerpt, plural
from .units import format_duration, format_elapsed

if TYPE_CHECKING:
    from .command import CommandResult
    from .config import DeployConfig, RollbackConfig

__all__ = [
    "DeployRecord",
    "Outcome",
    "Phase",
    "Recovery",
    "RollbackRecord",
    "Snapshot",
    "StepName",
    "StepRecord",
    "WatchSummary",
    "deploy_expected",
    "expected_result",
]

Outcome = Literal["passed", "failed", "skipped"]
StepOutcome = Literal["passed", "failed"]
StepName = Literal[
    "deploy",
    "deploy_health",
    "baseline",
    "preflight",
    "command",
    "verify",
    "restore",
    "restore_verify",
]
#: Where a rollback stopped: the step that failed first, or ``done``.
Phase = Literal["baseline", "preflight", "command", "verify", "restore", "restore_verify", "done"]

_VALUE_CHARS = 80  # of one tracked value, in a line for people


@dataclass(frozen=True)
class Snapshot:
    """What staging served at one moment on the verify (else health) path.

    ``tracked`` holds the ``verify.track`` fields (dotted paths) and the keys of
    ``verify.expect_json`` that the body had; a field the body lacks is absent. ``error``
    is the transport error when staging did not answer (``status`` is then ``None``).
    """

    status: int | None
    tracked: Mapping[str, Any]
    error: str | None = None

    def describe(self) -> str:
        """``version 1.5.0, build.sha abc1234``; empty when nothing is tracked."""
        return ", ".join(f"{name} {show_value(value)}" for name, value in self.tracked.items())

    def values(self) -> str:
        """``1.5.0, abc1234``: the tracked values alone."""
        return ", ".join(show_value(value) for value in self.tracked.values())

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "tracked": dict(self.tracked), "error": self.error}


def show_value(value: Any) -> str:
    """A tracked JSON value for people: a string as is, anything else as JSON; one line."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return excerpt(text, _VALUE_CHARS)


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """One step of the lifecycle as it ended.

    ``started_at`` is wall-clock time (``time.time()``), so the steps of a deploy and of the
    rollback that follows can be drawn on one time line.
    """

    step: StepName
    outcome: StepOutcome
    duration_s: float
    message: str
    exit_code: int | None = None
    started_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 3),
            "exit_code": self.exit_code,
            "message": self.message,
            "started_at": round(self.started_at, 3),
        }


@dataclass(frozen=True)
class WatchSummary:
    """The health polls made while the rollback ran: how many, how many failed, how badly."""

    polls: int
    failed: int
    longest_outage_s: float  # the longest run of failed polls, first failure to next success
    slowest_s: float  # the slowest single poll

    def describe(self) -> str:
        """``0 of 17 health polls failed``."""
        return f"{self.failed} of {plural(self.polls, 'health poll')} failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "failed": self.failed,
            "longest_outage_s": round(self.longest_outage_s, 3),
            "slowest_s": round(self.slowest_s, 3),
        }


@dataclass(frozen=True)
class Recovery:
    """Seconds from the start of the rollback command to the previous release and back."""

    to_previous_s: float | None
    to_restored_s: float | None
    watch: WatchSummary | None

    def to_json(self) -> dict[str, Any]:
        return {
            "to_previous_s": _rounded(self.to_previous_s),
            "to_restored_s": _rounded(self.to_restored_s),
            "watch": self.watch.to_json() if self.watch is not None else None,
        }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


# --------------------------------------------------------------------------------------------
# the deploy


@dataclass(frozen=True, kw_only=True)
class DeployRecord:
    """The deploy of the release under test as it ended (``passed`` or ``failed``).

    ``previous`` is what staging served before the deploy (``None`` when the deploy did not
    get that far); ``deployed`` what it served once healthy after it.
    """

    outcome: Outcome
    command: tuple[str, ...]
    exit_code: int | None
    duration_s: float
    message: str
    output_tail: str
    previous: Snapshot | None
    steps: tuple[StepRecord, ...]
    owner: str | None
    expect: str
    rollback_note: str | None
    started_at: float
    deployed: Snapshot | None = None
    interrupted: bool = False
    #: The deploy command was started, so it may have changed staging (preflight passed,
    #: and it could be started). Not in the JSON report: there the failed step's message
    #: says "nothing was run" or "it did not run".
    command_started: bool = True

    @property
    def failed_step(self) -> StepName | None:
        """The step that failed, or ``None`` when the deploy passed."""
        return next((s.step for s in self.steps if s.outcome == "failed"), None)

    def summary_line(self) -> str:
        """``deploy passed in 3.1 s: staging serves version 1.5.0 (before: version 1.4.2)``."""
        took = format_elapsed(self.duration_s)
        if self.outcome != "passed":
            return f"deploy failed at {self.failed_step or 'deploy'}: {_first_line(self.message)}"
        now = self.deployed.describe() if self.deployed is not None else ""
        before = self.previous.describe() if self.previous is not None else ""
        if not now:
            return f"deploy passed in {took}: staging passes its health check"
        return f"deploy passed in {took}: staging serves {now}" + (
            f" (before: {before})" if before else ""
        )

    def properties(self) -> dict[str, str]:
        """JUnit ``<property>`` pairs of the deploy."""
        props = {
            "deploy_outcome": self.outcome,
            "deploy_command": shlex.join(self.command),
            "deploy_duration_s": f"{self.duration_s:.3f}",
        }
        if self.exit_code is not None:
            props["deploy_exit_code"] = str(self.exit_code)
        if self.failed_step is not None:
            props["deploy_phase"] = self.failed_step
        if self.previous is not None and self.previous.tracked:
            props["deploy_previous"] = self.previous.describe()
        return props

    def to_json(self) -> dict[str, Any]:
        return {
            **_ran(self),
            "previous": self.previous.to_json() if self.previous is not None else None,
            "deployed": self.deployed.to_json() if self.deployed is not None else None,
            "steps": [step.to_json() for step in self.steps],
            "owner": self.owner,
            "expect": self.expect,
            "rollback_note": self.rollback_note,
            "interrupted": self.interrupted,
            "started_at": round(self.started_at, 3),
        }


def deploy_expected(config: DeployConfig, health: str) -> str:
    """The deploy's expected result in words, when ``deploy.expect`` is not set.

    *health* is the health check in words (``GET /health answers status 200 ...``).
    """
    return (
        f"`{shlex.join(config.command)}` exits 0 within {format_duration(config.timeout)}, "
        f"then {health} within {format_duration(config.within)}"
    )


# --------------------------------------------------------------------------------------------
# the rollback


@dataclass(frozen=True, kw_only=True)
class RollbackRecord:
    """The rollback rehearsal as it ended; every text field is already redacted.

    ``phase`` is the step that failed first (``done`` when none did; budgets are judged
    after every step, so a budget overrun is ``failed`` at ``done``). ``exit_code`` is the
    rollback command's; ``output_tail`` the last lines of the command that failed (or of the
    rollback command when all passed). ``reached`` is what staging served when the verify
    was met, ``restored`` what it served when the restore verify was. ``notes`` are the
    caveats of a rollback that passed or failed (nothing proved a change; staging left
    rolled back), for every report.
    """

    outcome: Outcome
    phase: Phase
    command: tuple[str, ...]
    exit_code: int | None
    duration_s: float
    message: str
    output_tail: str
    owner: str | None
    note: str | None
    expect: str
    baseline: Snapshot | None = None
    steps: tuple[StepRecord, ...] = ()
    recovery: Recovery | None = None
    notes: tuple[str, ...] = ()
    interrupted: bool = False
    started_at: float = 0.0
    restore: tuple[str, ...] | None = None
    reached: Snapshot | None = None
    restored: Snapshot | None = None
    verify_polls: int = 0
    command_result: CommandResult | None = field(default=None, compare=False, repr=False)
    restore_result: CommandResult | None = field(default=None, compare=False, repr=False)

    @classmethod
    def skipped(
        cls, reason: str, config: RollbackConfig, command: Sequence[str] | None
    ) -> RollbackRecord:
        """The record of a rollback that was not rehearsed (``--no-rollback``, a veto, ...).

        *command* is the one that would have run: ``--rollback-command`` when given, else
        ``rollback.command`` (``None``: neither).
        """
        return cls(
            outcome="skipped",
            phase="preflight",
            command=tuple(command or ()),
            exit_code=None,
            duration_s=0.0,
            message=reason,
            output_tail="",
            owner=config.owner,
            note=config.note,
            expect=config.expect or expected_result(config, command),
            restore=config.restore,
        )

    def summary_line(self) -> str:
        """The one closing line, such as ``rollback passed: previous release (version 1.4.2)
        after 2.1 s, restored 1.5.0 after 4.0 s; 0 of 17 health polls failed``."""
        if self.outcome == "skipped":
            return f"rollback skipped: {_first_line(self.message)}"
        recovery = self.recovery
        watch = recovery.watch if recovery is not None else None
        figures = f"; {watch.describe()}" if watch is not None and watch.polls else ""
        if self.outcome == "failed":
            where = f"at {self.phase}" if self.phase != "done" else "its budget"
            return f"rollback failed {where}: {_first_line(self.message)}{figures}"
        parts = [self._went_back()]
        if recovery is not None and recovery.to_restored_s is not None:
            shown = self.restored.values() if self.restored is not None else ""
            restored = f"restored {shown}" if shown else "restored"
            parts.append(f"{restored} after {format_elapsed(recovery.to_restored_s)}")
        elif self.restore is None:
            parts.append("not restored (no rollback.restore)")
        return f"rollback passed: {', '.join(parts)}{figures}"

    def _went_back(self) -> str:
        to_previous = self.recovery.to_previous_s if self.recovery is not None else None
        after = f" after {format_elapsed(to_previous)}" if to_previous is not None else ""
        shown = self.reached.describe() if self.reached is not None else ""
        if shown:
            return f"previous release ({shown}){after}"
        return f"staging answered{after} (not shown to change what it serves)"

    def properties(self) -> dict[str, str]:
        """JUnit ``<property>`` pairs: what ran, how it ended, and the recovery figures.

        Owner, expect and note are not repeated here: the plugin records them the way it
        records every check's metadata.
        """
        props = {
            "rollback_outcome": self.outcome,
            "rollback_phase": self.phase,
            "rollback_command": shlex.join(self.command),
            "rollback_duration_s": f"{self.duration_s:.3f}",
            "interrupted": _flag(self.interrupted),
        }
        result = self.command_result
        if result is not None:
            props.update(result.status_properties("rollback"))
            props["timed_out"] = _flag(result.timed_out)
            props["escalated_to_kill"] = _flag(result.escalated_to_kill)
            props["output_bytes"] = str(result.output_bytes)
            props["escaped"] = _flag(result.escaped)
            props["held_open"] = _flag(result.held_open)
        if self.verify_polls:
            props["verify_polls"] = str(self.verify_polls)
        if self.restore_result is not None:
            props.update(self.restore_result.status_properties("restore"))
            props["restore_timed_out"] = _flag(self.restore_result.timed_out)
        if self.baseline is not None and self.baseline.tracked:
            props["rollback_baseline"] = self.baseline.describe()
        recovery = self.recovery
        if recovery is not None:
            for name in ("to_previous_s", "to_restored_s"):
                seconds = getattr(recovery, name)
                if seconds is not None:
                    props[f"rollback_{name}"] = f"{seconds:.3f}"
            if recovery.watch is not None:
                watch = recovery.watch
                props["watch_polls"] = str(watch.polls)
                props["watch_failed"] = str(watch.failed)
                props["watch_longest_outage_s"] = f"{watch.longest_outage_s:.3f}"
                props["watch_slowest_s"] = f"{watch.slowest_s:.3f}"
        if self.notes:
            props["rollback_notes"] = "; ".join(self.notes)
        return props

    def to_json(self) -> dict[str, Any]:
        return {
            **_ran(self),
            "owner": self.owner,
            "note": self.note,
            "expect": self.expect,
            "phase": self.phase,
            "baseline": self.baseline.to_json() if self.baseline is not None else None,
            "reached": self.reached.to_json() if self.reached is not None else None,
            "restored": self.restored.to_json() if self.restored is not None else None,
            "steps": [step.to_json() for step in self.steps],
            "recovery": self.recovery.to_json() if self.recovery is not None else None,
            "notes": list(self.notes),
            "interrupted": self.interrupted,
            "restore": list(self.restore) if self.restore is not None else None,
            "verify_polls": self.verify_polls,
            "started_at": round(self.started_at, 3),
        }


def expected_result(config: RollbackConfig, command: Sequence[str] | None = None) -> str:
    """The rollback's expected result in words, for when ``rollback.expect`` is not set.

    ``./deploy.sh rollback` exits 0 within 2 min, then GET /health answers status 200 with
    version changed within 60 s, then the restore `...` exits 0 and staging answers as
    before the rollback``.
    """
    argv = command or config.command
    subject = f"`{shlex.join(argv)}`" if argv else "a configured rollback command"
    text = f"{subject} exits 0 within {format_duration(config.timeout)}"
    verify = config.verify
    if verify is not None:
        answer = describe_answer(verify.expect_status, verify.expect_json)
        if verify.track:
            answer += f" with {', '.join(verify.track)} changed"
        text += f", then GET {verify.path} answers {answer} within {format_duration(verify.within)}"
    else:
        text += ", then staging answers its health check"
    if config.restore:
        text += (
            f", then the restore `{shlex.join(config.restore)}` exits 0 and staging answers "
            "as before the rollback"
        )
    return text


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def _ran(record: DeployRecord | RollbackRecord) -> dict[str, Any]:
    """What the deploy's and the rollback's JSON say alike: the command and how it ended."""
    return {
        "outcome": record.outcome,
        "command": list(record.command),
        "exit_code": record.exit_code,
        "duration_s": round(record.duration_s, 3),
        "message": record.message,
        "output_tail": record.output_tail,
    }
