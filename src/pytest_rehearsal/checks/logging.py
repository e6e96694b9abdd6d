"""``rehearsal::logging``: staging logs its requests, and never the credentials they carry.

The check sends ``GET`` to each of ``checks.logging.paths`` with a unique marker in
``X-Request-ID`` and two canary credentials made up for this run: a bearer token in
``Authorization`` (the probe's own header: the configured ``auth`` is not sent) and an
``access_token`` query parameter. Then the team's log command runs (see
:mod:`pytest_rehearsal.log_reader`), again and again, until the marker shows up in what it
prints or ``within`` runs out. It fails when a canary appears in the output (credentials are
logged: OWASP ASVS 4.0.3 V7.1.1, CWE-532), when the marker never appears (the requests are
not logged, or the command reads the wrong logs), and when the command fails: a log that
cannot be read proves nothing, so the check fails closed.

The canaries are :attr:`~._base.Check.secrets`: every output of the rehearsal masks them
like a token, the log lines this check shows included.
"""

from __future__ import annotations

import secrets as random_tokens
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..config import LoggingCheckConfig, Meta
from ..findings import Exchange, Finding
from ..log_reader import LogLine, LogReading, read_logs
from ..text import plural
from ..units import format_duration, format_elapsed
from ._base import Action, ActionContext, Check, CheckRun, Probe, Reply, ReplyLog, Verdict
from ._support import meta_for, tag

if TYPE_CHECKING:
    from ..config import RehearsalConfig

__all__ = [
    "MARKER_HEADER",
    "LoggingCheck",
    "ReadLogs",
    "build",
]

MARKER_HEADER = "X-Request-ID"
#: REHEARSAL_SINCE lies this far before the requests: log hosts' clocks differ a little.
SINCE_MARGIN_S = 5.0
_ASVS = "5.0.0: 16.2.5; 4.0.3: 7.1.1"
_CWE = "532"
_CANARY_PREFIX = "rehearsal-canary-"
_RETRY = "safe: the requests were GETs, and reading the logs changes nothing"
_WHY = "credentials are logged (OWASP ASVS 4.0.3 V7.1.1, CWE-532)"
# Pauses between runs of the command: a twentieth of `within`, from 250 ms up to 2 s.
_PAUSE_SHARE, _MIN_PAUSE_S, _MAX_PAUSE_S = 20, 0.25, 2.0


@dataclass(frozen=True)
class ReadLogs(Action):
    """Run the log command once (after *pause* seconds) and scan its output.

    ``canaries`` are ``(name, value)`` pairs; ``began`` is None for the first run.
    """

    command: tuple[str, ...]
    marker: str
    since: str
    canaries: tuple[tuple[str, str], ...] = field(repr=False)
    began: float | None = None
    pause: float = 0.0

    def perform(self, context: ActionContext, not_after: float) -> LogReading:
        return read_logs(
            self.command,
            marker=self.marker,
            since=self.since,
            canaries=self.canaries,
            began=self.began,
            pause=self.pause,
            context=context,
            not_after=not_after,
        )

    def describe(self) -> str:
        when = f"after {format_duration(self.pause)}, " if self.pause else ""
        return (
            f"{when}run {shlex.join(self.command)} (REHEARSAL_SINCE={self.since}) and look "
            f"for the marker {self.marker} and the canary credentials"
        )


#: What each canary reveals when it shows up in the logs.
_DIAGNOSIS = {
    "Authorization": "the Authorization header is logged: the canary bearer token appears",
    "access_token": "the full URL is logged with its query: the canary access_token appears",
}
_RULES = {"Authorization": "logged-authorization", "access_token": "logged-query-credential"}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _canary() -> str:
    # Hex only: no logger escapes it, so it shows up verbatim wherever it is logged.
    return _CANARY_PREFIX + random_tokens.token_hex(16)


