"""What a built-in check is: a plan of HTTP requests plus a pure judgement of the replies.

A check never does I/O itself. Its :meth:`Check.run` is a generator that *yields* batches of
:class:`Probe` objects and is *sent* the matching :class:`Reply` objects; when it has seen
enough it *returns* a :class:`Verdict`. The executor drives all checks side by side, so a full
rehearsal costs about as many round trips as its longest chain of dependent requests.

    def run(self, seen):
        (reply,) = yield [Probe("GET", "/health")]
        if reply.status != 200:
            return fail(reply, expected="status 200")
        return Verdict.ok()
"""

from __future__ import annotations

import codecs
import html
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..answers import ParsedJson, parse_json
from ..config import Meta
from ..findings import Exchange, Finding, render
from ..text import excerpt, plural, printable
from ._leaks import SCAN_LIMIT, mask_secrets

if TYPE_CHECKING:
    import ssl

__all__ = [
    "IDEMPOTENT_METHODS",
    "Action",
    "ActionContext",
    "Check",
    "CheckRun",
    "Probe",
    "Reply",
    "ReplyLog",
    "Request",
    "Upload",
    "Verdict",
    "describe_retry",
    "exchange_of",
    "fail",
    "finding",
]

# RFC 9110 section 9.2.2: repeating these has the same effect as sending them once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
DEFAULT_READ_LIMIT = 1024 * 1024
# Bounded on both sides: the body is the server's, and an unbounded ``[^>]*`` would rescan
# the rest of a body of ``<title<title<title...`` from every start (quadratic).
_TITLE = re.compile(r"<title[^<>]{0,200}>([^<]{0,300})</title", re.IGNORECASE)
_TITLE_SEARCHED = 64 * 1024
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([\w.:-]{1,40})", re.IGNORECASE)


@dataclass(frozen=True)
class Upload:
    """A generated multipart file body of exactly *size* bytes, streamed, never held in memory."""

    field: str
    size: int
    filename: str = "rehearsal.bin"


@dataclass(frozen=True)
class Probe:
    """One HTTP request a check wants sent to staging.

    ``path`` is relative to the staging URL and may carry a query string. ``credentials`` is
    ``"default"`` (the configured ``auth``), ``None`` (anonymous) or the name of a role from
    ``checks.permissions.roles``.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    content: bytes | None = None
    upload: Upload | None = None
    credentials: str | None = "default"
    idempotent: bool | None = None  # None: decided by the method (RFC 9110)
    read_limit: int = DEFAULT_READ_LIMIT

    @property
    def is_idempotent(self) -> bool:
        """Whether sending this request twice has the same effect as once."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in IDEMPOTENT_METHODS


