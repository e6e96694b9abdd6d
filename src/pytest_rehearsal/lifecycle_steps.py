"""The steps of the release lifecycle, and what they share: reading staging, polling it.

Pure module, no pytest glue, used by :mod:`.lifecycle`, which runs the steps in sequence.
Each step is a small function that returns a :class:`~.release.StepRecord` (and what it
found); staging is reached only through a :data:`Fetch` and commands only through
:mod:`.command`. The failure messages of the steps say what was requested, what was expected,
what came back, and whether retrying is safe (:data:`RETRY_SAFE`, :data:`RETRY_UNSAFE`).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .answers import describe_answer, describe_json, judge_answer, parse_json
from .checks._leaks import mask_secrets
from .release import Snapshot, StepName, StepRecord, show_value
from .text import excerpt, plural
from .units import format_duration, format_elapsed

if TYPE_CHECKING:
    from .command import CommandResult
    from .config import RehearsalConfig
    from .redact import Redactor

__all__ = [
    "MISSING",
    "NOT_ANSWERED_MESSAGE",
    "NO_COMMAND_MESSAGE",
    "RETRY_SAFE",
    "RETRY_SAFE_RESTORED",
    "RETRY_UNSAFE",
    "Fetch",
    "FetchResult",
    "Polled",
    "Say",
    "StepContext",
    "StepTimer",
    "Target",
    "baseline_step",
    "command_step",
    "health_step",
    "health_target",
    "preflight_step",
    "previous_step",
    "restore_verify_step",
    "rollback_goals",
    "verify_step",
    "verify_target",
]


#: Whether running the rehearsal again is safe, on the first line of every failure message:
#: safe while nothing has touched staging (or the restore put it back), not safe blindly
#: once a command may have left it part way.
RETRY_SAFE = "retrying is safe"
RETRY_UNSAFE = "retrying is not safe until you have checked what staging serves"
#: Once the restore verify has seen staging answer as before the rollback, whatever failed
#: on the way: staging is where the rehearsal found it.
RETRY_SAFE_RESTORED = f"{RETRY_SAFE}: staging was restored"
NO_COMMAND_MESSAGE = (
    "no rollback command is configured: a release without a rollback path is not ready "
    f"(set rollback.command in rehearsal.yaml or pass --rollback-command; {RETRY_SAFE})"
)
NOT_ANSWERED_MESSAGE = "staging did not answer before the rollback; nothing was rolled back"


_FIRST_INTERVAL_S = 0.5  # verify polls: 0.5 s, growing by half to 2 s
_MAX_INTERVAL_S = 2.0
_PROGRESS_EVERY_S = 3.0  # a verify progress line at most this often
#: A tracked field the body does not have.
MISSING = object()


@dataclass(frozen=True)
class FetchResult:
    """One GET on staging: a status and body, or a transport error; *elapsed* in seconds."""

    status: int | None
    body: bytes = b""
    error: str | None = None
    elapsed: float = 0.0


#: GET a path on staging; bounded by the request timeout and safe to call from two threads
#: at once (the watch polls while the verify does).
Fetch = Callable[[str], FetchResult]
#: Receives complete lines of progress: step starts, prefixed command output, verify polling.
Say = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# what the lifecycle reads staging through


@dataclass(frozen=True)
class Target:
    """A path on staging, and what its answer must be."""

    path: str
    expect_status: int
    expect_json: Mapping[str, Any] | None
    track: tuple[str, ...]
    within: float

    @property
    def fields(self) -> tuple[str, ...]:
        """What a snapshot records: the tracked fields and the keys of ``expect_json``."""
        return tuple(dict.fromkeys((*self.track, *(self.expect_json or {}))))

    def expected(self) -> str:
        return describe_answer(self.expect_status, self.expect_json)


def verify_target(config: RehearsalConfig) -> Target:
    """``rollback.verify``; without it, the health path with its status (nothing tracked)."""
    verify = config.rollback.verify
    if verify is not None:
        return Target(
            verify.path, verify.expect_status, verify.expect_json, verify.track, verify.within
        )
    health = config.checks.health
    if health is None:
        return Target("/health", 200, None, (), 60.0)
    return Target(health.path, health.expect_status, None, (), 60.0)


def health_target(config: RehearsalConfig, within: float) -> Target:
    """The health check (``checks.health``); switched off, the verify path's status instead."""
    health = config.checks.health
    if health is not None:
        return Target(health.path, health.expect_status, health.expect_json, (), within)
    verify = verify_target(config)
    return Target(verify.path, verify.expect_status, None, (), within)


