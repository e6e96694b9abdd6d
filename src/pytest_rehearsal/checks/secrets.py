"""``secrets[/path]`` (exposed artefacts) and ``secrets[responses]`` (leaks in any response).

An artefact counts as exposed only with *positive evidence*: status 200, the marker of its
kind (``[core]`` in a git config, ``KEY=value`` lines in an env file, zip magic bytes in a
backup, ...; nuclei-templates) and a body that differs from what a random missing path gets.
That baseline (``/__rehearsal_<uuid4hex>``) is requested in the same batch as the artefact,
so a server answering 200 to everything (a soft 404) raises no false alarm.

Every body is scanned for secrets (gitleaks-derived rules), stack traces and debug pages,
whatever its status: a secrets path that answers 500 with a framework's debug page fails.
Each artefact check scans its own reply; the body scan runs last and reads every other
reply of the rehearsal, the soft-404 baseline included. A leak on the baseline is the page
every unknown path gets: it is reported once, as such, and not again by each artefact path
that got the same page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from posixpath import basename

from ..config import RehearsalConfig, SecretsCheckConfig
from ..findings import Finding
from ..text import excerpt
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict, fail, finding
from ._leaks import Leak, scan_response
from ._support import is_html, is_json, meta_for, tag
from .inputs import input_probe

__all__ = [
    "ARTEFACTS",
    "Artefact",
    "ExposureCheck",
    "ResponsesScan",
    "artefact_for",
    "baseline_findings",
    "baseline_path_for_run",
    "build",
    "is_exposed",
]

Marker = Callable[[Reply], "str | None"]
# No source control metadata, debug modes off, no monitoring endpoints exposed.
_ASVS_EXPOSURE = "5.0.0: 13.4.1 13.4.2 13.4.5"
_ASVS_LEAKS = "5.0.0: 16.5.1 13.4.2"  # generic errors, no stack traces; debug off
_OTHER_URLS_SHOWN = 3
_BASELINE_READ_LIMIT = 64 * 1024
_BASELINE_EXPECTED = (
    "the page every unknown path gets (this random path cannot exist) shows no secret, "
    "stack trace or debug page"
)


@dataclass(frozen=True)
class Artefact:
    """A kind of file or endpoint that must not be served, and how to recognise it.

    ``credential`` finds a credential the artefact itself holds (a password in a git remote
    URL), described masked: it is a problem of its own beside the exposure.
    """

    kind: str
    marker: Marker
    html_ok: bool = False
    statuses: frozenset[int] = frozenset({200})
    headers: tuple[tuple[str, str], ...] = ()
    read_limit: int = 64 * 1024
    credential: Marker | None = None
    why: str = ""  # why the path must not be served; by default, it would expose ``kind``

    @property
    def expected(self) -> str:
        """What the artefact check expects, in words."""
        return f"not served ({self.why or f'this path must not expose {self.kind}'})"


def _regex_marker(pattern: str, what: str, flags: int = re.MULTILINE) -> Marker:
    compiled = re.compile(pattern, flags)

    def marker(reply: Reply) -> str | None:
        match = compiled.search(reply.text)
        return f"{what} ({match.group(0).strip()[:40]!r})" if match else None

    return marker


def _magic_marker(magics: dict[bytes, str], offsets: dict[bytes, int] | None = None) -> Marker:
    def marker(reply: Reply) -> str | None:
        for magic, name in magics.items():
            at = (offsets or {}).get(magic, 0)
            if reply.body[at : at + len(magic)] == magic:
                return f"{name} file signature {magic.hex(' ').upper()}"
        return None

    return marker


# ``[ \t]`` rather than ``\s`` at a line start: ``^\s*`` spans newlines, and would rescan a
# body of blank lines to its end from every line (quadratic; 64 KiB took a minute).
_ENV_LINE = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Z][A-Z0-9_]{0,200})[ \t]*=", re.MULTILINE)
_ENV_JSON_KEY = re.compile(r'"([A-Z][A-Z0-9_]{2,200})"[ \t\r\n]{0,40}:')
_ACTUATOR = re.compile(
    r'"(activeProfiles|propertySources|contexts|levels|loggers|threads|exchanges|traces'
    r'|components|details)"\s*:'
)


def _env_lines(reply: Reply) -> str | None:
    # Names only: the values are the secrets.
    names = list(dict.fromkeys(_ENV_LINE.findall(reply.text)))
    if len(names) < 2:
        return None
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    return f"KEY=value lines ({shown})"


def _actuator(reply: Reply) -> str | None:
    keys = list(dict.fromkeys(_ACTUATOR.findall(reply.text)))
    if not keys or not (is_json(reply) or reply.body.lstrip().startswith(b"{")):
        return None
    return "Spring Boot actuator data (" + ", ".join(keys[:4]) + ")"


def _env_dump(reply: Reply) -> str | None:
    found = _actuator(reply) or _env_lines(reply)
    if found:
        return found
    names = list(dict.fromkeys(_ENV_JSON_KEY.findall(reply.text)))
    if len(names) >= 3:
        return "environment variables as JSON (" + ", ".join(names[:4]) + ", …)"
    return None


def _phpinfo(reply: Reply) -> str | None:
    text = reply.text
    return "a phpinfo() page" if "PHP Version" in text and "PHP Extension" in text else None


def _served(reply: Reply) -> str | None:
    return reply.summary()


# ``url = https://user:password@host/path`` in a remote section; the user and the host are
# shown, the password never. The password runs to the authority's last "@", as git splits
# it: one holding an unencoded "@" is not shown in part as the host.
_GIT_REMOTE_PASSWORD = re.compile(
    r"^[ \t]*url[ \t]*=[ \t]*([a-z][a-z0-9+.-]{0,20}://)([^\s:/@]{1,200}):[^\s/]{1,500}@"
    r"([^\s/]{1,255})(\S{0,200})",
    re.MULTILINE | re.IGNORECASE,
)


def _git_remote_password(reply: Reply) -> str | None:
    match = _GIT_REMOTE_PASSWORD.search(reply.text)
    if match is None:
        return None
    scheme, user, host, path = match.groups()
    shown = excerpt(f"{scheme}{user}:***@{host}{path}", 100)
    return f'a password in a remote URL ("{shown}")'


GIT = Artefact(
    "git metadata",
    _regex_marker(
        r'^\[(?:core|credentials|remote "[^"\n]{0,200}"|branch "[^"\n]{0,200}")\]'
        r"|^ref: refs/|^[0-9a-f]{40}\b",
        "a git file",
    ),
    credential=_git_remote_password,
)
ENV = Artefact("an environment file", _env_lines)
SVN = Artefact(
    "Subversion metadata",
    _regex_marker(r"\A(?:[89]|1[0-2])\s*\n|\A<\?xml[^>]*>\s*<wc-entries", "an svn entries file", 0),
)
HG = Artefact(
    "Mercurial metadata",
    _regex_marker(r"^(?:revlogv1|store|fncache|dotencode|generaldelta|share-safe)[ \t\r]*$", "hg"),
)
DS_STORE = Artefact(
    "a macOS .DS_Store listing", _magic_marker({b"\x00\x00\x00\x01Bud1": "DS_Store"})
)
ARCHIVE = Artefact(
    "a backup archive",
    _magic_marker(
        {
            b"PK\x03\x04": "zip",
            b"\x1f\x8b": "gzip",
            b"7z\xbc\xaf\x27\x1c": "7z",
            b"Rar!\x1a\x07": "rar",
            b"BZh": "bzip2",
            b"\xfd7zXZ\x00": "xz",
            b"SQLite format 3\x00": "SQLite",
            b"ustar": "tar",
        },
        offsets={b"ustar": 257},
    ),
    read_limit=4096,
)
SQL_DUMP = Artefact(
    "a database dump",
    _regex_marker(
        r"(?:DROP|CREATE|(?:UN)?LOCK) TABLE|INSERT INTO|^-- (?:MySQL|MariaDB|PostgreSQL)",
        "SQL statements",
    ),
    statuses=frozenset({200, 206}),
    # nuclei sql-dump: ask for the first 3 KB only, never download the whole dump.
    headers=(("Range", "bytes=0-3000"),),
    read_limit=4096,
)
COMPOSE = Artefact(
    "a docker-compose file",
    _regex_marker(r"^services:[ \t\r]*$|^version:[ \t]*['\"]?[23]", "compose"),
)
NPMRC = Artefact(
    "an .npmrc",
    _regex_marker(
        r"^[ \t]*(?:[^\s:]{0,500}:)?(?:_authToken|_auth|_password|registry|always-auth)[ \t]*=",
        "npm",
    ),
)
AWS_CREDENTIALS = Artefact(
    "AWS credentials",
    _regex_marker(
        r"^[ \t]*aws_(?:access_key_id|secret_access_key|session_token)[ \t]*=", "aws keys"
    ),
)
HEAPDUMP = Artefact(
    "a Java heap dump",
    _magic_marker({b"JAVA PROFILE": "HPROF", b"\x1f\x8b\x08": "gzip"}),
    read_limit=4096,
)
ACTUATOR = Artefact("a Spring Boot actuator endpoint", _actuator)
ENV_DUMP = Artefact("an environment dump", _env_dump)
PHPINFO = Artefact("a phpinfo() page", _phpinfo, html_ok=True)
GENERIC = Artefact(
    "anything", _served, html_ok=True, why="the path is listed in checks.secrets.paths"
)

_ARCHIVE_SUFFIXES = (
    *(".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".tar", ".war", ".jar"),
    *(".sqlite", ".sqlite3", ".db"),
)
_PHPINFO_NAMES = {"phpinfo.php", "info.php", "php.php", "test.php", "i.php"}
_COMPOSE_NAMES = {"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"}

#: Path predicate -> artefact, first match wins; any other path is :data:`GENERIC`.
ARTEFACTS: tuple[tuple[Callable[[str], bool], Artefact], ...] = (
    (lambda p: "/.git/" in p, GIT),
    (lambda p: "/.svn/" in p, SVN),
    (lambda p: "/.hg/" in p, HG),
    (lambda p: "/.aws/" in p, AWS_CREDENTIALS),
    (lambda p: basename(p).startswith(".env") or basename(p).endswith(".env"), ENV),
    (lambda p: basename(p) == ".ds_store", DS_STORE),
    (lambda p: "heapdump" in basename(p), HEAPDUMP),
    (lambda p: p.endswith(_ARCHIVE_SUFFIXES), ARCHIVE),
    (lambda p: p.endswith(".sql"), SQL_DUMP),
    (lambda p: basename(p) in _COMPOSE_NAMES, COMPOSE),
    (lambda p: basename(p) == ".npmrc", NPMRC),
    (lambda p: p.startswith("/actuator"), ACTUATOR),
    (lambda p: basename(p) == "env", ENV_DUMP),
    (lambda p: "phpinfo" in p or basename(p) in _PHPINFO_NAMES, PHPINFO),
)


def artefact_for(path: str) -> Artefact:
    """The kind of artefact at *path* (judged by its file name), :data:`GENERIC` otherwise."""
    lowered = path.split("?", 1)[0].lower()
    for predicate, artefact in ARTEFACTS:
        if predicate(lowered):
            return artefact
    return GENERIC


def _soft_404(reply: Reply, baseline: Reply | None, artefact: Artefact) -> bool:
    """Whether *reply* is what any missing path gets (the random baseline path)."""
    if baseline is None or baseline.status != reply.status:
        return False
    # Some catch-alls echo the requested path (Django's DEBUG 404 page without its leading
    # slash too); compare with it swapped in.
    ours, theirs = baseline.probe.path.lstrip("/"), reply.probe.path.lstrip("/")
    echoed = baseline.body.replace(ours.encode(), theirs.encode())
    if reply.body in {baseline.body, echoed}:
        return True
    return artefact is GENERIC and is_html(reply) and is_html(baseline)


def is_exposed(reply: Reply, baseline: Reply | None, artefact: Artefact) -> str | None:
    """What proves *reply* serves the artefact (a safe description), or None."""
    if reply.status not in artefact.statuses or _soft_404(reply, baseline, artefact):
        return None
    if is_html(reply) and not artefact.html_ok:
        return None
    evidence = artefact.marker(reply)
    if evidence is not None and artefact is GENERIC and baseline is not None:
        evidence += f", while unknown paths get {baseline.status_line}"
    return evidence


def _leaked(reply: Reply) -> list[Leak]:
    """The leaks of *reply* that fail a check (a JWT only warns)."""
    return [leak for leak in scan_response(reply.headers, reply.body) if not leak.rule.warn_only]


def _own_leaks(reply: Reply, baseline: Reply | None) -> list[Leak]:
    """The leaks of *reply* that are not those of the page every unknown path gets.

    A secrets path that answers like the baseline (the same status and the same leak: the
    debug 404 page of a framework, whatever the path) shows the unknown-path page, which is
    reported once, on the baseline.
    """
    leaks = _leaked(reply)
    if not leaks or baseline is None or baseline.status != reply.status:
        return leaks
    shared = {leak.identity for leak in _leaked(baseline)}
    return [leak for leak in leaks if leak.identity not in shared]


def _leak_message(leak: Leak, reply: Reply) -> str:
    """A leak of one reply in words: a trace is what the path *answers with*."""
    if leak.rule.kind == "trace":
        return f"answers {reply.status} with {leak.describe()}"
    return f"contains {leak.describe()}"


def _unknown_page_message(leak: Leak, baseline: Reply) -> str:
    if leak.rule.kind == "trace":
        return f"every unknown path answers {baseline.status} with {leak.describe()}"
    return f"the page every unknown path gets contains {leak.describe()}"


def _baseline_finding(baseline: Reply, leak: Leak, elsewhere: str = "") -> Finding:
    got = f"{baseline.status_line} · the page of a random path that cannot exist"
    message = _unknown_page_message(leak, baseline) + elsewhere
    return finding(
        baseline, _BASELINE_EXPECTED, got, rule=leak.rule.name, message=message, itemized=True
    )


def baseline_findings(baseline: Reply) -> list[Finding]:
    """The leaks of the page every unknown path gets, each said to be that page's."""
    return [_baseline_finding(baseline, leak) for leak in _leaked(baseline)]