class LoggingCheck(Check):
    """Marked requests with canary credentials, then the log command, judged (pure)."""

    def __init__(
        self,
        spec: LoggingCheckConfig,
        meta: Meta,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__("logging", None, meta)
        self.spec = spec
        self.marker = str(uuid.uuid4())  # a UUID: services that validate request ids keep it
        self.bearer = _canary()
        self.query_token = _canary()
        self.secrets = (self.bearer, self.query_token)
        self._clock = clock
        share = spec.within / _PAUSE_SHARE
        self.pause = min(max(share, _MIN_PAUSE_S), _MAX_PAUSE_S)

    @property
    def command(self) -> str:
        return " ".join(self.spec.command)

    def describe_expectation(self) -> str:
        paths = ", ".join(self.spec.paths)
        return (
            f"the marked GET {paths} shows up in the output of {self.command} within "
            f"{format_duration(self.spec.within)}, and no credential it carried does"
        )

    def probe(self, path: str) -> Probe:
        """A marked GET of *path* carrying both canaries (and not the configured credentials)."""
        separator = "&" if "?" in path else "?"
        headers = ((MARKER_HEADER, self.marker), ("Authorization", f"Bearer {self.bearer}"))
        target = f"{path}{separator}access_token={self.query_token}"
        return Probe("GET", target, headers=headers, credentials=None)

    def since(self) -> str:
        """``REHEARSAL_SINCE``: a little before now, UTC, to the second (RFC 3339)."""
        moment = self._clock() - timedelta(seconds=SINCE_MARGIN_S)
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def reader(self, since: str, previous: LogReading | None) -> ReadLogs:
        """The next run of the log command: at once the first time, then after a pause."""
        canaries = (("Authorization", self.bearer), ("access_token", self.query_token))
        if previous is None:
            return ReadLogs(self.spec.command, self.marker, since, canaries)
        return ReadLogs(self.spec.command, self.marker, since, canaries, previous.began, self.pause)

    def run(self, seen: ReplyLog) -> CheckRun:
        since = self.since()  # before the requests go out: their lines are all later
        replies: Sequence[Reply] = yield [self.probe(path) for path in self.spec.paths]
        if all(reply.status is None for reply in replies):
            return tag(Verdict(tuple(self._unanswered(r) for r in replies)), asvs=_ASVS, cwe=_CWE)
        previous: LogReading | None = None
        runs = 0
        while True:
            (reading,) = yield [self.reader(since, previous)]
            runs += 1
            verdict = self.judge(replies, reading, runs)
            if verdict is not None:
                return tag(verdict, asvs=_ASVS, cwe=_CWE)
            previous = reading

    def judge(self, replies: Sequence[Reply], reading: LogReading, runs: int) -> Verdict | None:
        """The verdict after *runs* runs of the command, or None to run it again (pure)."""
        found = [self._logged(replies, name, lines) for name, lines in reading.canaries]
        if reading.failure is not None:
            found.append(self._command_failed(replies, reading, reading.failure))
        notes = self._notes(reading)
        if found:
            return Verdict(tuple(found), notes)
        elapsed = format_elapsed(reading.finished_at - reading.began)
        if reading.marker:
            first = reading.marker[0]
            note = (
                f"marker {self.marker} in log line {first.number} after "
                f"{plural(runs, 'run')} ({elapsed}); no canary credential in "
                f"{plural(reading.lines, 'line')}"
            )
            return Verdict((), (note, *notes))
        if reading.finished_at - reading.began < self.spec.within:
            return None
        return Verdict((self._not_logged(replies, reading, runs, elapsed),), notes)

    def _exchange(self, replies: Sequence[Reply], expected: str) -> Exchange:
        urls = ", ".join(reply.url for reply in replies)
        request = f"{self.command} (log command), after GET {urls} with {MARKER_HEADER}: "
        return Exchange(request + self.marker, expected, _RETRY)

    def _logged(self, replies: Sequence[Reply], name: str, lines: Sequence[LogLine]) -> Finding:
        first = lines[0]
        more = f" (and {plural(len(lines) - 1, 'more line')})" if len(lines) > 1 else ""
        return Finding(
            rule=_RULES[name],
            message=f"{_DIAGNOSIS[name]} · log line {first.number}: {first.text}{more}",
            got=_WHY,
            exchange=self._exchange(replies, "no credential of those requests in the log output"),
            itemized=True,  # both canaries in one block: one request, one log
        )

    def _command_failed(
        self, replies: Sequence[Reply], reading: LogReading, message: str
    ) -> Finding:
        got = message
        if reading.timed_out:
            got += (
                ": each run must end within the request timeout (--staging-timeout); print the "
                "recent lines and exit, do not follow the log (-f)"
            )
        if reading.tail:
            got += f" · last output: {reading.tail}"
        expected = "the log command exits 0, printing recent log lines (it fails closed)"
        return Finding(
            rule="log-command-failed",
            message=message,
            got=got,
            exchange=self._exchange(replies, expected),
        )

    def _not_logged(
        self,
        replies: Sequence[Reply],
        reading: LogReading,
        runs: int,
        elapsed: str,
    ) -> Finding:
        within = format_duration(self.spec.within)
        statuses = ", ".join(str(r.status) if r.status else "no response" for r in replies)
        got = (
            f"{plural(runs, 'run')} of the command in {elapsed}; the last printed "
            f"{plural(reading.lines, 'line')}, none with the marker (the requests got "
            f"{statuses}). Are these requests logged (health checks often are not: list a "
            "logged path in checks.logging.paths), and does the command read this service's "
            "logs from REHEARSAL_SINCE on?"
        )
        if reading.tail:
            got += f" · last output: {reading.tail}"
        return Finding(
            rule="marker-not-logged",
            message=f"the marker never appeared in the log output within {within}",
            got=got,
            exchange=self._exchange(
                replies, f"the marker in the log command's output within {within}"
            ),
        )

    def _unanswered(self, reply: Reply) -> Finding:
        expected = "an answer (any status), so that the request is logged"
        return Finding(
            rule="request-failed",
            message=f"the marked request got no response, so it cannot be in the logs: "
            f"{reply.error}",
            got=reply.describe(),
            exchange=self._exchange([reply], expected),
        )

    @staticmethod
    def _notes(reading: LogReading) -> tuple[str, ...]:
        if not reading.scan_stopped:
            return ()
        return (
            f"the log command printed more than {plural(reading.lines, 'line')}; only those "
            "were scanned for canaries: narrow its output (REHEARSAL_SINCE, a filter)",
        )


def build(config: RehearsalConfig) -> list[Check]:
    """The logging check when ``checks.logging`` is configured."""
    spec = config.checks.logging
    return [] if spec is None else [LoggingCheck(spec, meta_for(config, spec.meta))]
