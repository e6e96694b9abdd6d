"""What every process of an active rehearsal does; all that an xdist worker does.

Registered by :mod:`pytest_rehearsal.plugin` when a staging URL is given: in an xdist
worker as it is, in the controller (a plain run, or the xdist process that starts the
workers) as :class:`~pytest_rehearsal.session.RehearsalSession`, which adds the rehearsal
itself. Every process validates the ``rehearsal`` marker, describes the team's rehearsal
tests (owner, expected result, rollback note), masks secrets in everything pytest reports,
skips rehearsal tests after a failed deploy (through :class:`ReleaseRun`), and serves the
fixtures.

A worker runs only the team's tests, so this module imports neither httpx nor the checks:
the connection to staging is made on first use (the ``staging`` fixture, or the
controller's checks). Nor does a worker read the config file again: the controller hands it
its settings (:data:`WORKER_SETTINGS`), so a worker imports no yaml either, and can never
disagree with the controller about a file edited while the run starts. Each worker starts
about a third faster for it, which matters most under ``-n auto``, where every worker pays
its own start-up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin

import pytest

from ._credentials import Credentials, redactor_for
from .cli import command_line, settings_of
from .errors import ConfigError
from .items import FINDINGS_ATTRIBUTE, RehearsalItem, RollbackItem, metadata_properties
from .live import LiveLines
from .markers import marker_problem
from .masking import mask_items, mask_report, mask_warning
from .redact import (
    LogRedaction,
    Redactor,
    install_log_redaction,
    mask_url,
    secret_in_arguments,
)
from .release_run import ReleaseRun
from .settings import Settings
from .text import excerpt

if TYPE_CHECKING:
    import ssl

    from .checks._base import Probe, Reply, ReplyLog
    from .client import ProbeSender, StagingClient

__all__ = ["WORKER_SETTINGS", "ProcessEngine", "settings_for_worker"]

#: The key of xdist's ``workerinput`` under which the controller hands a worker its settings.
WORKER_SETTINGS = "rehearsal_settings"

_RELEASE_PLUGIN = "rehearsal-release"
_EXPECTATIONS_MODULE = f"{__package__}.expectations"
_Engine = TypeVar("_Engine", bound="ProcessEngine")


class ProcessEngine:
    """The rehearsal's state in one pytest process, and the hooks every process needs."""

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
        self.redact = redactor  # knows every token of *credentials*
        self.log_redaction: LogRedaction | None = None
        self._sender: ProbeSender | None = None
        self._ssl: ssl.SSLContext | None = None
        self._reply_log: ReplyLog | None = None
        # The first requests of the checks come from many threads at once: one builds the
        # connection, the others wait for it (two builds would leave a pool never closed).
        self._connecting = threading.RLock()
        self.live = LiveLines(config, self.redact)
        self.release = ReleaseRun(config, settings, self.redact, self.send, self.live)
        config.pluginmanager.register(self.release, _RELEASE_PLUGIN)
        self.usage_error: str | None = None
        # httpx logs every request at INFO: noise in captured logs and reports. Restored at stop.
        self._log_levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
        for name in self._log_levels:
            logging.getLogger(name).setLevel(logging.WARNING)

    def redact_logs(self) -> None:
        """Mask secrets in every log record of the process, live logging and --log-file too.

        Called once the redactor knows every secret of the run (the controller adds its
        checks' own).
        """
        if self.redact:
            self.log_redaction = install_log_redaction(self.redact)

    @classmethod
    def start(
        cls: type[_Engine], config: pytest.Config, config_file: Path | None
    ) -> _Engine | None:
        """The engine of *config*'s run, or ``None`` when no staging URL is given anywhere.

        A usage error (bad URL, bad config, a secret on the command line, a missing token)
        writes the error reports the run names and raises :class:`pytest.UsageError`.
        """
        try:
            settings = _handed_settings(config) or settings_of(config, config_file)
            if settings is None:
                return None
            credentials = Credentials.from_config(settings.config, os.environ)
            redactor = redactor_for(credentials)
            problem = secret_in_arguments(command_line(config), redactor)
            if problem is not None:
                raise ConfigError(problem)
        except ConfigError as exc:
            raise _usage_error(config, str(exc)) from None
        except LookupError as exc:  # str() of a KeyError-like error adds quotes
            raise _usage_error(config, str(exc.args[0])) from None
        engine = cls(config, settings, credentials, redactor)
        engine.redact_logs()
        return engine

    # -- the staging connection, made on first use ------------------------------------------

    @property
    def ssl_context(self) -> ssl.SSLContext:
        with self._connecting:
            if self._ssl is None:
                from .client import make_ssl_context

                self._ssl = make_ssl_context(self.settings.staging_url, self.settings.ca_bundle)
            return self._ssl

    @property
    def sender(self) -> ProbeSender:
        with self._connecting:
            if self._sender is None:
                from .client import ProbeSender, make_probe_client

                settings = self.settings
                client = make_probe_client(
                    settings.staging_url, settings.staging_timeout, self.ssl_context
                )
                self._sender = ProbeSender(
                    client,
                    self.credentials,
                    timeout=settings.staging_timeout,
                    retries=settings.retries,
                    log=self.reply_log,
                    ssl_context=self.ssl_context,
                )
            return self._sender

    @property
    def reply_log(self) -> ReplyLog:
        """Every reply from staging this process received (the response scan reads it)."""
        with self._connecting:
            if self._reply_log is None:
                from .checks._base import ReplyLog

                self._reply_log = ReplyLog()
            return self._reply_log

    def send(self, probe: Probe, not_after: float | None = None) -> Reply:
        """Send *probe*; a redirect towards production comes back as a failure naming the hop."""
        reply = self.sender.send(probe, not_after=not_after)
        location = reply.header("location") if reply.status and 300 <= reply.status < 400 else None
        if location:
            from .config_urls import production_match  # only redirects need it

            target = urljoin(reply.url, location)
            pattern = production_match(target, self.settings.config.production)
            if pattern is not None:
                return dataclasses.replace(
                    reply,
                    status=None,
                    error=f"{reply.status} redirect to {excerpt(mask_url(target), 200)}, "
                    f"which matches production pattern '{pattern}': not followed",
                )
        return reply

    def staging_client(self) -> StagingClient:
        """A new client for the ``staging`` fixture (the fixture closes it)."""
        from .client import make_staging_client

        return make_staging_client(
            self.settings.staging_url,
            self.credentials,
            timeout=self.settings.staging_timeout,
            retries=self.settings.retries,
            ssl_context=self.ssl_context,
        )

    def close(self) -> None:
        if self._sender is not None:
            self._sender.client.close()
            self._sender = None

    def stop(self) -> None:
        """End of the pytest run: close the connection pool, stop redacting log records."""
        self.close()
        self.release.stop()
        self.config.pluginmanager.unregister(self.release)
        if self.log_redaction is not None:
            self.log_redaction.uninstall()
            self.log_redaction = None
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)

    def header_line(self) -> str:
        """``rehearsal: <url> · config <path> · [deploy ...] · rollback ...`` for the header."""
        settings = self.settings
        config_path = settings.config.path or "(none)"
        return self.redact(
            f"rehearsal: {mask_url(settings.staging_url)} · config {config_path} · "
            f"{self.release.header()}"
        )

    # -- collection ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # tryfirst: the built-in items exist, and secrets are out of every id, before
        # -k / -m / --deselect look at them.
        for item in items:
            problem = marker_problem(item)
            if problem is not None:
                self.usage_error = problem
                raise pytest.UsageError(problem)
        items[:0] = self.own_items(session)
        mask_items(items, self.redact)
        for item in items:
            marker = item.get_closest_marker("rehearsal")
            if marker is None or isinstance(item, (RehearsalItem, RollbackItem)):
                continue
            kwargs = marker.kwargs
            expect = kwargs.get("expect") or _first_doc_line(item) or f"{item.name} passes"
            item.user_properties.extend(
                metadata_properties(
                    "user", kwargs.get("owner"), expect, kwargs.get("rollback_note")
                )
            )

    def own_items(self, session: pytest.Session) -> list[pytest.Item]:
        """The rehearsal's own items this process collects beside the team's: none here."""
        return []

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        mask_report(report, self.redact)
        return report

    # -- reports ------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, RehearsalItem) and report.when == "call":
            setattr(report, FINDINGS_ATTRIBUTE, [found.to_json() for found in item.findings])
        elif call.excinfo is not None:
            findings = _expectation_findings(call.excinfo.value)
            if findings is not None:
                setattr(report, FINDINGS_ATTRIBUTE, findings)
        if isinstance(report.longrepr, tuple):
            reason = report.longrepr[2]
            if isinstance(item, (RehearsalItem, RollbackItem)):
                # A skip of the rehearsal's own items is located at the item, not in this
                # code. No line number: pytest then shows "rehearsal::rollback: <reason>".
                report.longrepr = (item.nodeid, None, reason)  # type: ignore[assignment]
            elif item.nodeid in self.release.skipped_after_deploy:
                # A team's test skipped after a failed deploy: located at the test, as a
                # skip mark is.
                path, line, _ = item.reportinfo()
                report.longrepr = (str(path), (line or 0) + 1, reason)
        mask_report(report, self.redact)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        mask_warning(warning_message, self.redact)