@dataclass(frozen=True)
class StepContext:
    """What every step needs: the config, staging, the redactor, the terminal and the time."""

    config: RehearsalConfig
    fetch: Fetch
    redactor: Redactor
    say_line: Say
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def say(self, line: str) -> None:
        self.say_line(self.redactor(line))

    def get(self, path: str) -> FetchResult:
        """The fetcher's answer; an exception from it is a failed request, not a crash."""
        try:
            return self.fetch(path)
        except Exception as exc:
            return FetchResult(status=None, error=f"{type(exc).__name__}: {exc}")

    def snapshot(self, result: FetchResult, fields: Sequence[str]) -> Snapshot:
        if result.error is not None:
            return Snapshot(None, {}, self.redactor(result.error))
        parsed = parse_json(result.body)
        tracked: dict[str, Any] = {}
        if parsed.ok:
            for name in fields:
                value = _lookup(parsed.value, name)
                if value is not MISSING:
                    tracked[name] = _redacted(value, self.redactor)
        return Snapshot(result.status, tracked)

    def run(self, argv: Sequence[str], label: str, prefix: str, timeout: float) -> CommandResult:
        from .command import run_command  # the runner is loaded only when something runs

        rollback = self.config.rollback
        return run_command(
            argv,
            cwd=rollback.cwd,
            env=rollback.env,
            timeout=timeout,
            redactor=self.redactor,
            on_line=lambda line: self.say_line(f"{prefix} | {line}"),
            label=label,
        )


class StepTimer:
    """When a step started, in both clocks: wall time for the records, *clock* for durations."""

    def __init__(self, run: StepContext) -> None:
        self._run = run
        self._wall = time.time()
        self._start = run.clock()

    def record(
        self, step: StepName, passed: bool, message: str, exit_code: int | None = None
    ) -> StepRecord:
        return StepRecord(
            step=step,
            outcome="passed" if passed else "failed",
            duration_s=self._run.clock() - self._start,
            message=self._run.redactor(message),
            exit_code=exit_code,
            started_at=self._wall,
        )


def _lookup(value: Any, dotted: str) -> Any:
    """The field at the dotted path (``build.sha``, ``items.0``), or ``MISSING``."""
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _redacted(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, list):
        return [_redacted(item, redactor) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, redactor) for key, item in value.items()}
    return value


def _describe_fetch(result: FetchResult) -> str:
    """What came back, for failure messages: ``200 {"ok": true}`` or ``an error: ...``.

    A secret in the body that the run does not know (a key, a token) is masked as the
    checks mask it: the redactor knows only the run's own tokens.
    """
    if result.error is not None:
        return f"an error: {excerpt(result.error, 300)}"
    if not result.body:
        return f"{result.status} with an empty body"
    parsed = parse_json(result.body)
    if parsed.ok:
        body = json.dumps(parsed.value, ensure_ascii=False)
    else:
        body = result.body.decode("utf-8", errors="replace")
    return f"{result.status} {excerpt(mask_secrets(body), 300)}"


def _serving(result: FetchResult, snapshot: Snapshot, expect_status: int) -> str:
    """What staging serves now, for progress lines: ``version 1.5.0``, ``status 503 ...``."""
    if result.error is not None:
        return f"no answer ({excerpt(result.error, 100)})"
    shown = snapshot.describe()
    if shown and result.status == expect_status:
        return shown
    return f"status {result.status}, {shown}" if shown else f"status {result.status}"


def _tail_block(result: CommandResult) -> str:
    tail = result.output_tail()
    if not tail:
        return "\n(no output)"
    indented = "\n".join(f"    {line}" for line in tail.splitlines())
    return f"\nlast lines of output ({result.output_bytes:,} bytes in all):\n{indented}"


