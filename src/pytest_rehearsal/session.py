"""The engine of an active rehearsal: one plugin object per pytest process.

Registered by :mod:`pytest_rehearsal.plugin` only when a staging URL is given. On every
process it adds the built-in check items, runs them and masks secrets in reports; on the
controller (a plain run, or the xdist process that starts the workers) it also waits for
staging, rehearses the rollback exactly once after every check, and writes the reports.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Generator
from datetime import datetime, timezone
from types import FrameType
from typing import Any
from urllib.parse import urljoin

import pytest

from .answers import judge_answer
from .checks import build_checks
from .checks._base import ActionContext, Check, Probe, Reply, ReplyLog, Request
from .client import (
    Credentials,
    ProbeSender,
    StagingClient,
    make_probe_client,
    make_ssl_context,
    make_staging_client,
)
from .config_loader import production_match
from .executor import CheckOutcome, execute
from .lifecycle import FetchResult, rehearse_rollback
from .plugin import ENGINE_KEY
from .redact import Redactor, install_log_redaction, mask_url
from .release import RollbackRecord as RollbackOutcome
from .report import (
    CheckRecord,
    RehearsalReport,
    RollbackRecord,
    render_markdown,
    report_json_text,
    terminal_rows,
)
from .report_files import write_atomically
from .settings import Settings
from .units import format_duration

__all__ = ["ROLLBACK_NODEID", "RehearsalItem", "RehearsalSession"]

ROLLBACK_NODEID = "rehearsal::rollback"
#: In an xdist worker's ``workerinput``: it receives either all built-in items or none.
CHECKS_TOGETHER_KEY = "rehearsal_checks_together"
PROPERTY_PREFIX = "rehearsal_"
NOTE_PROPERTY = PROPERTY_PREFIX + "note"
# Properties that become fields of a check's record rather than entries of its properties.
_RECORD_FIELDS = frozenset(
    PROPERTY_PREFIX + name for name in ("check", "owner", "expect", "rollback_note", "note")
)
MESSAGE_LIMIT = 4000
# When phases disagree, the worst one names the check's outcome.
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


class RehearsalCollector(pytest.Collector):
    """The ``rehearsal`` node under the session; its children are the built-in checks."""

    def __init__(self, *, checks: list[Check], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checks = checks

    def collect(self) -> list[pytest.Item]:
        return [RehearsalItem.from_parent(self, name=c.id, check=c) for c in self.checks]


class RehearsalItem(pytest.Item):
    """One built-in check as a test item: ``rehearsal::<check id>``."""

    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker("rehearsal")
        self.user_properties.extend(
            _metadata_properties(
                check.name, check.meta.owner, check.expected, check.meta.rollback_note
            )
        )

    def runtest(self) -> None:
        engine: RehearsalSession = self.config.stash[ENGINE_KEY]
        outcome = engine.outcome_for(self)
        if outcome.error is not None:
            raise outcome.error  # a bug in the check itself: shown with its traceback
        verdict = outcome.verdict
        if verdict is None:
            return
        # Report properties (ASVS ids, the header profile) reach JUnit and the JSON report;
        # so does the note of a passing check (a warning, such as a JWT in a response).
        self.user_properties.extend(
            (PROPERTY_PREFIX + key, value) for key, value in verdict.properties.items()
        )
        if verdict.passed and verdict.message:
            self.user_properties.append((NOTE_PROPERTY, engine.redact(verdict.message)))
        if not verdict.passed:
            pytest.fail(engine.redact(verdict.message), pytrace=False)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # Shown like a file name in progress lines: "rehearsal ....".
        return self.session.path / "rehearsal", None, f"rehearsal::{self.name}"


def _metadata_properties(
    name: str, owner: str | None, expect: str | None, note: str | None
) -> list[tuple[str, object]]:
    values = {"check": name, "owner": owner, "expect": expect, "rollback_note": note}
    return [(PROPERTY_PREFIX + key, value) for key, value in values.items() if value is not None]


class RehearsalSession:
    """Per-process rehearsal state and the hook implementations that act on it."""

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        credentials: Credentials,
        redactor: Redactor,
    ) -> None:
        self.config = config
        self.settings = settings
        self.credentials = credentials
        self.redact = redactor  # knows every token of *credentials*, and the checks' secrets
        self.checks = build_checks(settings.config)
        for check in self.checks:
            for secret in check.secrets:
                self.redact.add(secret)
        # Every log record of the process, live logging and --log-file included.
        self.log_redaction = install_log_redaction(self.redact) if self.redact else None
        self.is_controller = not hasattr(config, "workerinput")
        # Whether this process runs every built-in check it runs any of (see xdist_support).
        self.checks_together = self.is_controller or bool(
            config.workerinput.get(CHECKS_TOGETHER_KEY, False)  # type: ignore[attr-defined]
        )
        self.log = ReplyLog()
        self._outcomes: dict[str, CheckOutcome] = {}
        self._sender: ProbeSender | None = None
        self._ssl_context = make_ssl_context(settings.staging_url, settings.ca_bundle)
        self.preflight_problem = self._preflight() if self.is_controller else None
        self.started_at = datetime.now(timezone.utc)
        self._started = time.monotonic()
        self.records: dict[str, CheckRecord] = {}
        self.other_failures: set[str] = set()  # failed tests outside the checklist
        self.rollback_outcome: RollbackOutcome | None = None
        self.interrupted = False
        self.report: RehearsalReport | None = None
        self.write_errors: list[str] = []  # reports that could not be written
        self._previous_sigterm: Any = None
        # httpx logs every request at INFO: noise in captured logs and reports. Restored at stop.
        self._log_levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
        for name in self._log_levels:
            logging.getLogger(name).setLevel(logging.WARNING)

    # -- the staging connection ---------------------------------------------------------

    @property
    def sender(self) -> ProbeSender:
        if self._sender is None:
            client = make_probe_client(
                self.settings.staging_url, self.settings.staging_timeout, self._ssl_context
            )
            self._sender = ProbeSender(
                client,
                self.credentials,
                timeout=self.settings.staging_timeout,
                retries=self.settings.retries,
                log=self.log,
                ssl_context=self._ssl_context,
            )
        return self._sender

    def perform(self, request: Request, not_after: float) -> object:
        """Send a probe, or perform another action of a check, by *not_after*."""
        if isinstance(request, Probe):
            return self.send(request, not_after)
        context = ActionContext(
            self.settings.staging_url,
            self.settings.staging_timeout,
            self._ssl_context,
            self.redact,
            self.settings.config.rollback.cwd,
            self.settings.config.rollback.env,
        )
        return request.perform(context, not_after)

    def send(self, probe: Probe, not_after: float | None = None) -> Reply:
        """Send *probe*; a redirect towards production comes back as a failure naming the hop."""
        reply = self.sender.send(probe, not_after=not_after)
        location = reply.header("location") if reply.status and 300 <= reply.status < 400 else None
        if location:
            target = urljoin(reply.url, location)
            pattern = production_match(target, self.settings.config.production)
            if pattern is not None:
                return dataclasses.replace(
                    reply,
                    status=None,
                    error=f"{reply.status} redirect to {mask_url(target)}, which matches "
                    f"production pattern '{pattern}': not followed",
                )
        return reply

    def staging_client(self) -> StagingClient:
        """A new client for the ``staging`` fixture (the fixture closes it)."""
        return make_staging_client(
            self.settings.staging_url,
            self.credentials,
            timeout=self.settings.staging_timeout,
            retries=self.settings.retries,
            ssl_context=self._ssl_context,
        )

    def close(self) -> None:
        if self._sender is not None:
            self._sender.client.close()
            self._sender = None

    def stop(self) -> None:
        """End of the pytest run: close the connection pool, stop redacting log records."""
        self.close()
        if self.log_redaction is not None:
            self.log_redaction.uninstall()
            self.log_redaction = None
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)

    # -- collection and running -----------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # tryfirst: the built-in items exist before -k / -m deselect anything.
        collector = RehearsalCollector.from_parent(
            session, name="rehearsal", nodeid="rehearsal", checks=self.checks
        )
        builtin = collector.collect()
        items[:0] = builtin
        # Counted like collected tests ("collected N items"), as if found in a file.
        config.hook.pytest_collectreport(
            report=pytest.CollectReport("rehearsal", "passed", None, list(builtin))
        )
        for item in items:
            marker = item.get_closest_marker("rehearsal")
            if marker is None or isinstance(item, RehearsalItem):
                continue
            kwargs = marker.kwargs
            expect = kwargs.get("expect") or _first_doc_line(item) or f"{item.name} passes"
            item.user_properties.extend(
                _metadata_properties(
                    "user", kwargs.get("owner"), expect, kwargs.get("rollback_note")
                )
            )

    def outcome_for(self, item: RehearsalItem) -> CheckOutcome:
        """The outcome of *item*'s check, running it (and its siblings) on first demand."""
        if item.check.id not in self._outcomes:
            if self.checks_together:
                # One concurrent batch for every selected built-in check of this run.
                batch = [
                    i.check
                    for i in item.session.items
                    if isinstance(i, RehearsalItem) and i.check.id not in self._outcomes
                ]
            else:
                # Under --dist worksteal a worker cannot know which items it will get next.
                batch = [item.check]
            timeout = self.settings.staging_timeout
            self._outcomes.update(execute(batch, self.perform, self.log, timeout=timeout))
        return self._outcomes[item.check.id]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        _redact_report(report, self.redact)
        return report

    # -- the controller: wait, rollback, records, reports ---------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.is_controller and _in_main_thread():
            # A cancelled CI job sends SIGTERM: treat it like Ctrl-C so the run ends cleanly.
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if not self.is_controller or session.config.option.collectonly:
            return (yield)
        self._wait_for_staging()
        try:
            result = yield
        except (session.Interrupted, session.Failed):
            # -x / --maxfail stopped the checks early: the rollback is still rehearsed.
            self._rehearse_rollback(session)
            raise
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        self._rehearse_rollback(session)
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_controller:
            return
        props = dict(report.user_properties)
        name = props.get(PROPERTY_PREFIX + "check")
        if report.nodeid == ROLLBACK_NODEID:
            return
        if name is None:
            if report.failed:
                self.other_failures.add(report.nodeid)
            return
        outcome = _phase_outcome(report)
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
            message=_report_message(report, self.redact),
            duration_s=duration,
            properties={
                key.removeprefix(PROPERTY_PREFIX): str(value)
                for key, value in props.items()
                if key.startswith(PROPERTY_PREFIX) and key not in _RECORD_FIELDS
            },
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        self.close()
        if not self.is_controller or session.config.option.collectonly:
            return
        self.report = self._build_report()
        document = self.report.to_json()
        self.config.hook.pytest_rehearsal_report(config=self.config, report=document)
        settings = self.settings
        markdown = self.redact(render_markdown(self.report))
        try:
            if settings.report_path is not None:
                write_atomically(settings.report_path, report_json_text(self.report, self.redact))
            if settings.summary_path is not None:
                write_atomically(settings.summary_path, markdown)
            step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if step_summary:
                with open(step_summary, "a", encoding="utf-8") as handle:
                    handle.write(markdown)
        except OSError as exc:
            # A gate that reads the report must not pass without it: say so and fail the run.
            self.write_errors.append(f"could not write {exc.filename}: {exc.strerror or exc}")
        failed = self.report.verdict == "blocked" or self.write_errors
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report = self.report
        if report is None:
            return
        tr = terminalreporter
        tr.write_sep("=", "staging rehearsal")
        width = None if tr.config.get_verbosity() > 0 else tr._tw.fullwidth
        for line in terminal_rows(report, width):
            tr.write_line(self.redact(line))
        colour = {"ready": "green", "blocked": "red", "incomplete": "yellow"}[report.verdict]
        tr.write_sep("-", self.redact(report.verdict_line()), **{colour: True, "bold": True})
        if self.write_errors:
            for error in self.write_errors:
                tr.write_line(f"rehearsal: ERROR: {error}", red=True, bold=True)
            return
        for path in (self.settings.report_path, self.settings.summary_path):
            if path is not None:
                tr.write_line(f"rehearsal: wrote {path}")

    def header_line(self) -> str:
        """``rehearsal: <url> · config <path> · rollback <command>`` for pytest's header."""
        settings = self.settings
        config_path = settings.config.path or "(none)"
        if settings.no_rollback:
            rollback = "not rehearsed (--no-rollback)"
        elif settings.rollback_command is None:
            rollback = "NONE CONFIGURED (the rehearsal will be blocked)"
        else:
            rollback = " ".join(settings.rollback_command)
            if self.preflight_problem:
                rollback += f" (WILL FAIL: {self.preflight_problem})"
        return self.redact(
            f"rehearsal: {mask_url(settings.staging_url)} · config {config_path} · "
            f"rollback {rollback}"
        )

    # -- internals ---------------------------------------------------------------------

    def _preflight(self) -> str | None:
        """What already stands in the way of the rollback, said in the header at start-up."""
        command = self.settings.rollback_command
        if command is None or self.settings.no_rollback:
            return None
        from .command import preflight  # only a run that will roll back needs the runner

        rollback = self.settings.config.rollback
        problem = preflight(command, rollback.cwd, env=rollback.env)
        if problem is None and rollback.restore:
            problem = preflight(
                rollback.restore, rollback.cwd, env=rollback.env, label="restore command"
            )
        return problem

    def _write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(self.redact(line))

    def _wait_for_staging(self) -> None:
        """``--staging-wait``: poll the health check until it passes or the time is up."""
        wait = self.settings.staging_wait
        health = self.settings.config.checks.health
        if wait <= 0 or health is None:
            return
        deadline = time.monotonic() + wait
        pause = 0.25
        self._write(f"rehearsal: waiting up to {format_duration(wait)} for {health.path}")
        while True:
            reply = self.send(Probe("GET", health.path))
            if judge_answer(reply.status, reply.body, health.expect_status, health.expect_json):
                self._write(f"rehearsal: staging is up ({reply.describe(80)})")
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._write(
                    f"rehearsal: gave up waiting after {format_duration(wait)}; "
                    f"last answer {reply.describe(80)}"
                )
                return
            self._write(
                f"rehearsal: staging not ready ({reply.describe(80)}); "
                f"{format_duration(remaining)} left"
            )
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 2.0)

    def _fetch(self, path: str) -> FetchResult:
        reply = self.send(Probe("GET", path))
        return FetchResult(reply.status, reply.body, reply.error)

    def _rehearse_rollback(self, session: pytest.Session) -> None:
        if self.rollback_outcome is not None:
            return  # exactly once, whichever path got here first
        settings = self.settings
        rollback = settings.config.rollback
        command = settings.rollback_command
        if settings.no_rollback:
            outcome = RollbackOutcome.skipped("--no-rollback was given", rollback)
        elif session.testscollected == 0 and not self.records:
            outcome = RollbackOutcome.skipped("no check was selected", rollback)
        else:
            veto = (
                self.config.hook.pytest_rehearsal_before_rollback(
                    config=self.config, rollback=rollback, command=command
                )
                if command
                else None
            )
            if veto:
                outcome = RollbackOutcome.skipped(f"vetoed by a plugin: {veto}", rollback)
            else:
                outcome = rehearse_rollback(
                    settings.config,
                    command_override=settings.rollback_command,
                    fetch=self._fetch,
                    redactor=self.redact,
                    say=self._write,
                    deploy=None,
                )
        self.rollback_outcome = outcome
        if session.testscollected:
            session.testscollected += 1  # the rollback's test case, so progress ends at 100%
        if outcome.interrupted:
            self.interrupted = True
        self.config.hook.pytest_rehearsal_after_rollback(config=self.config, outcome=outcome)
        _emit_rollback_reports(self.config, outcome, self.redact)
        if outcome.interrupted:
            # The rollback's process group is gone; the run now ends as interrupted (exit 2).
            raise KeyboardInterrupt("interrupted during the rollback")

    def _build_report(self) -> RehearsalReport:
        outcome = self.rollback_outcome
        if outcome is None:
            reason = (
                "the run was interrupted before the rollback"
                if self.interrupted
                else ("the checks did not finish")
            )
            outcome = RollbackOutcome.skipped(reason, self.settings.config.rollback)
        rollback = RollbackRecord(
            outcome=outcome.outcome,
            command=list(outcome.command),
            exit_code=outcome.exit_code,
            duration_s=outcome.duration_s,
            message=self.redact(outcome.message),
            output_tail=self.redact(outcome.output_tail),
            owner=outcome.owner,
            note=outcome.note,
            expect=outcome.expect,
            phase=outcome.phase,
        )
        return RehearsalReport(
            staging_url=mask_url(self.settings.staging_url),
            started_at=self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            duration_s=time.monotonic() - self._started,
            checks=list(self.records.values()),
            rollback=rollback,
            interrupted=self.interrupted,
            config_path=str(self.settings.config.path) if self.settings.config.path else None,
            other_failures=len(self.other_failures),
        )


