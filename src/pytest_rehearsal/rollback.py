"""The rollback rehearsal: run the team's real rollback command, verify staging, roll forward.

Pure module, no pytest glue. :func:`rehearse_rollback` runs the whole sequence (each command
through :mod:`.command`: preflight, then a bounded, redacted subprocess) and returns a
:class:`RollbackOutcome` that every report is built from. A run that rehearses no rollback
(``--no-rollback``) builds its skipped outcome here without loading the command runner.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .answers import describe_answer, judge_answer
from .text import excerpt
from .units import format_duration, format_elapsed

if TYPE_CHECKING:
    from .command import CommandResult
    from .config import RollbackConfig, VerifyConfig
    from .redact import Redactor

__all__ = [
    "NO_COMMAND_MESSAGE",
    "FetchResult",
    "RollbackOutcome",
    "expected_result",
    "rehearse_rollback",
]

NO_COMMAND_MESSAGE = (
    "no rollback command is configured: a release without a rollback path is not ready "
    "(set rollback.command in rehearsal.yaml or pass --rollback-command)"
)

_VERIFY_FIRST_INTERVAL_S = 0.5
_VERIFY_MAX_INTERVAL_S = 2.0

Outcome = Literal["passed", "failed", "skipped"]
Phase = Literal["preflight", "command", "verify", "restore", "done"]


# --------------------------------------------------------------------------------------------
# the rehearsal sequence


@dataclass(frozen=True)
class FetchResult:
    """One GET on staging as the verifier sees it: a status and body, or a transport error."""

    status: int | None
    body: bytes = b""
    error: str | None = None


@dataclass(frozen=True)
class RollbackOutcome:
    """The rollback rehearsal's result; every text field is already redacted.

    ``phase`` is where it stopped: ``"done"`` when every step ran, ``"preflight"`` when
    nothing ran (a skipped rollback included). ``exit_code`` is the
    rollback command's; ``output_tail`` is the last lines of the command that failed (or of
    the rollback command when all passed).
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
    interrupted: bool = False
    command_result: CommandResult | None = None
    restore_result: CommandResult | None = None
    verify_polls: int = 0
    restore: tuple[str, ...] | None = None

    @classmethod
    def skipped(cls, reason: str, config: RollbackConfig) -> RollbackOutcome:
        """The outcome of ``--no-rollback``: nothing ran."""
        return cls(
            outcome="skipped",
            phase="preflight",
            command=config.command or (),
            exit_code=None,
            duration_s=0.0,
            message=reason,
            output_tail="",
            owner=config.owner,
            note=config.note,
            expect=config.expect or expected_result(config),
            restore=config.restore,
        )

    def properties(self) -> dict[str, str]:
        """JUnit ``<property>`` pairs: what ran and how it ended.

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
        if self.command_result is not None:
            props.update(self.command_result.status_properties("rollback"))
            props["timed_out"] = _flag(self.command_result.timed_out)
            props["escalated_to_kill"] = _flag(self.command_result.escalated_to_kill)
            props["output_bytes"] = str(self.command_result.output_bytes)
            props["escaped"] = _flag(self.command_result.escaped)
            props["held_open"] = _flag(self.command_result.held_open)
        if self.verify_polls:
            props["verify_polls"] = str(self.verify_polls)
        if self.restore_result is not None:
            props.update(self.restore_result.status_properties("restore"))
            props["restore_timed_out"] = _flag(self.restore_result.timed_out)
        return props


def _flag(value: bool) -> str:
    return "true" if value else "false"


def expected_result(config: RollbackConfig, command: Sequence[str] | None = None) -> str:
    """The expected result in words, for when ``rollback.expect`` is not set.

    ``./deploy.sh rollback` exits 0 within 2m, then GET /health answers status 200 with JSON
    containing {"version": "1.4.2"} within 60s, then the restore `...` exits 0``.
    """
    argv = command or config.command
    subject = f"`{shlex.join(argv)}`" if argv else "a configured rollback command"
    text = f"{subject} exits 0 within {format_duration(config.timeout)}"
    if config.verify is not None:
        verify = config.verify
        text += (
            f", then GET {verify.path} answers "
            f"{describe_answer(verify.expect_status, verify.expect_json)} "
            f"within {format_duration(verify.within)}"
        )
    if config.restore:
        text += f", then the restore `{shlex.join(config.restore)}` exits 0"
    return text


def rehearse_rollback(
    config: RollbackConfig,
    *,
    command_override: tuple[str, ...] | None,
    fetch: Callable[[str], FetchResult],
    redactor: Redactor,
    on_line: Callable[[str], None] | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RollbackOutcome:
    """Run the rollback for real, verify staging went back, then roll forward.

    Steps, stopping at the first failure: a command must be configured; both the command and
    the restore must pass :func:`preflight` (so staging is never rolled back when it could
    not be rolled forward again); the command must exit 0 within ``config.timeout``; if
    ``config.verify`` is set, ``fetch(verify.path)`` is polled until it answers the expected
    status and JSON subset or ``verify.within`` runs out; if ``config.restore`` is set it
    runs like the command. A KeyboardInterrupt in any step ends the rehearsal as failed with
    ``interrupted=True``; it does not propagate. Every text in the outcome is redacted.
    """
    started = clock()
    command = command_override or config.command
    argv: tuple[str, ...] = tuple(command) if command else ()
    restore_note = (
        f"; the restore `{shlex.join(config.restore)}` was not run: check which version "
        "staging is on"
        if config.restore
        else ""
    )

    def finish(
        outcome: Outcome,
        phase: Phase,
        message: str,
        result: CommandResult | None = None,
        *,
        tail_from: CommandResult | None = None,
        restore_result: CommandResult | None = None,
        polls: int = 0,
        interrupted: bool = False,
    ) -> RollbackOutcome:
        shown_tail = tail_from or result
        return RollbackOutcome(
            outcome=outcome,
            phase=phase,
            command=tuple(redactor(arg) for arg in argv),
            exit_code=result.exit_code if result is not None else None,
            duration_s=clock() - started,
            message=redactor(message),
            output_tail=shown_tail.output_tail() if shown_tail is not None else "",
            owner=config.owner,
            note=config.note,
            expect=redactor(config.expect or expected_result(config, argv)),
            interrupted=interrupted,
            command_result=result,
            restore_result=restore_result,
            verify_polls=polls,
            restore=tuple(redactor(arg) for arg in config.restore) if config.restore else None,
        )

    if not argv:
        return finish("failed", "preflight", NO_COMMAND_MESSAGE)
    from .command import preflight, run_command  # not loaded by runs that roll nothing back

    steps = [(argv, "rollback command")]
    if config.restore:
        steps.append((tuple(config.restore), "restore command"))
    for step_argv, label in steps:
        problem = preflight(step_argv, config.cwd, env=config.env, label=label)
        if problem is not None:
            return finish("failed", "preflight", f"{problem}; nothing was run")

    def run(step_argv: tuple[str, ...], label: str) -> CommandResult:
        return run_command(
            step_argv,
            cwd=config.cwd,
            env=config.env,
            timeout=config.timeout,
            redactor=redactor,
            on_line=on_line,
            label=label,
        )

    result = run(argv, "rollback command")
    if not result.ok:
        message = f"rollback command `{shlex.join(argv)}` {result.describe()}{restore_note}"
        message += _tail_block(result)
        return finish("failed", "command", message, result, interrupted=result.interrupted)
    done = [f"rollback command exited 0 in {format_elapsed(result.duration_s)}"]
    if result.notes:
        done[0] += f" ({'; '.join(result.notes)})"

    polls = 0
    if config.verify is not None:
        verified, polls, detail = _verify(config.verify, fetch, sleep, clock)
        if verified is None:
            message = f"verification was interrupted after {polls} polls{restore_note}"
            return finish("failed", "verify", message, result, polls=polls, interrupted=True)
        if not verified:
            return finish("failed", "verify", detail + restore_note, result, polls=polls)
        done.append(detail)

    if config.restore:
        restore = tuple(config.restore)
        restored = run(restore, "restore command")
        if not restored.ok:
            before = "rollback verified" if config.verify is not None else "rollback succeeded"
            message = (
                f"{before}, but the restore (roll-forward) `{shlex.join(restore)}` "
                f"{restored.describe()}" + _tail_block(restored)
            )
            return finish(
                "failed",
                "restore",
                message,
                result,
                tail_from=restored,
                restore_result=restored,
                polls=polls,
                interrupted=restored.interrupted,
            )
        done.append(f"restore exited 0 in {format_elapsed(restored.duration_s)}")
        return finish(
            "passed", "done", "; ".join(done), result, restore_result=restored, polls=polls
        )
    return finish("passed", "done", "; ".join(done), result, polls=polls)


def _tail_block(result: CommandResult) -> str:
    tail = result.output_tail()
    if not tail:
        return "\n(no output)"
    indented = "\n".join(f"    {line}" for line in tail.splitlines())
    return f"\nlast lines of output ({result.output_bytes:,} bytes in all):\n{indented}"


def _verify(
    verify: VerifyConfig,
    fetch: Callable[[str], FetchResult],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[bool | None, int, str]:
    """Poll until staging answers as expected: ``(verified, polls, detail)``.

    ``verified`` is ``None`` when interrupted. The interval grows from 0.5 s to 2 s, and the
    poll count is capped by ``within`` even if *clock* misbehaves.
    """
    expected = describe_answer(verify.expect_status, verify.expect_json)
    started = clock()
    deadline = started + verify.within
    max_polls = int(verify.within / _VERIFY_FIRST_INTERVAL_S) + 1
    interval = _VERIFY_FIRST_INTERVAL_S
    polls = 0
    last = FetchResult(status=None, error="no answer")
    try:
        while True:
            polls += 1
            last = _fetch_safely(fetch, verify.path)
            if last.error is None and judge_answer(
                last.status, last.body, verify.expect_status, verify.expect_json
            ):
                took = format_elapsed(clock() - started)
                detail = f"GET {verify.path} answered {expected} after {polls} polls ({took})"
                return True, polls, detail
            remaining = deadline - clock()
            if remaining <= 0 or polls >= max_polls:
                break
            sleep(min(interval, remaining))
            interval = min(interval * 1.5, _VERIFY_MAX_INTERVAL_S)
    except KeyboardInterrupt:
        return None, polls, ""
    detail = (
        f"verification not met within {format_duration(verify.within)}: GET {verify.path} "
        f"expected {expected}; last seen {_describe_fetch(last)} (after {polls} polls)"
    )
    return False, polls, detail


def _fetch_safely(fetch: Callable[[str], FetchResult], path: str) -> FetchResult:
    """The fetcher's answer; an exception from it counts as a failed poll, not a crash."""
    try:
        return fetch(path)
    except Exception as exc:
        return FetchResult(status=None, error=f"{type(exc).__name__}: {exc}")


def _describe_fetch(result: FetchResult) -> str:
    if result.error is not None:
        return f"an error: {result.error}"
    if not result.body:
        return f"{result.status} with an empty body"
    try:
        body = json.dumps(json.loads(result.body), ensure_ascii=False)
    except ValueError:
        body = result.body.decode(errors="replace")
    return f"{result.status} {excerpt(body, 300)}"
