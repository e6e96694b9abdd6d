"""``secrets[/path]`` (exposed artefacts) and ``secrets[responses]`` (leaks in any response).

An artefact counts as exposed only with *positive evidence*: status 200, the marker of its
kind (``[core]`` in a git config, ``KEY=value`` lines in an env file, zip magic bytes in a
backup, ...; nuclei-templates) and a body that differs from what a random missing path gets.
That baseline (``/__rehearsal_<uuid4hex>``) is requested in the same batch as the artefact,
so a server answering 200 to everything (a soft 404) raises no false alarm.

The body scan runs last and reads every reply of the rehearsal for secrets (gitleaks-derived
rules) and stack traces or debug pages. Replies that another check already scans (the
artefact probes, the ``inputs`` probes) are skipped, so one leak gives one failure.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from posixpath import basename

from ..config import RehearsalConfig, SecretsCheckConfig
from ..findings import Finding
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


@dataclass(frozen=True)
class Artefact:
    """A kind of file or endpoint that must not be served, and how to recognise it."""

    kind: str
    marker: Marker
    html_ok: bool = False
    statuses: frozenset[int] = frozenset({200})
    headers: tuple[tuple[str, str], ...] = ()
    read_limit: int = 64 * 1024


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


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=", re.MULTILINE)
_ENV_JSON_KEY = re.compile(r'"([A-Z][A-Z0-9_]{2,})"\s*:')
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
    return "a page (the path should not be served)"


GIT = Artefact(
    "git metadata",
    _regex_marker(
        r'^\[(?:core|credentials|remote "[^"\n]*"|branch "[^"\n]*")\]|^ref: refs/|^[0-9a-f]{40}\b',
        "a git file",
    ),
)
ENV = Artefact("an environment file", _env_lines)
SVN = Artefact(
    "Subversion metadata",
    _regex_marker(r"\A(?:[89]|1[0-2])\s*\n|\A<\?xml[^>]*>\s*<wc-entries", "an svn entries file", 0),
)
HG = Artefact(
    "Mercurial metadata",
    _regex_marker(r"^(?:revlogv1|store|fncache|dotencode|generaldelta|share-safe)\s*$", "hg"),
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
    "a docker-compose file", _regex_marker(r"^services:\s*$|^version:\s*['\"]?[23]", "compose")
)
NPMRC = Artefact(
    "an .npmrc",
    _regex_marker(r"^\s*(?:\S*:)?(?:_authToken|_auth|_password|registry|always-auth)\s*=", "npm"),
)
AWS_CREDENTIALS = Artefact(
    "AWS credentials",
    _regex_marker(r"^\s*aws_(?:access_key_id|secret_access_key|session_token)\s*=", "aws keys"),
)
HEAPDUMP = Artefact(
    "a Java heap dump",
    _magic_marker({b"JAVA PROFILE": "HPROF", b"\x1f\x8b\x08": "gzip"}),
    read_limit=4096,
)
ACTUATOR = Artefact("a Spring Boot actuator endpoint", _actuator)
ENV_DUMP = Artefact("an environment dump", _env_dump)
PHPINFO = Artefact("a phpinfo() page", _phpinfo, html_ok=True)
GENERIC = Artefact("a file that should not be served", _served, html_ok=True)

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
    # Some catch-alls echo the requested path; compare with it swapped in.
    echoed = baseline.body.replace(baseline.probe.path.encode(), reply.probe.path.encode())
    if reply.body in {baseline.body, echoed}:
        return True
    return artefact is GENERIC and is_html(reply) and is_html(baseline)


def is_exposed(reply: Reply, baseline: Reply | None, artefact: Artefact) -> str | None:
    """What proves *reply* serves the artefact (a safe description), or None."""
    if reply.status not in artefact.statuses or _soft_404(reply, baseline, artefact):
        return None
    if is_html(reply) and not artefact.html_ok:
        return None
    return artefact.marker(reply)


def _leaked(findings: Sequence[Leak]) -> list[Leak]:
    return [f for f in findings if not f.rule.warn_only]


def baseline_path_for_run() -> str:
    """A path that cannot exist: what staging answers there is its "not found" page."""
    return f"/__rehearsal_{uuid.uuid4().hex}"


class ExposureCheck(Check):
    """``secrets[/path]``: the artefact at *path* is not served."""

    def __init__(
        self, path: str, config: RehearsalConfig, baseline_path: str | None = None
    ) -> None:
        section = config.checks.secrets or SecretsCheckConfig()
        super().__init__("secrets", path, meta_for(config, section.meta))
        self.path = path
        self.artefact = artefact_for(path)
        self.baseline_path = baseline_path or baseline_path_for_run()

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
        expected = f"not served (this path must not expose {self.artefact.kind})"
        if reply.status is None:
            got = f"no response ({reply.error}): exposure unknown"
            return tag(fail(reply, expected, got, rule="no-response"), asvs=_ASVS_EXPOSURE)
        evidence = is_exposed(reply, baseline, self.artefact)
        served = reply.status == 200 and not _soft_404(reply, baseline, self.artefact)
        leaks = _leaked(scan_response(reply.headers, reply.body)) if served else []
        if evidence is None and not leaks:
            return tag(Verdict.ok(), asvs=_ASVS_EXPOSURE)
        # The body itself is never quoted: it is the secret.
        status = f"{reply.status} {reply.reason}".strip()
        problems = [("exposed", f"{self.artefact.kind}: {evidence}" if evidence else "a page")]
        problems += [(leak.rule.name, f"contains {leak.describe()}") for leak in leaks]
        found = tuple(
            finding(reply, expected, status, rule=rule, message=message, itemized=True)
            for rule, message in problems
        )
        return tag(Verdict(found), asvs=_ASVS_EXPOSURE)


class ResponsesScan(Check):
    """``secrets[responses]``: no reply of the rehearsal shows a secret or a stack trace."""

    runs_last = True

    def __init__(self, config: RehearsalConfig, scanned_elsewhere: Sequence[Probe]) -> None:
        section = config.checks.secrets or SecretsCheckConfig()
        super().__init__("secrets", "responses", meta_for(config, section.meta))
        self.scanned_elsewhere = list(scanned_elsewhere)

    def describe_expectation(self) -> str:
        return "no response of the rehearsal shows a secret, a stack trace or a debug page"

    def run(self, seen: ReplyLog) -> CheckRun:
        yield from ()  # no requests of its own: it reads what every other check received
        return self.judge(list(seen))

    def judge(self, replies: Sequence[Reply]) -> Verdict:
        """The verdict on every reply in *replies* (pure).

        One failure block per response where a leak first appeared; a leak seen again
        elsewhere (a leaky footer on every page) adds "also in N more" rather than a block.
        """
        first: dict[tuple[str, str], tuple[Leak, Reply]] = {}
        also: dict[tuple[str, str], list[str]] = {}
        for reply in replies:
            if reply.probe in self.scanned_elsewhere:
                continue
            for leak in scan_response(reply.headers, reply.body):
                key = (leak.rule.name, leak.shown)
                if key in first:
                    also[key].append(f"{reply.probe.method} {reply.url}")
                else:
                    first[key], also[key] = (leak, reply), []
        found: list[Finding] = []
        notes: list[str] = []
        for key, (leak, reply) in first.items():
            text = leak.describe() + _elsewhere(also[key])
            if leak.rule.warn_only:
                notes.append(f"note (not failing): {text} of {reply.probe.method} {reply.url}")
                continue
            status = f"{reply.status} {reply.reason}".strip()
            expected = self.describe_expectation()
            found.append(
                finding(reply, expected, status, rule=leak.rule.name, message=text, itemized=True)
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
    exposures = [ExposureCheck(path, config, baseline) for path in section.paths]
    checks: list[Check] = list(exposures)
    if section.scan_bodies:
        elsewhere = [check.probe for check in exposures]
        elsewhere += [input_probe(entry) for entry in config.checks.inputs]
        checks.append(ResponsesScan(config, elsewhere))
    return checks