def _first_doc_line(item: pytest.Item) -> str | None:
    doc = getattr(getattr(item, "obj", None), "__doc__", None)
    if not doc:
        return None
    return str(doc).strip().splitlines()[0]


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _phase_outcome(report: pytest.TestReport) -> str | None:
    """A phase's contribution to the check's outcome (None: nothing new to say)."""
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "skipped"
        return {"passed": "passed", "failed": "failed", "skipped": "skipped"}[report.outcome]
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


def _report_message(report: pytest.TestReport, redact: Redactor) -> str:
    if report.passed:
        return str(dict(report.user_properties).get(NOTE_PROPERTY, ""))
    if report.skipped and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    else:
        text = report.longreprtext
    text = redact(text)
    # The end of a long traceback holds the error itself: keep that part.
    return text if len(text) <= MESSAGE_LIMIT else "…" + text[-(MESSAGE_LIMIT - 1) :]


def _redact_report(report: pytest.TestReport, redact: Redactor) -> None:
    if not redact:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        path, lineno, message = longrepr
        report.longrepr = (path, lineno, redact(message))
    elif longrepr is not None:
        text = str(longrepr)
        masked = redact(text)
        if masked != text:
            report.longrepr = masked
    report.sections = [(key, redact(content)) for key, content in report.sections]