# --------------------------------------------------------------------------------------------
# polling: verify, restore verify, deploy health

#: What a poll still waits for (``a change``, ``version 1.4.2``), or None when it is met.
_Awaits = Callable[[FetchResult, Snapshot], "str | None"]


@dataclass(frozen=True)
class Polled:
    """The last poll of a wait: whether it met the expectation, and what it saw."""

    met: bool
    polls: int
    last: FetchResult
    snapshot: Snapshot
    awaited: str | None  # what the last poll still waited for
    at: float  # clock() of the last poll


def _poll_until(run: StepContext, target: Target, awaits: _Awaits) -> Polled:
    """Poll ``target.path`` until *awaits* is met or ``target.within`` runs out.

    The interval grows from 0.5 s to 2 s; the poll count is capped by ``within`` even if the
    clock misbehaves. Every few seconds a line says what staging serves and what is awaited.
    """
    started = run.clock()
    deadline = started + target.within
    max_polls = int(target.within / _FIRST_INTERVAL_S) + 1
    interval = _FIRST_INTERVAL_S
    said = started
    polls = 0
    while True:
        polls += 1
        result = run.get(target.path)
        snapshot = run.snapshot(result, target.fields)
        awaited = awaits(result, snapshot)
        now = run.clock()
        if awaited is None:
            return Polled(True, polls, result, snapshot, None, now)
        remaining = deadline - now
        if remaining <= 0 or polls >= max_polls:
            return Polled(False, polls, result, snapshot, awaited, now)
        if now - said >= _PROGRESS_EVERY_S:
            run.say(
                f"rehearsal: GET {target.path}: "
                f"{_serving(result, snapshot, target.expect_status)}, waiting for {awaited}, "
                f"{format_elapsed(now - started)} of {format_duration(target.within)}"
            )
            said = now
        run.sleep(min(interval, remaining))
        interval = min(interval * 1.5, _MAX_INTERVAL_S)


def _answers_health(target: Target) -> _Awaits:
    def awaits(result: FetchResult, snapshot: Snapshot) -> str | None:
        if result.error is None and judge_answer(
            result.status, result.body, target.expect_status, target.expect_json
        ):
            return None
        return target.expected()

    return awaits


def rollback_goals(
    target: Target, baseline: Snapshot | None, previous: Snapshot | None
) -> dict[str, Any]:
    """The tracked values the rollback must reach: the release before the deploy's.

    A field the deploy did not change (the same before and after it) cannot show a return
    to the previous release; for it, a change from the baseline is what is checked.
    """
    if previous is None:
        return {}
    return {
        name: previous.tracked[name]
        for name in target.track
        if name in previous.tracked
        and (baseline is None or baseline.tracked.get(name, MISSING) != previous.tracked[name])
    }


def _went_back(target: Target, baseline: Snapshot | None, goals: Mapping[str, Any]) -> _Awaits:
    """Verify: the expected answer, every tracked field changed (or at the goal)."""

    def awaits(result: FetchResult, snapshot: Snapshot) -> str | None:
        if result.error is not None or result.status != target.expect_status:
            return f"status {target.expect_status}"
        if target.expect_json and not judge_answer(
            result.status, result.body, target.expect_status, target.expect_json
        ):
            return describe_json(target.expect_json)
        for name in target.track:
            now = snapshot.tracked.get(name, MISSING)
            if name in goals:
                if now != goals[name]:
                    return f"{name} {show_value(goals[name])}"
            elif baseline is not None and now == baseline.tracked.get(name, MISSING):
                return "a change"
        return None

    return awaits


def _came_back(target: Target, baseline: Snapshot) -> _Awaits:
    """Restore verify: the expected status, and every recorded field as in the baseline."""

    def awaits(result: FetchResult, snapshot: Snapshot) -> str | None:
        if result.error is not None or result.status != target.expect_status:
            return f"status {target.expect_status}"
        for name in target.fields:
            if snapshot.tracked.get(name, MISSING) != baseline.tracked.get(name, MISSING):
                return f"{baseline.describe()} (as before the rollback)"
        return None

    return awaits


