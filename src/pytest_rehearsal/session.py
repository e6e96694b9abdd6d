"""The controller's engine: the rehearsal itself.

Registered by :mod:`pytest_rehearsal.plugin` when a staging URL is given, in the
*controller* (a plain run, or the xdist process that starts the workers); the workers get
the :class:`~pytest_rehearsal.engine.ProcessEngine` it extends, which does what every
process does (the marker, masking, the fixtures). The rehearsal is one sequence:

1. the built-in items (every configured check, then ``rehearsal::rollback``) are collected
   and selected like tests (under xdist the controller selects them itself: the workers
   never see them);
2. ``--staging-wait``, the deploy, then the checks start as one concurrent batch in the
   background, once every test is collected (under xdist without a deploy, at the very start
   of the session, while the workers boot; with one, once the last worker has collected and
   before any worker gets a test);
3. the team's tests run (under xdist, on the workers); each check item waits for its outcome;
4. after every test: the rollback, exactly once, unless it was deselected, vetoed, or a
   collection error or an interrupt stopped the run;
5. the verdict and the reports (JSON, Markdown, ``$GITHUB_STEP_SUMMARY``), masked.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Generator, Sequence
from datetime import date, datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from ._credentials import Credentials
from .accept import judge, unused
from .answers import judge_answer
from .checklist import ChecklistRun
from .checks import build_checks
from .checks._base import ActionContext, Check, Probe, Request, Verdict
from .engine import WORKER_SETTINGS, ProcessEngine, settings_for_worker
from .items import (
    FINDINGS_ATTRIBUTE,
    ROLLBACK_NODEID,
    RehearsalCollector,
    RehearsalItem,
    RollbackItem,
)
from .masking import mask_items
from .outputs import STARTED_AT_FORMAT, write_reports
from .records import RecordBook
from .redact import Redactor, mask_url
from .release_run import describe_collection_errors
from .report import RehearsalReport
from .settings import Settings
from .terminal import summary_lines, verdict_fits
from .text import plural
from .units import format_duration, format_elapsed

if TYPE_CHECKING:
    from .markdown import Phase

__all__ = ["RehearsalSession"]

_HTML_PLUGIN = "rehearsal-html"


class RehearsalSession(ProcessEngine):
    """The controller's engine: the rehearsal itself, over what every process does."""

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        credentials: Credentials,
        redactor: Redactor,
    ) -> None:
        super().__init__(config, settings, credentials, redactor)
        self.checks: list[Check] = build_checks(settings.config, settings.staging_url)
        for check in self.checks:
            for secret in check.secrets:  # the logging check's canaries, for one
                self.redact.add(secret)
        self.started_at = datetime.now(timezone.utc)
        self._started = time.monotonic()
        self.book = RecordBook(self.redact)
        self.collection_errors: list[str] = []
        self.interrupted = False
        self.report: RehearsalReport | None = None
        self.write_errors: list[str] = []  # reports that could not be written
        # The rehearsal's own items of this run, once collected, and those selected.
        self._builtin: list[pytest.Item] = []
        self._selected: list[pytest.Item] = []
        self._checklist: ChecklistRun | None = None
        self._checks_started = False
        self._distributing = False  # under xdist, as its controller
        self._session: pytest.Session | None = None
        self._worker_items: int | None = None  # xdist: the items the workers collected
        self._workers = 0  # xdist: how many workers collect before the tests are scheduled
        self._collections: dict[object, tuple[str, ...]] = {}  # xdist: each worker's ids
        self._waited = False  # --staging-wait is done (it is done once)
        self._workers_exiting: threading.Thread | None = None
        self._accept_used: set[int] = set()  # the accept entries that matched a finding
        self._previous_sigterm: Any = None
        if config.pluginmanager.has_plugin("html"):
            from .html_report import HtmlColumns  # pytest-html's own hooks, if it is active

            config.pluginmanager.register(HtmlColumns(lambda: self.report), _HTML_PLUGIN)

    def perform(self, request: Request, not_after: float) -> object:
        """Send a probe, or perform another action of a check, by *not_after*."""
        if isinstance(request, Probe):
            return self.send(request, not_after)
        rollback = self.settings.config.rollback
        context = ActionContext(
            self.settings.staging_url,
            self.settings.staging_timeout,
            self.ssl_context,
            self.redact,
            rollback.cwd,
            rollback.env,
        )
        return request.perform(context, not_after)

    def stop(self) -> None:
        super().stop()
        html_columns = self.config.pluginmanager.get_plugin(_HTML_PLUGIN)
        if html_columns is not None:
            self.config.pluginmanager.unregister(html_columns)

    # -- collection -------------------------------------------------------------------------

    def own_items(self, session: pytest.Session) -> list[pytest.Item]:
        """A plain run's built-in items (the xdist controller collects none: see below)."""
        builtin = self._collect_builtin(session)
        # Counted like collected tests ("collected N items"), as if found in a file.
        self.config.hook.pytest_collectreport(
            report=pytest.CollectReport("rehearsal", "passed", None, list(builtin))
        )
        return builtin

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self._distributing:
            self._selected = [item for item in session.items if item in self._builtin]

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(report.nodeid or "(the session)")

    def _collect_builtin(self, session: pytest.Session) -> list[pytest.Item]:
        collector = RehearsalCollector.from_parent(
            session,
            name="rehearsal",
            nodeid="rehearsal",
            engine=self,
            release=self.release,
            checks=self.checks,
            rollback=self.release.item_metadata(),
        )
        self._builtin = collector.collect()
        return self._builtin

    # -- the run ----------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Generator[None, None, None]:
        self._session = session  # for pytest_xdist_setupnodes, which xdist calls in there
        yield
        if _in_main_thread():
            # A cancelled CI job sends SIGTERM: treat it like Ctrl-C so the run ends cleanly.
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        if self._distributing and not self._checks_started:
            if not self._deploy_waits_for_collection():
                # --staging-wait comes now, while the workers boot; they get no test
                # before this hook returns.
                self._start_checks()
            else:
                # The deploy waits for the workers' collection (a collection error holds
                # it back); waiting for staging meanwhile costs nothing.
                self._wait_for_staging()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Sequence[Any]) -> None:
        """xdist, about to start its workers.

        The workers collect the team's tests; the rehearsal's own items are the controller's,
        selected here. Unless a deploy that will run or ``--staging-wait`` must come first,
        the checks start now rather than after xdist has started every worker (a quarter of a second
        on 2 cores), so a rehearsal under ``-n`` is not slower than without.
        """
        self._distributing = True
        self._worker_items = 0  # until a worker has collected
        self._workers = len(specs)  # as many as xdist's scheduler waits for
        assert self._session is not None  # set by pytest_sessionstart, around this hook
        builtin = self._collect_builtin(self._session)
        mask_items(builtin, self.redact)
        from .selection import select

        self._selected = select(builtin, config)
        if not self._deploy_waits_for_collection() and self.settings.staging_wait <= 0:
            self._start_checks()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist, about to start a worker: hand it the settings rather than the config file."""
        node.workerinput[WORKER_SETTINGS] = settings_for_worker(self.settings)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if session.config.option.collectonly:
            return (yield)
        rollback = next((i for i in self._selected if isinstance(i, RollbackItem)), None)
        if rollback is not None and rollback in session.items:
            session.items.remove(rollback)  # run once, after everything else
        if not self._distributing:
            self._start_checks()
        try:
            result = yield
        except (session.Interrupted, session.Failed):
            # -x / --maxfail, or collection errors, stopped the tests early.
            self._finish(session, rollback)
            raise
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        self._finish(session, rollback)
        return result

    def _deploy_waits_for_collection(self) -> bool:
        """A deploy is to run: under xdist it comes once the workers have collected, and
        the checks after it."""
        return (
            self.settings.config.deploy is not None
            and self.release.deploy_held_back(self._rollback_selected()) is None
        )

    def _rollback_selected(self) -> bool:
        return any(isinstance(item, RollbackItem) for item in self._selected)

    def _start_checks(self) -> None:
        """``--staging-wait``, the deploy, then every selected check as one concurrent batch.

        After a failed deploy the checks are not started: their items are skipped. After a
        collection error neither is the deploy (no rollback will follow it), nor the checks
        unless ``--continue-on-collection-errors`` runs the tests anyway.
        """
        self._checks_started = True
        halted = (
            bool(self.collection_errors) and not self.config.option.continue_on_collection_errors
        )
        if not halted:
            self._wait_for_staging()
        try:
            if not self.release.deploy(self._rollback_selected(), self.collection_errors) or halted:
                return  # the deploy failed (the check items are skipped), or the run stops
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        checks = [item.check for item in self._selected if isinstance(item, RehearsalItem)]
        self._checklist = ChecklistRun(
            checks, self.perform, self.reply_log, self.settings.staging_timeout
        )
        self._checklist.start()

    def _finish(self, session: pytest.Session, rollback: RollbackItem | None) -> None:
        """After the team's tests: the check items not run in this process, then the rollback."""
        if self._distributing:
            self._release_workers(session)
            never_collected = self._workers - len(self._collections)
            if never_collected > 0:
                # Workers that crashed before collecting (and were not replaced): the team's
                # tests never ran, which is no more a rehearsal than a collection error is.
                self.collection_errors.append(
                    f"{never_collected} of {plural(self._workers, 'xdist worker')} "
                    "never finished collecting"
                )
            # Under xdist the workers ran only the team's tests: report the checks here.
            checks = [item for item in self._selected if isinstance(item, RehearsalItem)]
            self._count_own_items()
            for item in checks:
                self.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
        if rollback is None:
            return
        self.release.decide(self.collection_errors)
        self.config.hook.pytest_runtest_protocol(item=rollback, nextitem=None)
        if self.release.interrupted:
            self.interrupted = True
            # The rollback's process group is gone; the run now ends as interrupted (exit 2).
            raise KeyboardInterrupt("interrupted during the rollback")

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: Sequence[str]) -> None:
        """xdist: a worker has collected; after the last one, the deploy and the checks.

        Called before xdist hands out any test: once as many workers as it waits for have
        collected (a worker that crashed before collecting is replaced and counted once its
        replacement has), their collection errors are all in. Workers that collected
        different tests (outside ``--dist each``) are a collection error xdist reports right
        after this hook, and it then runs no test: nothing starts.
        """
        # Right after this hook xdist sets session.testscollected to the workers' items alone.
        self._worker_items = len(ids)
        self._collections[node] = tuple(ids)
        if self._checks_started or len(self._collections) < self._workers:
            return
        collections = set(self._collections.values())
        if len(collections) > 1 and self.config.getoption("dist") != "each":
            return
        self._start_checks()

    def pytest_runtest_logstart(self) -> None:
        if self._distributing:
            self._count_own_items()

    def _count_own_items(self) -> None:
        """xdist counts only the workers' items: the controller's own are added to the total,
        so the progress percentage runs to 100 % once, at the end."""
        if self._worker_items is not None and self._session is not None:
            self._session.testscollected = self._worker_items + len(self._selected)
            self._worker_items = None

    def _release_workers(self, session: pytest.Session) -> None:
        """xdist: every worker has finished; let them exit while the controller goes on.

        xdist stops its workers at the end of the session and waits for them (half a second
        on a busy 2-core machine); done now, on a thread, that overlaps the reporting of the
        checks and the rollback. Joined in :meth:`pytest_sessionfinish`, before xdist's own
        teardown, which then finds nothing left to stop.
        """
        dsession = session.config.pluginmanager.get_plugin("dsession")
        nodemanager = getattr(dsession, "nodemanager", None)
        if nodemanager is None:
            return
        self._workers_exiting = threading.Thread(
            target=nodemanager.teardown_nodes, name="rehearsal-xdist-teardown", daemon=True
        )
        self._workers_exiting.start()

    def verdict_for(self, check: Check) -> Verdict | None:
        """The verdict of *check* (its item waits for it); a bug in the check is raised."""
        if self.release.deploy_failure is not None:
            pytest.skip(self.release.deploy_failure)
        if self._checklist is None:
            if self.collection_errors:
                errors = describe_collection_errors(self.collection_errors)
                pytest.skip(f"the checks were not started: {errors}")
            pytest.skip("the checks were not started (the run stopped before them)")
        outcome = self._checklist.outcome(check.id)
        if outcome.error is not None:
            raise outcome.error  # a bug in the check itself: shown with its traceback
        verdict = outcome.verdict
        entries = self.settings.config.accept
        if verdict is None or not entries:
            return verdict
        judgement = judge(check.id, verdict.findings, entries, _today())
        self._accept_used |= judgement.used
        return dataclasses.replace(
            verdict, findings=judgement.findings, notes=(*verdict.notes, *judgement.notes)
        )

    # -- reports ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # tryfirst: the terminal and JUnit then show the failure's first finding as its reason.
        findings = getattr(report, FINDINGS_ATTRIBUTE, None) or ()
        crash = str(getattr(getattr(report.longrepr, "reprcrash", None), "message", ""))
        ours = report.nodeid.startswith("rehearsal::") and crash.startswith("Failed: ")
        if report.failed and (findings or ours):
            from .headlines import HeadlinedFailure, headline_of  # for failures only

            text = report.longreprtext
            # The findings travel beside the report, unmasked: mask the reason drawn from them.
            headline = self.redact(headline_of(text, findings))
            report.longrepr = HeadlinedFailure(text, headline)  # type: ignore[assignment]
        self.book.add(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if self._checklist is not None and not self.interrupted:
            self._checklist.join()
        if self._workers_exiting is not None:
            self._workers_exiting.join()
        self.close()
        if session.config.option.collectonly:
            return
        report = self._build_report().masked(self.redact)
        self.report = report
        self.config.hook.pytest_rehearsal_report(config=self.config, report=report.to_json())
        settings = self.settings
        self.write_errors = write_reports(
            report, settings.report_path, settings.summary_path, self._phases
        )
        failed = report.verdict == "blocked" or self.write_errors
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report = self.report
        if report is None:
            return
        tr = terminalreporter
        tr.write_sep("=", "staging rehearsal")
        width = tr._tw.fullwidth
        for line in summary_lines(report, width, verbose=tr.config.get_verbosity() > 0):
            tr.write_line(line)
        colour = {"ready": "green", "blocked": "red", "incomplete": "yellow"}[report.verdict]
        markup = {colour: True, "bold": True}
        verdict = report.verdict_line()
        if verdict_fits(verdict, width):
            tr.write_sep("-", verdict, **markup)
        else:  # a ruler around a line longer than the terminal collapses to "- verdict -"
            tr.write_line(verdict, **markup)
        if report.not_rehearsed:
            tr.write_line(f"not rehearsed: {', '.join(report.not_rehearsed)}", yellow=True)
        if self.write_errors:
            for error in self.write_errors:
                tr.write_line(f"rehearsal: ERROR: {error}", red=True, bold=True)
            return
        for path in (self.settings.report_path, self.settings.summary_path):
            if path is not None:
                tr.write_line(f"rehearsal: wrote {path}")

    def _build_report(self) -> RehearsalReport:
        started_at = self.started_at.strftime(STARTED_AT_FORMAT)
        staging_url = mask_url(self.settings.staging_url)
        if self.usage_error is not None:
            return RehearsalReport.for_usage_error(self.usage_error, staging_url, started_at)
        if self.interrupted:
            reason = "the run was interrupted before the rollback"
        elif not any(isinstance(item, RollbackItem) for item in self._selected):
            reason = "deselected"
        else:
            reason = "the checks did not finish"
        rollback = self.release.final_rollback(reason)
        records = self.book.records
        configured = [f"rehearsal::{check.id}" for check in self.checks]
        not_rehearsed = [
            node_id
            for node_id in configured
            if node_id not in records or records[node_id].outcome == "skipped"
        ]
        not_rehearsed += [
            record.id
            for record in records.values()
            if not record.builtin and record.outcome == "skipped"
        ]
        if self.release.deploy_not_rehearsed:
            not_rehearsed.insert(0, "deploy")
        if rollback.outcome == "skipped":
            not_rehearsed.append(ROLLBACK_NODEID)
        return RehearsalReport(
            staging_url=staging_url,
            started_at=started_at,
            duration_s=time.monotonic() - self._started,
            checks=list(records.values()),
            rollback=rollback,
            deploy=self.release.deploy_record,
            interrupted=self.interrupted,
            config_path=str(self.settings.config.path) if self.settings.config.path else None,
            other_failures=len(self.book.other_failures),
            collection_errors=tuple(self.collection_errors),
            not_rehearsed=tuple(not_rehearsed),
            builtin_configured=len(configured),
            builtin_selected=sum(isinstance(item, RehearsalItem) for item in self._selected),
            notes=unused(
                self.settings.config.accept,
                self._accept_used,
                ran=[record.id.removeprefix("rehearsal::") for record in records.values()],
            ),
        )

    def _phases(self) -> list[Phase]:
        """The timeline of the run: the deploy's steps, the checks, the rollback's steps."""
        from .markdown import Phase

        deploy, rollback = self.release.phases()
        phases = list(deploy)
        checklist = self._checklist
        if checklist is not None and checklist.finished_at:
            duration = checklist.finished_at - checklist.started_at
            name = plural(len(checklist.check_ids), "check")
            phases.append(Phase("Checks", name, checklist.started_at, duration, "passed"))
        return phases + rollback

    # -- internals ---------------------------------------------------------------------

    def _wait_for_staging(self) -> None:
        """``--staging-wait``: poll the health check until it passes or the time is up (once)."""
        wait = self.settings.staging_wait
        health = self.settings.config.checks.health
        if wait <= 0 or health is None or self._waited:
            return
        self._waited = True
        deadline = time.monotonic() + wait
        pause = 0.25
        self.live(f"rehearsal: waiting up to {format_duration(wait)} for {health.path}")
        while True:
            reply = self.send(Probe("GET", health.path))
            if judge_answer(reply.status, reply.body, health.expect_status, health.expect_json):
                self.live(f"rehearsal: staging is up ({reply.describe(80)})")
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.live(
                    f"rehearsal: gave up waiting after {format_duration(wait)}; "
                    f"last answer {reply.describe(80)}"
                )
                return
            self.live(
                f"rehearsal: staging not ready ({reply.describe(80)}); "
                f"{format_elapsed(remaining)} left"
            )
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 2.0)


def _today() -> date:
    """The day accept entries are judged against: today in UTC, as ``until`` dates are read."""
    return datetime.now(timezone.utc).date()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")