@dataclass(frozen=True)
class Reply:
    """What came back for a :class:`Probe`: a response, or a transport error (``status`` None)."""

    probe: Probe
    url: str
    status: int | None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False
    elapsed: float = 0.0
    attempts: int = 1
    error: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header *name* (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header *name*, in order (``Set-Cookie`` comes several times)."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    @property
    def text(self) -> str:
        """The body decoded leniently (undecodable bytes replaced): for searching, not showing."""
        return self.body.decode("utf-8", errors="replace")

    @property
    def media_type(self) -> str:
        """The media type, lower-cased, without parameters ("" when there is no Content-Type)."""
        value = self.header("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()

    def json(self) -> ParsedJson:
        """The body as JSON, or why it is not (never raises; refuses absurd nesting)."""
        return parse_json(self.body)

    def readable_text(self) -> str | None:
        """The body as text, by its charset (UTF-8 by default), or None when it is not text.

        Not text: a NUL byte, or bytes that are invalid in the charset. An incomplete
        character at the very end of a body cut at a read limit is allowed.
        """
        data = self.body[:SCAN_LIMIT]
        cut = self.truncated or len(self.body) > SCAN_LIMIT
        if b"\x00" in data:
            return None
        charset = _CHARSET.search(self.header("Content-Type") or "")
        try:
            encoding = codecs.lookup(charset.group(1) if charset else "utf-8").name
        except LookupError:
            encoding = "utf-8"
        try:
            decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
            return decoder.decode(data, final=not cut)
        except (UnicodeDecodeError, ValueError):
            return None

    def size_and_type(self) -> str:
        """``64 bytes of application/octet-stream``: what came back, without quoting it."""
        media = excerpt(self.media_type, 60)
        size = _amount(len(self.body), self.truncated)
        return f"{size} of {media}" if media else f"{size} without a Content-Type"

    def summary(self) -> str:
        """The body described, never quoted (it may be the secret): size and type, and the
        title of an HTML page."""
        kind = self._kind()
        return f"an {kind}" if kind is not None else self.size_and_type()

    def _kind(self) -> str | None:
        """``empty body`` or ``HTML page "Title" (3.2 KiB)``: a body that is told by what it
        is rather than by its text; None for any other body."""
        if not self.body:
            return "empty body"
        title = self.title()
        if title is None:
            return None
        return f'HTML page "{title}" ({_amount(len(self.body), self.truncated)})'

    def title(self) -> str | None:
        """The ``<title>`` of an HTML body, shown safely, or None."""
        if "html" not in self.media_type and b"<html" not in self.body[:1024].lower():
            return None
        text = self.readable_text()
        match = _TITLE.search(text[:_TITLE_SEARCHED]) if text else None
        if match is None:
            return None
        title = excerpt(mask_secrets(html.unescape(match.group(1))), 80)
        return title or None

    @property
    def status_line(self) -> str:
        """``503 Service Unavailable after 2 attempts``, or ``no response (...)``."""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        if self.status is None:
            return f"no response ({printable(self.error or 'unknown error')}){tries}"
        return printable(f"{self.status} {self.reason}".strip()) + tries

    def describe_body(self, limit: int = 200) -> str:
        """The body for a message: an excerpt of a text body (secrets redacted), the title
        of an HTML page, or size and type of a body that is not text."""
        kind = self._kind()
        if kind is not None:
            return kind
        text = self.readable_text()
        if text is None:
            return f"{self.size_and_type()} (not text)"
        shown = excerpt(mask_secrets(text), limit)
        return shown or f"{_amount(len(self.body), self.truncated)} of white space"

    def describe(self, limit: int = 200) -> str:
        """One line for failure messages: status and reason, or the transport error, and body.

        Whatever came from the server is shown with control characters escaped, a body that
        is not text by its size and type, and a secret in an excerpt (a token, a private
        key) redacted: a page that fails for another reason may still carry one.
        """
        if self.status is None:
            return self.status_line
        return f"{self.status_line} · {self.describe_body(limit)}"


def _amount(size: int, truncated: bool = False) -> str:
    """``64 bytes``, ``3.2 KiB``, ``1.0 MiB``; "over" when only the first part was read."""
    if size < 1024:
        text = plural(size, "byte")
    elif size < 1024 * 1024:
        text = f"{size / 1024:.1f} KiB"
    else:
        text = f"{size / 1024 / 1024:.1f} MiB"
    return f"over {text}" if truncated else text


class ReplyLog:
    """Every reply this process has received so far, in order (read by checks that scan them)."""

    def __init__(self) -> None:
        self._replies: list[Reply] = []

    def add(self, reply: Reply) -> None:
        self._replies.append(reply)

    def __iter__(self) -> Any:
        return iter(list(self._replies))

    def __len__(self) -> int:
        return len(self._replies)


@dataclass(frozen=True)
class Verdict:
    """The judgement of one check: what it found (nothing: it passed), notes, properties.

    ``notes`` say something about a passing check (a warning, such as a JWT in a response);
    ``properties`` are facts for the reports (the ASVS requirements it maps to).
    """

    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def ok(cls, note: str = "") -> Verdict:
        """A pass, with an optional note."""
        return cls(notes=(note,) if note else ())

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """The findings that fail the check: every one not accepted (``accept:`` entries)."""
        return tuple(found for found in self.findings if found.accepted is None)

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def accepted(self) -> bool:
        """Whether it found something and every finding is accepted for now."""
        return bool(self.findings) and not self.blocking

    @property
    def accepted_reason(self) -> str:
        """``accepted: <reason>`` for pytest's xfail line (each distinct reason once)."""
        reasons = dict.fromkeys(f.accepted.reason for f in self.findings if f.accepted)
        return "accepted: " + "; ".join(reasons) if reasons else ""

    @property
    def message(self) -> str:
        """The failure message built from the blocking findings, then the notes."""
        parts = [render(self.blocking)] if self.blocking else []
        return "\n".join([*parts, *self.notes])


class Action(ABC):
    """A step of a check that is not an HTTP request to staging (a TLS handshake, a log read).

    The check yields it like a :class:`Probe` and is sent what :meth:`perform` returned; the
    I/O lives in :meth:`perform` (in a module of its own, imported when used), so the check
    itself only plans and judges.
    """

    @abstractmethod
    def perform(self, context: ActionContext, not_after: float) -> object:
        """Do it, ending by *not_after* (``time.monotonic()``); never raise for staging's sake."""

    def describe(self) -> str:
        """What it does, in words, for ``--rehearsal-plan``."""
        return type(self).__name__


@dataclass(frozen=True)
class ActionContext:
    """What an :class:`Action` may use: the staging URL, TLS trust, timeout and redaction,
    and the working directory and environment of the team's commands (``rollback.cwd/env``)."""

    staging_url: str
    timeout: float
    ssl_context: ssl.SSLContext
    redactor: Callable[[str], str]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


#: What a check yields: HTTP requests and other actions, answered in order.
Request = Probe | Action
CheckRun = Generator[Sequence[Request], Sequence[Any], Verdict]


class Check(ABC):
    """A built-in check; one pytest item (``rehearsal::<name>[<param>]``) per instance."""

    #: Checks with ``runs_last`` start only after every other check has finished, so that
    #: they can read every reply in the :class:`ReplyLog` (the body scan of ``secrets``).
    runs_last: bool = False
    #: Values the check makes up and sends that must never be shown (canary credentials):
    #: the rehearsal masks them in every output, like the tokens from the environment.
    secrets: tuple[str, ...] = ()

    def __init__(self, name: str, param: str | None, meta: Meta) -> None:
        self.name = name
        self.param = param
        self.meta = meta

    @property
    def id(self) -> str:
        """The item name: ``health``, ``headers[/]``, ``secrets[/.env]``."""
        return self.name if self.param is None else f"{self.name}[{self.param}]"

    @property
    def expected(self) -> str:
        """The expected result in words: the configured ``expect``, or the generated one."""
        return self.meta.expect or self.describe_expectation()

    @abstractmethod
    def describe_expectation(self) -> str:
        """The expected result in words, generated from the configuration."""

    @abstractmethod
    def run(self, seen: ReplyLog) -> CheckRun:
        """Yield batches of probes, receive their replies, return the verdict."""


def describe_retry(probe: Probe) -> str:
    """Whether repeating *probe* is safe, in words a release owner can act on."""
    method = probe.method.upper()
    if method in {"GET", "HEAD", "OPTIONS"}:
        return f"safe: {method} does not change staging"
    if probe.is_idempotent:
        return f"safe: this {method} is idempotent, repeating it has the effect of sending it once"
    return f"not safe: repeating this {method} may change staging again (it is not idempotent)"


def exchange_of(
    reply: Reply | Probe, expected: str, url: str = "", noun: str = "problem"
) -> Exchange:
    """The request of *reply* (or of a *probe* that never went out), what was expected of it,
    and whether repeating it is safe."""
    probe = reply.probe if isinstance(reply, Reply) else reply
    target = reply.url if isinstance(reply, Reply) else (url or probe.path)
    return Exchange(f"{probe.method.upper()} {target}", expected, describe_retry(probe), noun)


def finding(
    reply: Reply | Probe,
    expected: str,
    got: str | None = None,
    *,
    rule: str,
    message: str | None = None,
    itemized: bool = False,
    url: str = "",
    noun: str = "problem",
) -> Finding:
    """One finding about *reply*: what was requested, expected and got, and retry safety.

    Pass a :class:`Reply` (its URL and description are used) or, when no request went out,
    the :class:`Probe` and an explicit *got*. *message* is the one-line statement of the
    problem; by default "expected ..., got ..." from the first line of *got*.
    """
    if got is None:
        got = reply.describe() if isinstance(reply, Reply) else "nothing"
    if message is None:
        # The status line, not the body excerpt: the one line must stay short.
        head = got.splitlines()[0].split(" · ")[0] if got else "nothing"
        message = f"expected {expected}, got {excerpt(head, 120)}"
    return Finding(
        rule=rule,
        message=message,
        got=got,
        exchange=exchange_of(reply, expected, url, noun),
        itemized=itemized,
    )


def fail(
    reply: Reply | Probe,
    expected: str,
    got: str | None = None,
    url: str = "",
    *,
    rule: str,
    message: str | None = None,
) -> Verdict:
    """A failed verdict with one :func:`finding`."""
    return Verdict((finding(reply, expected, got, rule=rule, message=message, url=url),))