def _verify_expected(target: Target, baseline: Snapshot | None, goals: Mapping[str, Any]) -> str:
    """The verify's expectation in words."""
    parts = []
    for name in target.track:
        if name in goals:
            parts.append(f"{name} {show_value(goals[name])} (the release before the deploy)")
        elif baseline is not None:
            before = baseline.tracked.get(name, MISSING)
            shown = "missing" if before is MISSING else show_value(before)
            parts.append(f"{name} other than {shown}")
    expected = target.expected()
    return f"{expected} and {', '.join(parts)}" if parts else expected


# --------------------------------------------------------------------------------------------
# steps


def previous_step(run: StepContext, target: Target) -> tuple[StepRecord, Snapshot]:
    """Deploy: what staging serves before the deploy is the *previous release*."""
    timer = StepTimer(run)
    result = run.get(target.path)
    snapshot = run.snapshot(result, target.fields)
    if result.error is not None or result.status is None or result.status >= 500:
        message = (
            f"staging did not answer GET {target.path} before the deploy "
            f"({_describe_fetch(result)}): the release before it is unknown"
        )
    else:
        message = f"GET {target.path} served {_serving(result, snapshot, 0)} before the deploy"
    return timer.record("baseline", True, message), snapshot


def baseline_step(run: StepContext, target: Target) -> tuple[StepRecord, Snapshot]:
    """Rollback: staging must answer, and its answer (the release under test) is recorded."""
    timer = StepTimer(run)
    result = run.get(target.path)
    snapshot = run.snapshot(result, target.fields)
    problem = _baseline_problem(target, result, snapshot)
    if problem is not None:
        return timer.record("baseline", False, problem), snapshot
    shown = snapshot.describe() or f"status {result.status}"
    return timer.record("baseline", True, f"GET {target.path} served {shown}"), snapshot


def _baseline_problem(target: Target, result: FetchResult, snapshot: Snapshot) -> str | None:
    got = _describe_fetch(result)
    if result.error is not None or result.status is None or result.status >= 500:
        return (
            f"{NOT_ANSWERED_MESSAGE}: GET {target.path} expected status {target.expect_status}, "
            f"got {got} ({RETRY_SAFE})"
        )
    if result.status != target.expect_status:
        return (
            f"staging answered GET {target.path} with {got} before the rollback, expected "
            f"status {target.expect_status} (is verify.path right?); nothing was rolled back "
            f"({RETRY_SAFE})"
        )
    missing = [name for name in target.track if name not in snapshot.tracked]
    if missing:
        return (
            f"GET {target.path} has no {', '.join(missing)} to track (verify.track) before the "
            f"rollback; it serves {got}; nothing was rolled back ({RETRY_SAFE})"
        )
    if target.expect_json and judge_answer(
        result.status, result.body, target.expect_status, target.expect_json
    ):
        return (
            f"staging already answers GET {target.path} with {target.expected()} before the "
            "rollback: the verification cannot tell the releases apart (expect_json is what "
            "the previous release serves; verify.track needs no version); nothing was rolled "
            f"back ({RETRY_SAFE})"
        )
    return None


def preflight_step(run: StepContext, commands: Sequence[tuple[Sequence[str], str]]) -> StepRecord:
    """Every command must be startable before the first one runs."""
    from .command import preflight

    timer = StepTimer(run)
    rollback = run.config.rollback
    for argv, label in commands:
        problem = preflight(argv, rollback.cwd, env=rollback.env, label=label)
        if problem is not None:
            return timer.record("preflight", False, f"{problem}; nothing was run ({RETRY_SAFE})")
    labels = " and the ".join(label for _, label in commands)
    return timer.record("preflight", True, f"the {labels} can be started")


