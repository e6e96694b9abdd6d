"""The release lifecycle: deploy the release, then roll it back, verify, restore, verify again.

Pure module, no pytest glue: staging is reached only through a :data:`Fetch` (one GET,
bounded by the request timeout, thread-safe) and commands only through :mod:`.command`.
Each step is a small function that returns a :class:`~.release.StepRecord`; the two
sequences read top to bottom:

- :func:`rehearse_deploy`: preflight, the *previous release* (what the verify path serves
  before the deploy), the deploy command, then the health check within ``deploy.within``.
- :func:`rehearse_rollback`: baseline (the release under test; skipped after a failed
  deploy), preflight of the command and the restore, the command (watched), verify, restore
  (whenever the command started, unless ``restore_after: verified``), restore verify, then
  the budgets ``max_recovery`` and ``max_outage``.

A KeyboardInterrupt (Ctrl-C, or the SIGTERM of a cancelled CI job) ends either sequence as
``failed`` with ``interrupted=True`` instead of propagating. When it comes after the
rollback command started, the restore is run once more before giving up, if it is
configured, allowed (``restore_after: always``) and did not start yet: staging is shared,
and a rollback left half done is worse than one more roll-forward. Its own timeout bounds
it, a second Ctrl-C stops it (the runner kills its process group), and it is not verified.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .answers import describe_answer, describe_json, judge_answer, parse_json
from .checks._leaks import mask_secrets
from .release import (
    DeployRecord,
    Phase,
    Recovery,
    RollbackRecord,
    Snapshot,
    StepName,
    StepRecord,
    WatchSummary,
    deploy_expected,
    expected_result,
    show_value,
)
from .text import excerpt, plural
from .units import format_duration, format_elapsed
from .watch import Watch

if TYPE_CHECKING:
    from .command import CommandResult
    from .config import RehearsalConfig
    from .redact import Redactor

__all__ = [
    "NOT_ANSWERED_MESSAGE",
    "NO_COMMAND_MESSAGE",
    "RETRY_SAFE",
    "RETRY_SAFE_RESTORED",
    "RETRY_UNSAFE",
    "Fetch",
    "FetchResult",
    "Say",
    "rehearse_deploy",
    "rehearse_rollback",
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
_WATCH_MARGIN_S = 10.0  # beyond every step's own limit (kill grace, reaping)
_MISSING = object()  # a tracked field the body does not have


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
class _Target:
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


def _verify_target(config: RehearsalConfig) -> _Target:
    """``rollback.verify``; without it, the health path with its status (nothing tracked)."""
    verify = config.rollback.verify
    if verify is not None:
        return _Target(
            verify.path, verify.expect_status, verify.expect_json, verify.track, verify.within
        )
    health = config.checks.health
    if health is None:
        return _Target("/health", 200, None, (), 60.0)
    return _Target(health.path, health.expect_status, None, (), 60.0)


def _health_target(config: RehearsalConfig, within: float) -> _Target:
    """The health check (``checks.health``); switched off, the verify path's status instead."""
    health = config.checks.health
    if health is not None:
        return _Target(health.path, health.expect_status, health.expect_json, (), within)
    verify = _verify_target(config)
    return _Target(verify.path, verify.expect_status, None, (), within)


@dataclass(frozen=True)
class _Run:
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
                if value is not _MISSING:
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


class _Timer:
    """When a step started, in both clocks: wall time for the records, *clock* for durations."""

    def __init__(self, run: _Run) -> None:
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
    """The field at the dotted path (``build.sha``, ``items.0``), or ``_MISSING``."""
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
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
class _Polled:
    """The last poll of a wait: whether it met the expectation, and what it saw."""

    met: bool
    polls: int
    last: FetchResult
    snapshot: Snapshot
    awaited: str | None  # what the last poll still waited for
    at: float  # clock() of the last poll


def _poll_until(run: _Run, target: _Target, awaits: _Awaits) -> _Polled:
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
            return _Polled(True, polls, result, snapshot, None, now)
        remaining = deadline - now
        if remaining <= 0 or polls >= max_polls:
            return _Polled(False, polls, result, snapshot, awaited, now)
        if now - said >= _PROGRESS_EVERY_S:
            run.say(
                f"rehearsal: GET {target.path}: "
                f"{_serving(result, snapshot, target.expect_status)}, waiting for {awaited}, "
                f"{format_elapsed(now - started)} of {format_duration(target.within)}"
            )
            said = now
        run.sleep(min(interval, remaining))
        interval = min(interval * 1.5, _MAX_INTERVAL_S)