def baseline_path_for_run() -> str:
    """A path that cannot exist: what staging answers there is its "not found" page."""
    return f"/__rehearsal_{uuid.uuid4().hex}"


class ExposureCheck(Check):
    """``secrets[/path]``: the artefact at *path* is not served, and its reply leaks nothing.

    With *reports_baseline*, it also reports the leaks of the baseline page (when no body
    scan runs to report them).
    """

    def __init__(
        self,
        path: str,
        config: RehearsalConfig,
        baseline_path: str | None = None,
        *,
        reports_baseline: bool = False,
    ) -> None:
        section = config.checks.secrets or SecretsCheckConfig()
        super().__init__("secrets", path, meta_for(config, section.meta))
        self.path = path
        self.artefact = artefact_for(path)
        self.baseline_path = baseline_path or baseline_path_for_run()
        self.reports_baseline = reports_baseline

    def describe_expectation(self) -> str:
        return f"GET {self.path} does not serve {self.artefact.kind}"

    @property
    def probe(self) -> Probe:
        return Probe(
            "GET", self.path, headers=self.artefact.headers, read_limit=self.artefact.read_limit
        )

    def run(self, seen: ReplyLog) -> CheckRun:
        baseline_probe = Probe("GET", self.baseline_path, read_limit=_BASELINE_READ_LIMIT)
        baseline, reply = yield [baseline_probe, self.probe]
        return self.judge(reply, baseline)

    def judge(self, reply: Reply, baseline: Reply | None) -> Verdict:
        """The verdict on the artefact reply, given the soft-404 baseline (pure)."""
        expected = self.artefact.expected
        extra = (
            baseline_findings(baseline)
            if self.reports_baseline and baseline is not None and baseline.status is not None
            else []
        )
        if reply.status is None:
            got = f"{reply.status_line}: exposure unknown"
            verdict = fail(reply, expected, got, rule="no-response")
            return tag(Verdict((*verdict.findings, *extra)), asvs=_ASVS_EXPOSURE)
        problems: list[tuple[str, str]] = []
        evidence = is_exposed(reply, baseline, self.artefact)
        if evidence is not None:
            served = "is served" if self.artefact is GENERIC else f"serves {self.artefact.kind}"
            problems.append(("exposed", f"{served}: {evidence}"))
            credential = self.artefact.credential(reply) if self.artefact.credential else None
            if credential is not None:
                problems.append(("credential", f"contains {credential}"))
        problems += [
            (leak.rule.name, _leak_message(leak, reply)) for leak in _own_leaks(reply, baseline)
        ]
        # The body itself is never quoted: it is the secret.
        found = [
            finding(reply, expected, reply.status_line, rule=rule, message=message, itemized=True)
            for rule, message in problems
        ]
        return tag(Verdict((*found, *extra)), asvs=_ASVS_EXPOSURE)