def command_step(
    run: StepContext, step: StepName, argv: Sequence[str], label: str, timeout: float
) -> tuple[StepRecord, CommandResult]:
    """One command of the lifecycle (deploy, rollback command or restore), live and bounded."""
    prefix = {"deploy": "deploy", "command": "rollback", "restore": "restore"}[step]
    verb = {"deploy": "deploying", "command": "rolling back", "restore": "restoring"}[step]
    timer = StepTimer(run)
    run.say(f"rehearsal: {verb}: {shlex.join(argv)}")
    result = run.run(argv, label, prefix, timeout)
    if result.ok:
        message = f"{label} exited 0 in {format_elapsed(result.duration_s)}"
        if result.notes:
            message += f" ({'; '.join(result.notes)})"
    elif not result.started:
        # Preflight passed, then the executable changed: this command did nothing. Only a
        # restore leaves staging where the rollback command took it.
        advice = RETRY_UNSAFE if step == "restore" else RETRY_SAFE
        message = f"{result.describe()}; it did not run ({advice})"
    else:
        # It may have stopped part way.
        message = (
            f"{label} `{shlex.join(argv)}` {result.describe()} ({RETRY_UNSAFE})"
            f"{_tail_block(result)}"
        )
    return timer.record(step, result.ok, message, result.exit_code), result


def verify_step(
    run: StepContext, target: Target, baseline: Snapshot | None, goals: Mapping[str, Any]
) -> tuple[StepRecord, Polled]:
    """Poll until staging serves what the previous release serves."""
    timer = StepTimer(run)
    expected = _verify_expected(target, baseline, goals)
    run.say(
        f"rehearsal: verifying: GET {target.path} until it answers {expected} "
        f"(within {format_duration(target.within)})"
    )
    polled = _poll_until(run, target, _went_back(target, baseline, goals))
    polls = plural(polled.polls, "poll")
    if polled.met:
        shown = polled.snapshot.describe()
        # What it serves, unless the expectation already named it ("version 1.4.2 (the
        # release before the deploy)").
        served = f" ({shown})" if shown and shown not in expected else ""
        message = f"GET {target.path} answered {expected}{served} after {polls}"
    else:
        message = (
            f"verification not met within {format_duration(target.within)}: GET {target.path} "
            f"expected {expected}; last seen {_describe_fetch(polled.last)} (after {polls}); "
            f"{RETRY_UNSAFE}"
        )
    return timer.record("verify", polled.met, message), polled


def restore_verify_step(
    run: StepContext, target: Target, baseline: Snapshot
) -> tuple[StepRecord, Polled]:
    """Poll until staging answers like the baseline again."""
    timer = StepTimer(run)
    before = baseline.describe() or f"status {target.expect_status}"
    run.say(
        f"rehearsal: verifying the restore: GET {target.path} until it serves {before} again "
        f"(within {format_duration(target.within)})"
    )
    polled = _poll_until(run, target, _came_back(target, baseline))
    polls = plural(polled.polls, "poll")
    if polled.met:
        message = f"GET {target.path} serves {before} again, as before the rollback, after {polls}"
    else:
        now = _serving(polled.last, polled.snapshot, target.expect_status)
        message = (
            f"restore not verified within {format_duration(target.within)}: after the restore, "
            f"GET {target.path} serves {now}; expected {before}, as before the rollback "
            f"(last seen {_describe_fetch(polled.last)}, after {polls}); {RETRY_UNSAFE}"
        )
    return timer.record("restore_verify", polled.met, message), polled


def health_step(run: StepContext, health: Target) -> tuple[StepRecord, Polled]:
    """Deploy: staging must then pass its health check within ``deploy.within``."""
    timer = StepTimer(run)
    run.say(
        f"rehearsal: waiting for the health check: GET {health.path} until it answers "
        f"{health.expected()} (within {format_duration(health.within)})"
    )
    polled = _poll_until(run, health, _answers_health(health))
    polls = plural(polled.polls, "poll")
    if polled.met:
        message = f"GET {health.path} answered {health.expected()} after {polls}"
    else:
        message = (
            f"staging did not pass its health check within {format_duration(health.within)} "
            f"after the deploy: GET {health.path} expected {health.expected()}; last seen "
            f"{_describe_fetch(polled.last)} (after {polls}); {RETRY_UNSAFE}"
        )
    return timer.record("deploy_health", polled.met, message), polled