def settings_for_worker(settings: Settings) -> bytes:
    """*settings* as the controller hands them to an xdist worker (see :data:`WORKER_SETTINGS`).

    Pickled: the channel is the controller's own, which already runs code in the worker.
    """
    import pickle  # only under xdist: a plain run need not import it

    return pickle.dumps(settings)


def _handed_settings(config: pytest.Config) -> Settings | None:
    """The settings the xdist controller handed this worker, if it is one."""
    handed = getattr(config, "workerinput", {}).get(WORKER_SETTINGS)
    if handed is None:
        return None
    import pickle

    settings: Settings = pickle.loads(handed)
    return settings


def _expectation_findings(error: BaseException) -> list[dict[str, Any]] | None:
    """The findings of a failed :func:`pytest_rehearsal.expect`, as JSON, or ``None``."""
    # Only a test that called expect() can raise its failure, and that test imported the
    # module: a process whose tests never did need not import it to know.
    expectations = sys.modules.get(_EXPECTATIONS_MODULE)
    if expectations is None or not isinstance(error, expectations.ExpectationFailed):
        return None
    return [found.to_json() for found in error.findings]


def _first_doc_line(item: pytest.Item) -> str | None:
    doc = getattr(getattr(item, "obj", None), "__doc__", None)
    if not doc:
        return None
    return str(doc).strip().splitlines()[0]


def _usage_error(config: pytest.Config, message: str) -> pytest.UsageError:
    from .outputs import usage_error  # writes the error reports: the report modules

    return usage_error(config, message)