class ResponsesScan(Check):
    """``secrets[responses]``: no reply of the rehearsal shows a secret or a stack trace."""

    runs_last = True

    def __init__(
        self,
        config: RehearsalConfig,
        scanned_elsewhere: Sequence[Probe],
        baseline_path: str | None = None,
    ) -> None:
        section = config.checks.secrets or SecretsCheckConfig()
        super().__init__("secrets", "responses", meta_for(config, section.meta))
        self.scanned_elsewhere = list(scanned_elsewhere)
        self.baseline_path = baseline_path

    def describe_expectation(self) -> str:
        return "no response of the rehearsal shows a secret, a stack trace or a debug page"

    def run(self, seen: ReplyLog) -> CheckRun:
        yield from ()  # no requests of its own: it reads what every other check received
        return self.judge(list(seen))

    def judge(self, replies: Sequence[Reply]) -> Verdict:
        """The verdict on every reply in *replies* (pure).

        One finding per leak, on the response where it first appeared; the same leak seen
        again elsewhere (a leaky footer on every page) adds "also in N more". A leak of the
        soft-404 baseline is said to be on the page every unknown path gets.
        """
        first: dict[tuple[str, str], tuple[Leak, Reply]] = {}
        also: dict[tuple[str, str], list[str]] = {}
        for reply in replies:
            if reply.probe in self.scanned_elsewhere:
                continue
            for leak in scan_response(reply.headers, reply.body):
                key = leak.identity
                if key in first:
                    also[key].append(f"{reply.probe.method} {reply.url}")
                else:
                    first[key], also[key] = (leak, reply), []
        found: list[Finding] = []
        notes: list[str] = []
        for key, (leak, reply) in first.items():
            request = f"{reply.probe.method} {excerpt(reply.probe.path, 100)}"
            elsewhere = _elsewhere(also[key])
            if leak.rule.warn_only:
                notes.append(f"note (not failing): {request} shows {leak.describe()}{elsewhere}")
            elif reply.probe.path == self.baseline_path:
                found.append(_baseline_finding(reply, leak, elsewhere))
            else:
                message = f"{request} {_leak_message(leak, reply)}{elsewhere}"
                expected = self.describe_expectation()
                found.append(
                    finding(
                        reply,
                        expected,
                        reply.status_line,
                        rule=leak.rule.name,
                        message=message,
                        itemized=True,
                    )
                )
        verdict = Verdict(tuple(found), tuple(notes))
        return tag(verdict, asvs=_ASVS_LEAKS, scanned=str(len(replies)))


def _elsewhere(urls: Sequence[str]) -> str:
    if not urls:
        return ""
    shown = ", ".join(urls[:_OTHER_URLS_SHOWN]) + (", …" if len(urls) > _OTHER_URLS_SHOWN else "")
    return f" (also in {len(urls)} more: {shown})"


def build(config: RehearsalConfig) -> list[Check]:
    """One exposure check per path, and the body scan when ``scan_bodies`` is on."""
    section = config.checks.secrets
    if section is None:
        return []
    # One soft-404 baseline for every path: the executor sends identical GETs of a round once.
    baseline = baseline_path_for_run()
    # The baseline's own leaks are reported once: by the body scan, or without one by the
    # first artefact check.
    exposures = [
        ExposureCheck(path, config, baseline, reports_baseline=not section.scan_bodies and i == 0)
        for i, path in enumerate(section.paths)
    ]
    checks: list[Check] = list(exposures)
    if section.scan_bodies:
        elsewhere = [check.probe for check in exposures]
        elsewhere += [input_probe(entry) for entry in config.checks.inputs]
        checks.append(ResponsesScan(config, elsewhere, baseline if exposures else None))
    return checks