def _answers_health(target: _Target) -> _Awaits:
    def awaits(result: FetchResult, snapshot: Snapshot) -> str | None:
        if result.error is None and judge_answer(
            result.status, result.body, target.expect_status, target.expect_json
        ):
            return None
        return target.expected()

    return awaits


def _goals(target: _Target, baseline: Snapshot | None, previous: Snapshot | None) -> dict[str, Any]:
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
        and (baseline is None or baseline.tracked.get(name, _MISSING) != previous.tracked[name])
    }


def _went_back(target: _Target, baseline: Snapshot | None, goals: Mapping[str, Any]) -> _Awaits:
    """Verify: the expected answer, every tracked field changed (or at the goal)."""

    def awaits(result: FetchResult, snapshot: Snapshot) -> str | None:
        if result.error is not None or result.status != target.expect_status:
            return f"status {target.expect_status}"
        if target.expect_json and not judge_answer(
            result.status, result.body, target.expect_status, target.expect_json
        ):
            return describe_json(target.expect_json)
        for name in target.track:
            now = snapshot.tracked.get(name, _MISSING)
            if name in goals:
                if now != goals[name]:
                    return f"{name} {show_value(goals[name])}"
            elif baseline is not None and now == baseline.tracked.get(name, _MISSING):
                return "a change"
        return None

    return awaits


def _came_back(target: _Target, baseline: Snapshot) -> _Awaits:
    """Restore verify: the expected status, and every recorded field as in the baseline."""

    def awaits(result: FetchResult, snapshot: Snapshot) -> str | None:
        if result.error is not None or result.status != target.expect_status:
            return f"status {target.expect_status}"
        for name in target.fields:
            if snapshot.tracked.get(name, _MISSING) != baseline.tracked.get(name, _MISSING):
                return f"{baseline.describe()} (as before the rollback)"
        return None

    return awaits


def _verify_expected(target: _Target, baseline: Snapshot | None, goals: Mapping[str, Any]) -> str:
    """The verify's expectation in words."""
    parts = []
    for name in target.track:
        if name in goals:
            parts.append(f"{name} {show_value(goals[name])} (the release before the deploy)")
        elif baseline is not None:
            before = baseline.tracked.get(name, _MISSING)
            shown = "missing" if before is _MISSING else show_value(before)
            parts.append(f"{name} other than {shown}")
    expected = target.expected()
    return f"{expected} and {', '.join(parts)}" if parts else expected


# --------------------------------------------------------------------------------------------
# steps


def _previous_step(run: _Run, target: _Target) -> tuple[StepRecord, Snapshot]:
    """Deploy: what staging serves before the deploy is the *previous release*."""
    timer = _Timer(run)
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


def _baseline_step(run: _Run, target: _Target) -> tuple[StepRecord, Snapshot]:
    """Rollback: staging must answer, and its answer (the release under test) is recorded."""
    timer = _Timer(run)
    result = run.get(target.path)
    snapshot = run.snapshot(result, target.fields)
    problem = _baseline_problem(target, result, snapshot)
    if problem is not None:
        return timer.record("baseline", False, problem), snapshot
    shown = snapshot.describe() or f"status {result.status}"
    return timer.record("baseline", True, f"GET {target.path} served {shown}"), snapshot


def _baseline_problem(target: _Target, result: FetchResult, snapshot: Snapshot) -> str | None:
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


def _preflight_step(run: _Run, commands: Sequence[tuple[Sequence[str], str]]) -> StepRecord:
    """Every command must be startable before the first one runs."""
    from .command import preflight

    timer = _Timer(run)
    rollback = run.config.rollback
    for argv, label in commands:
        problem = preflight(argv, rollback.cwd, env=rollback.env, label=label)
        if problem is not None:
            return timer.record("preflight", False, f"{problem}; nothing was run ({RETRY_SAFE})")
    labels = " and the ".join(label for _, label in commands)
    return timer.record("preflight", True, f"the {labels} can be started")


