"""The release lifecycle: deploy the release, then roll it back, verify, restore, verify again.

Pure module, no pytest glue: staging is reached only through a
:data:`~.lifecycle_steps.Fetch` (one GET, bounded by the request timeout, thread-safe) and
commands only through :mod:`.command`. Each step is a small function of
:mod:`.lifecycle_steps` that returns a :class:`~.release.StepRecord`; here the two
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
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .answers import judge_answer
from .lifecycle_steps import (
    MISSING,
    NO_COMMAND_MESSAGE,
    RETRY_SAFE,
    RETRY_SAFE_RESTORED,
    RETRY_UNSAFE,
    Fetch,
    Say,
    StepContext,
    StepTimer,
    Target,
    baseline_step,
    command_step,
    health_step,
    health_target,
    preflight_step,
    previous_step,
    restore_verify_step,
    rollback_goals,
    verify_step,
    verify_target,
)
from .release import (
    DeployRecord,
    Phase,
    Recovery,
    RollbackRecord,
    Snapshot,
    StepRecord,
    WatchSummary,
    deploy_expected,
    expected_result,
)
from .units import format_duration, format_elapsed
from .watch import Watch

if TYPE_CHECKING:
    from .command import CommandResult
    from .config import RehearsalConfig
    from .redact import Redactor

__all__ = ["rehearse_deploy", "rehearse_rollback"]

_WATCH_MARGIN_S = 10.0  # beyond every step's own limit (kill grace, reaping)


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
    run = StepContext(config, fetch, redactor, say, clock, sleep)
    started, wall = clock(), time.time()
    target = verify_target(config)
    health = health_target(config, deploy.within)
    steps: list[StepRecord] = []
    previous = deployed = None
    result: CommandResult | None = None
    interrupted = False
    try:
        steps.append(preflight_step(run, [(deploy.command, "deploy command")]))
        if steps[-1].outcome == "passed":
            step, previous = previous_step(run, target)
            steps.append(step)
            step, result = command_step(
                run, "deploy", deploy.command, "deploy command", deploy.timeout
            )
            steps.append(step)
            if result.interrupted:
                raise KeyboardInterrupt
            if step.outcome == "passed":
                step, polled = health_step(run, health)
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
        command_started=result is not None and result.started,
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
    run = StepContext(config, fetch, redactor, say, clock, sleep)
    rollback = config.rollback
    started, wall = clock(), time.time()
    after_failed_deploy = deploy is not None and deploy.outcome == "failed"
    argv = tuple(command_override or rollback.command or ())
    if after_failed_deploy and deploy is not None:
        untouched = _untouched_by_the_deploy(run, verify_target(config), deploy, argv)
        if untouched is not None:
            run.say(untouched.summary_line())
            return untouched
    state = _Rollback(argv=argv, restore=None if after_failed_deploy else rollback.restore)
    summary: WatchSummary | None = None
    if not state.argv:
        state.extra_failures.append(("preflight", NO_COMMAND_MESSAGE))
    else:
        target = verify_target(config)
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
    run: StepContext, target: Target, deploy: DeployRecord, argv: tuple[str, ...]
) -> RollbackRecord | None:
    """After a failed deploy: a record saying there is nothing to roll back when the deploy
    command never started, or staging still serves the release before the deploy (its
    tracked fields); else ``None``.

    Rolling back then would take staging one release further back than it was found.
    """
    shown = tuple(run.redactor(arg) for arg in argv)
    if not deploy.command_started:
        message = (
            f"the deploy failed at {deploy.failed_step or 'deploy'} before its command ran: "
            "staging was not changed, there is nothing to roll back, and a rollback would go "
            "one release further back"
        )
        return RollbackRecord.skipped(message, run.config.rollback, shown)
    previous = deploy.previous
    if previous is None or not previous.tracked:
        return None  # nothing tells the releases apart: the rollback is rehearsed
    timer = StepTimer(run)
    result = run.get(target.path)
    snapshot = run.snapshot(result, target.fields)
    if result.status != target.expect_status or any(
        snapshot.tracked.get(name, MISSING) != value for name, value in previous.tracked.items()
    ):
        return None
    message = (
        f"the failed deploy left staging on the release before it ({previous.describe()}): "
        "there is nothing to roll back, and a rollback would go one release further back"
    )
    step = timer.record("baseline", True, f"GET {target.path} served {snapshot.describe()}")
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
    run: StepContext,
    state: _Rollback,
    target: Target,
    deploy: DeployRecord | None,
    watch: Watch | None,
) -> None:
    """Baseline, preflight, command, verify, restore, restore verify: the happy path reads down."""
    previous = deploy.previous if deploy is not None else None
    if deploy is not None and deploy.outcome == "failed":
        state.notes.append(
            "the deploy failed: as in production, there was no baseline and no restore, and "
            "the rollback had to reach the release before the deploy"
        )
    else:
        step, state.baseline = baseline_step(run, target)
        if not state.add(step):
            return
    commands: list[tuple[Sequence[str], str]] = [(state.argv, "rollback command")]
    if state.restore:
        commands.append((state.restore, "restore command"))
    state.current = "preflight"
    if not state.add(preflight_step(run, commands)):
        return

    timeout = run.config.rollback.timeout
    state.current = "command"
    state.command_started = run.clock()
    if watch is not None:
        watch.start()
    step, state.command_result = command_step(
        run, "command", state.argv, "rollback command", timeout
    )
    if not state.add(step) and state.command_result.interrupted:
        raise KeyboardInterrupt
    if not state.command_result.started:
        # Nothing was rolled back: no verify, no restore, no recovery to measure.
        state.command_started = None
        if watch is not None:
            watch.stop()
        return
    if step.outcome == "passed":
        goals = rollback_goals(target, state.baseline, previous)
        _note_what_verify_proves(state, target, previous, goals)
        state.current = "verify"
        step, polled = verify_step(run, target, state.baseline, goals)
        state.verify_polls = polled.polls
        if state.add(step):
            state.reached = polled.snapshot
            state.to_previous = polled.at - state.command_started
    verified = state.reached is not None

    if not state.restore or (run.config.rollback.restore_after == "verified" and not verified):
        return
    state.current = "restore"
    step, state.restore_result = command_step(
        run, "restore", state.restore, "restore command", timeout
    )
    if not state.add(step):
        if state.restore_result.interrupted:
            raise KeyboardInterrupt
        return
    if state.baseline is not None:
        state.current = "restore_verify"
        step, polled = restore_verify_step(run, target, state.baseline)
        if state.add(step):
            state.restored = polled.snapshot
            state.to_restored = polled.at - state.command_started


def _watch(run: StepContext, target: Target) -> Watch:
    """The health watch, bounded by the longest the command, verify and restore may take."""
    rollback = run.config.rollback
    assert rollback.watch is not None
    health = health_target(run.config, 0.0)
    steps = rollback.timeout + target.within
    limit = steps * (2 if rollback.restore else 1) + _WATCH_MARGIN_S

    def poll() -> bool:
        result = run.get(health.path)
        return result.error is None and judge_answer(
            result.status, result.body, health.expect_status, health.expect_json
        )

    return Watch(poll, interval=rollback.watch.interval, limit=limit)


def _after_interrupt(run: StepContext, state: _Rollback) -> None:
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
        step, state.restore_result = command_step(
            run, "restore", restore, "restore command", run.config.rollback.timeout
        )
    except KeyboardInterrupt:
        return
    state.add(step)
    state.notes.append("interrupted: the restore ran once more and was not verified")


def _note_what_verify_proves(
    state: _Rollback, target: Target, previous: Snapshot | None, goals: Mapping[str, Any]
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


def _judge_budgets(run: StepContext, state: _Rollback, watch: WatchSummary | None) -> None:
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
    elif not state.restore_result.started:
        state.notes.append(
            "the restore could not be started: staging was left on the previous release; "
            "check what it serves"
        )
    elif not state.interrupted:  # after an interrupt, its own note says the restore ran
        state.notes.append(
            "the restore did not bring staging back to the release under test: check what it serves"
        )


def _rollback_record(
    run: StepContext, state: _Rollback, started: float, wall: float, watch: WatchSummary | None
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