def _emit_rollback_reports(
    config: pytest.Config, outcome: RollbackOutcome, redact: Redactor
) -> None:
    """Report the rollback as the test case ``rehearsal::rollback`` (terminal, JUnit XML)."""
    location = (ROLLBACK_NODEID, None, "rollback")
    properties = [
        *_metadata_properties("rollback", outcome.owner, outcome.expect, outcome.note),
        *outcome.properties().items(),
    ]
    message = redact(outcome.message)
    phases: list[tuple[str, str, Any]]
    if outcome.outcome == "skipped":
        phases = [("setup", "skipped", (ROLLBACK_NODEID, None, f"Skipped: {message}"))]
    elif outcome.outcome == "failed" and outcome.phase == "preflight":
        phases = [("setup", "failed", message)]  # could not be executed at all: a JUnit <error>
    else:
        result = "passed" if outcome.outcome == "passed" else "failed"
        phases = [
            ("setup", "passed", None),
            ("call", result, None if result == "passed" else message),
        ]
    phases.append(("teardown", "passed", None))
    config.hook.pytest_runtest_logstart(nodeid=ROLLBACK_NODEID, location=location)
    for when, result, longrepr in phases:
        report = pytest.TestReport(
            nodeid=ROLLBACK_NODEID,
            location=location,
            keywords={"rehearsal": 1},
            outcome=result,  # type: ignore[arg-type]
            longrepr=longrepr,
            when=when,  # type: ignore[arg-type]
            duration=outcome.duration_s if when == "call" else 0.0,
            user_properties=properties,
        )
        config.hook.pytest_runtest_logreport(report=report)
    config.hook.pytest_runtest_logfinish(nodeid=ROLLBACK_NODEID, location=location)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")