def _command_step(
    run: _Run, step: StepName, argv: Sequence[str], label: str, timeout: float
) -> tuple[StepRecord, CommandResult]:
    """One command of the lifecycle (deploy, rollback command or restore), live and bounded."""
    prefix = {"deploy": "deploy", "command": "rollback", "restore": "restore"}[step]
    verb = {"deploy": "deploying", "command": "rolling back", "restore": "restoring"}[step]
    timer = _Timer(run)
    run.say(f"rehearsal: {verb}: {shlex.join(argv)}")
    result = run.run(argv, label, prefix, timeout)
    if result.ok:
        message = f"{label} exited 0 in {format_elapsed(result.duration_s)}"
        if result.notes:
            message += f" ({'; '.join(result.notes)})"
    else:
        # It may have stopped part way (or, had it not started, preflight would have said).
        message = (
            f"{label} `{shlex.join(argv)}` {result.describe()} ({RETRY_UNSAFE})"
            f"{_tail_block(result)}"
        )
    return timer.record(step, result.ok, message, result.exit_code), result


def _verify_step(
    run: _Run, target: _Target, baseline: Snapshot | None, goals: Mapping[str, Any]
) -> tuple[StepRecord, _Polled]:
    """Poll until staging serves what the previous release serves."""
    timer = _Timer(run)
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


def _restore_verify_step(
    run: _Run, target: _Target, baseline: Snapshot
) -> tuple[StepRecord, _Polled]:
    """Poll until staging answers like the baseline again."""
    timer = _Timer(run)
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


def _health_step(run: _Run, health: _Target) -> tuple[StepRecord, _Polled]:
    """Deploy: staging must then pass its health check within ``deploy.within``."""
    timer = _Timer(run)
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


# --------------------------------------------------------------------------------------------
# the deploy


def rehearse_deploy(
    config: RehearsalConfig,
    *,
    fetch: Fetch,
    redactor: Redactor,
    say: Say,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployRecord:
    """Deploy the release under test for real: previous release, command, health.

    Steps, stopping at the first failure: the deploy command must pass preflight; the verify
    (else health) path's answer is recorded as ``previous`` (staging may be down: then the
    previous release is unknown, which is no failure); the command runs with
    ``rollback.cwd``/``env`` and ``deploy.timeout``, live ``deploy | ...`` lines through
    *say*; then staging must pass the health check within ``deploy.within``. The last line
    said is the record's :meth:`~.release.DeployRecord.summary_line`. Raises
    :class:`ValueError` when the config has no ``deploy``.
    """
    deploy = config.deploy
    if deploy is None:
        raise ValueError("rehearse_deploy needs a config with a deploy section")
    run = _Run(config, fetch, redactor, say, clock, sleep)
    started, wall = clock(), time.time()
    target = _verify_target(config)
    health = _health_target(config, deploy.within)
    steps: list[StepRecord] = []
    previous = deployed = None
    result: CommandResult | None = None
    interrupted = False
    try:
        steps.append(_preflight_step(run, [(deploy.command, "deploy command")]))
        if steps[-1].outcome == "passed":
            step, previous = _previous_step(run, target)
            steps.append(step)
            step, result = _command_step(
                run, "deploy", deploy.command, "deploy command", deploy.timeout
            )
            steps.append(step)
            if result.interrupted:
                raise KeyboardInterrupt
            if step.outcome == "passed":
                step, polled = _health_step(run, health)
                steps.append(step)
                if polled.met:
                    last = polled.last if health.path == target.path else run.get(target.path)
                    deployed = run.snapshot(last, target.fields)
    except KeyboardInterrupt:
        interrupted = True
    failed = next((step for step in steps if step.outcome == "failed"), None)
    if failed is not None:
        message = failed.message
    elif interrupted:
        message = f"the deploy was interrupted; {RETRY_UNSAFE}"
    else:
        message = "; ".join(step.message for step in steps if step.step != "preflight")
    tail_from = (
        result if result is not None and (failed is None or failed.step == "deploy") else None
    )
    record = DeployRecord(
        outcome="failed" if failed is not None or interrupted else "passed",
        command=tuple(redactor(arg) for arg in deploy.command),
        exit_code=result.exit_code if result is not None else None,
        duration_s=clock() - started,
        message=redactor(message),
        output_tail=tail_from.output_tail() if tail_from is not None else "",
        previous=previous,
        steps=tuple(steps),
        owner=deploy.owner,
        expect=redactor(
            deploy.expect
            or deploy_expected(deploy, f"GET {health.path} answers {health.expected()}")
        ),
        rollback_note=deploy.rollback_note,
        started_at=wall,
        deployed=deployed,
        interrupted=interrupted,
    )
    run.say(record.summary_line())
    return record


# --------------------------------------------------------------------------------------------
# the rollback


@dataclass
class _Rollback:
    """The rollback as it goes: what each step found, for the record built at the end."""

    argv: tuple[str, ...]
    restore: tuple[str, ...] | None  # None after a failed deploy: no restore then
    steps: list[StepRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_failures: list[tuple[Phase, str]] = field(default_factory=list)  # budgets, interrupts
    current: Phase = "baseline"
    baseline: Snapshot | None = None
    command_result: CommandResult | None = None
    restore_result: CommandResult | None = None
    command_started: float | None = None  # clock() when the rollback command started
    reached: Snapshot | None = None
    restored: Snapshot | None = None
    to_previous: float | None = None
    to_restored: float | None = None
    verify_polls: int = 0
    interrupted: bool = False

    def add(self, step: StepRecord) -> bool:
        """Record *step*; whether it passed."""
        self.steps.append(step)
        return step.outcome == "passed"

    def failures(self) -> list[tuple[Phase, str]]:
        """Every failure in order; the first names the phase. Rollback steps are phases."""
        failed = [
            (cast(Phase, step.step), step.message)
            for step in self.steps
            if step.outcome == "failed"
        ]
        return failed + self.extra_failures


def rehearse_rollback(
    config: RehearsalConfig,
    *,
    command_override: tuple[str, ...] | None,
    fetch: Fetch,
    redactor: Redactor,
    say: Say,
    deploy: DeployRecord | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RollbackRecord:
    """Roll staging back for real, verify it went back, restore it, and verify that too.

    *command_override* (``--rollback-command``) replaces ``rollback.command``; *deploy* is
    the record of the deploy that ran before the checks, if one did. Every step, and how a
    failure or Ctrl-C changes what follows, is described in the module docstring; every
    text in the record is redacted. *say* gets each step's start, the commands' output
    (``rollback | ``, ``restore | ``), verify progress, and last the record's
    :meth:`~.release.RollbackRecord.summary_line`.
    """
    run = _Run(config, fetch, redactor, say, clock, sleep)
    rollback = config.rollback
    started, wall = clock(), time.time()
    after_failed_deploy = deploy is not None and deploy.outcome == "failed"
    argv = tuple(command_override or rollback.command or ())
    if after_failed_deploy and deploy is not None:
        untouched = _untouched_by_the_deploy(run, _verify_target(config), deploy, argv)
        if untouched is not None:
            run.say(untouched.summary_line())
            return untouched
    state = _Rollback(argv=argv, restore=None if after_failed_deploy else rollback.restore)
    summary: WatchSummary | None = None
    if not state.argv:
        state.extra_failures.append(("preflight", NO_COMMAND_MESSAGE))
    else:
        target = _verify_target(config)
        watch = _watch(run, target) if rollback.watch is not None else None
        try:
            _rollback_steps(run, state, target, deploy, watch)
        except KeyboardInterrupt:
            _after_interrupt(run, state)
        finally:
            if watch is not None and state.command_started is not None:
                summary = watch.stop()
        _judge_budgets(run, state, summary)
    if state.command_started is not None and not after_failed_deploy:
        _note_staging_left(state, rollback.restore_after)
    record = _rollback_record(run, state, started, wall, summary)
    run.say(record.summary_line())
    return record


def _untouched_by_the_deploy(
    run: _Run, target: _Target, deploy: DeployRecord, argv: tuple[str, ...]
) -> RollbackRecord | None:
    """After a failed deploy: a record saying there is nothing to roll back when staging
    still serves the release before the deploy (its tracked fields), else ``None``.

    Rolling back then would take staging one release further back than it was found.
    """
    previous = deploy.previous
    if previous is None or not previous.tracked:
        return None  # nothing tells the releases apart: the rollback is rehearsed
    timer = _Timer(run)
    result = run.get(target.path)
    snapshot = run.snapshot(result, target.fields)
    if result.status != target.expect_status or any(
        snapshot.tracked.get(name, _MISSING) != value for name, value in previous.tracked.items()
    ):
        return None
    message = (
        f"the failed deploy left staging on the release before it ({previous.describe()}): "
        "there is nothing to roll back, and a rollback would go one release further back"
    )
    step = timer.record("baseline", True, f"GET {target.path} served {snapshot.describe()}")
    shown = tuple(run.redactor(arg) for arg in argv)
    skipped = RollbackRecord.skipped(message, run.config.rollback, shown)
    return dataclasses.replace(
        skipped,
        phase="baseline",
        baseline=snapshot,
        steps=(step,),
        duration_s=step.duration_s,
        started_at=step.started_at,
    )


def _rollback_steps(
    run: _Run, state: _Rollback, target: _Target, deploy: DeployRecord | None, watch: Watch | None
) -> None:
    """Baseline, preflight, command, verify, restore, restore verify: the happy path reads down."""
    previous = deploy.previous if deploy is not None else None
    if deploy is not None and deploy.outcome == "failed":
        state.notes.append(
            "the deploy failed: as in production, there was no baseline and no restore, and "
            "the rollback had to reach the release before the deploy"
        )
    else:
        step, state.baseline = _baseline_step(run, target)
        if not state.add(step):
            return
    commands: list[tuple[Sequence[str], str]] = [(state.argv, "rollback command")]
    if state.restore:
        commands.append((state.restore, "restore command"))
    state.current = "preflight"
    if not state.add(_preflight_step(run, commands)):
        return

    timeout = run.config.rollback.timeout
    state.current = "command"
    state.command_started = run.clock()
    if watch is not None:
        watch.start()
    step, state.command_result = _command_step(
        run, "command", state.argv, "rollback command", timeout
    )
    if not state.add(step) and state.command_result.interrupted:
        raise KeyboardInterrupt
    if step.outcome == "passed":
        goals = _goals(target, state.baseline, previous)
        _note_what_verify_proves(state, target, previous, goals)
        state.current = "verify"
        step, polled = _verify_step(run, target, state.baseline, goals)
        state.verify_polls = polled.polls
        if state.add(step):
            state.reached = polled.snapshot
            state.to_previous = polled.at - state.command_started
    verified = state.reached is not None

    if not state.restore or (run.config.rollback.restore_after == "verified" and not verified):
        return
    state.current = "restore"
    step, state.restore_result = _command_step(
        run, "restore", state.restore, "restore command", timeout
    )
    if not state.add(step):
        if state.restore_result.interrupted:
            raise KeyboardInterrupt
        return
    if state.baseline is not None:
        state.current = "restore_verify"
        step, polled = _restore_verify_step(run, target, state.baseline)
        if state.add(step):
            state.restored = polled.snapshot
            state.to_restored = polled.at - state.command_started


def _watch(run: _Run, target: _Target) -> Watch:
    """The health watch, bounded by the longest the command, verify and restore may take."""
    rollback = run.config.rollback
    assert rollback.watch is not None
    health = _health_target(run.config, 0.0)
    steps = rollback.timeout + target.within
    limit = steps * (2 if rollback.restore else 1) + _WATCH_MARGIN_S

    def poll() -> bool:
        result = run.get(health.path)
        return result.error is None and judge_answer(
            result.status, result.body, health.expect_status, health.expect_json
        )

    return Watch(poll, interval=rollback.watch.interval, limit=limit)


def _after_interrupt(run: _Run, state: _Rollback) -> None:
    """Ctrl-C: the rollback has failed; restore once if the command started (module docs)."""
    state.interrupted = True
    if not any(step.step == state.current and step.outcome == "failed" for step in state.steps):
        advice = RETRY_SAFE if state.command_started is None else RETRY_UNSAFE
        state.extra_failures.append(
            (state.current, f"interrupted during the {state.current} step ({advice})")
        )
    restore = state.restore
    allowed = run.config.rollback.restore_after == "always" or state.reached is not None
    if state.command_started is None or not restore or state.restore_result is not None:
        return  # nothing was rolled back, there is no restore, or it already ran
    if not allowed:
        return
    try:
        run.say(
            f"rehearsal: interrupted; restoring once (Ctrl-C again stops it): {shlex.join(restore)}"
        )
        step, state.restore_result = _command_step(
            run, "restore", restore, "restore command", run.config.rollback.timeout
        )
    except KeyboardInterrupt:
        return
    state.add(step)
    state.notes.append("interrupted: the restore ran once more and was not verified")


def _note_what_verify_proves(
    state: _Rollback, target: _Target, previous: Snapshot | None, goals: Mapping[str, Any]
) -> None:
    """The caveats of a verify that cannot show the whole of what it should."""
    if not target.track and not target.expect_json:
        state.notes.append(
            "verify has neither track nor expect_json: the rollback was not shown to change "
            "what staging serves (set verify.track, such as [version])"
        )
    elif target.track and state.baseline is None and not goals:
        state.notes.append(
            "neither the release under test nor the one before the deploy is known: verify "
            "could not check verify.track"
        )
    elif previous is not None and state.baseline is not None:
        unchanged = [n for n in target.track if n in previous.tracked and n not in goals]
        if unchanged:
            state.notes.append(
                f"the deploy did not change {', '.join(unchanged)} ({previous.describe()}): "
                "verify checked that the rollback changes it, not that it returns to the "
                "release before the deploy"
            )


def _judge_budgets(run: _Run, state: _Rollback, watch: WatchSummary | None) -> None:
    """``max_recovery`` and ``max_outage``: a rollback that took too long, or hurt too much."""
    rollback = run.config.rollback
    # Every step may have passed: a retry is safe when the restore put staging back.
    advice = RETRY_SAFE_RESTORED if state.restored is not None else RETRY_UNSAFE
    limit = rollback.max_recovery
    if limit is not None and state.to_previous is not None and state.to_previous > limit:
        state.extra_failures.append(
            (
                "done",
                f"the rollback reached the previous release after "
                f"{format_elapsed(state.to_previous)}, over max_recovery "
                f"{format_duration(limit)} ({advice})",
            )
        )
    limit = rollback.max_outage
    if limit is not None and watch is not None and watch.longest_outage_s > limit:
        state.extra_failures.append(
            (
                "done",
                f"staging failed its health check for {format_elapsed(watch.longest_outage_s)} "
                f"in a row during the rollback ({watch.describe()}), over max_outage "
                f"{format_duration(limit)} ({advice})",
            )
        )


def _note_staging_left(state: _Rollback, restore_after: str) -> None:
    """Say loudly when staging may not be where it was found."""
    if state.restored is not None:
        return
    if not state.restore:
        state.notes.append(
            "no rollback.restore is configured: staging was left on the previous release"
        )
    elif state.restore_result is None:
        why = " (restore_after: verified)" if restore_after == "verified" else ""
        state.notes.append(
            f"the restore was not run{why}: staging may be left on the previous release; "
            "check what it serves"
        )
    elif not state.interrupted:  # after an interrupt, its own note says the restore ran
        state.notes.append(
            "the restore did not bring staging back to the release under test: check what it serves"
        )


def _rollback_record(
    run: _Run, state: _Rollback, started: float, wall: float, watch: WatchSummary | None
) -> RollbackRecord:
    rollback = run.config.rollback
    redactor = run.redactor
    failures = state.failures()
    if failures:
        phase, first = failures[0]
        later = [message for _, message in failures[1:]]
        # After a failed step, whether the restore then put staging back matters most.
        passed_after = [
            step.message
            for step in state.steps
            if phase != "done"
            and step.step in ("restore", "restore_verify")
            and step.outcome == "passed"
        ]
        message = "\n".join([first, *later, *passed_after, *state.notes])
        if state.restored is not None:
            # A step said "not safe" when it failed; the verified restore has since put staging
            # back, so the run as a whole is safe to retry (each step's own record keeps
            # what was true when it failed).
            message = message.replace(RETRY_UNSAFE, RETRY_SAFE_RESTORED)
    else:
        phase = "done"
        message = "; ".join(
            step.message for step in state.steps if step.step not in ("baseline", "preflight")
        )
    failed_command = next(
        (
            result
            for result in (state.command_result, state.restore_result)
            if result is not None and not result.ok
        ),
        None,
    )
    tail_from = failed_command or state.command_result
    recovery = None
    if state.command_started is not None:
        recovery = Recovery(state.to_previous, state.to_restored, watch)
    return RollbackRecord(
        outcome="failed" if failures else "passed",
        phase=phase,
        command=tuple(redactor(arg) for arg in state.argv),
        exit_code=state.command_result.exit_code if state.command_result is not None else None,
        duration_s=run.clock() - started,
        message=redactor(message),
        output_tail=tail_from.output_tail() if tail_from is not None else "",
        owner=rollback.owner,
        note=rollback.note,
        expect=redactor(rollback.expect or expected_result(rollback, state.argv)),
        baseline=state.baseline,
        steps=tuple(state.steps),
        recovery=recovery,
        notes=tuple(redactor(note) for note in state.notes),
        interrupted=state.interrupted,
        started_at=wall,
        restore=tuple(redactor(arg) for arg in rollback.restore) if rollback.restore else None,
        reached=state.reached,
        restored=state.restored,
        verify_polls=state.verify_polls,
        command_result=state.command_result,
        restore_result=state.restore_result,
    )
