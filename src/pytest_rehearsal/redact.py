"""Keeping secrets out of every output: a masked wrapper and one redactor for all text.

A token lives in a :class:`Secret` (not a ``str`` subclass: pytest's assertion diffs use a
string's *content*, so only a non-``str`` wrapper stays masked in diffs and ``-l`` locals).
Everything the plugin prints or writes passes through a :class:`Redactor` that replaces each
known secret value with ``***``, also where the value shows up escaped (``repr``, JSON, XML,
percent-encoding), cut short by an excerpt's ellipsis, or as the credential of an
``Authorization``-shaped header. Log records are redacted when they are made
(:func:`install_log_redaction`), and :func:`secret_in_arguments` refuses secrets on argv.
"""

from __future__ import annotations

import html
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "CREDENTIAL_WORDS",
    "MASK",
    "LogRedaction",
    "Redactor",
    "Secret",
    "install_log_redaction",
    "mask_url",
    "secret_in_arguments",
]

MASK = "***"
# Shorter values would mask innocent text everywhere (a token "1" would eat every digit).
_MIN_SECRET_LENGTH = 4
# A fragment of a secret cut by an excerpt is masked from this many characters on.
_MIN_FRAGMENT = 6
_ELLIPSES = ("…", "...")
# After "://", up to the authority's last "@", as urllib.parse and httpx split it: a
# password holding an unencoded "@" is masked whole, and an "@" in the path or query is no
# userinfo. The scheme is left out of the pattern: matched, it made every letter of a long
# run (a hostile redirect's Location) a start rescanning the run, in quadratic time.
_USERINFO = re.compile(r"://[^/?#\s]+@")
#: The words that make a query parameter (or an option) a credential: ``passw`` for
#: password, passwd, passwort; ``sig`` for signature.
CREDENTIAL_WORDS = "token|key|secret|passw|auth|sig"
_TOKEN_QUERY = re.compile(
    rf"(?P<key>[?&](?:[\w.-]*(?:{CREDENTIAL_WORDS})[\w.-]*)=)"
    r"(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)
# Credentials whose value the redactor may not know: the value of an Authorization header
# (as a header line, a dict/JSON entry or a keyword), and any long Bearer/Basic credential.
# Quotes may come escaped (a log line quoted inside JSON): the backslash of `\"` is never
# part of the value, or masking it would unescape the quote and break the JSON.
_HEADER_CREDENTIAL = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization\b(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?)"
    r"(?P<scheme>(?:bearer|basic|token|digest)\s+)?"
    r"(?P<value>[^\s\"',;}\])\\]+)",
    re.IGNORECASE,
)
_SCHEME_CREDENTIAL = re.compile(r"(?P<scheme>\b(?:Bearer|Basic)\s+)(?P<value>[\w.~+/-]{16,}=*)")


class Secret:
    """A credential whose ``repr`` and ``str`` are masked; :meth:`reveal` only to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: call this only where the header is built."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        if isinstance(other, str):
            return self._value == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a str, so it must not hash like one


def mask_url(url: str) -> str:
    """*url* with its userinfo and token-like query values replaced by ``***``."""
    url = _USERINFO.sub(f"://{MASK}@", url)
    return _TOKEN_QUERY.sub(lambda m: f"{m['key']}{MASK}", url)


def _in_single_quotes(text: str) -> str:
    """*text* as ``repr`` writes it between single quotes (``'`` escaped as ``\\'``).

    ``repr`` picks its quotes for the whole string: a token containing ``'`` inside a
    larger string that also holds ``"`` is written with ``\\'``, not as ``repr(token)``.
    """
    return repr(text + '"')[1:-2]


def _in_double_quotes(text: str) -> str:
    """*text* as ``repr`` writes it between double quotes (chosen when it holds ``'`` only)."""
    return repr(text + "'")[1:-2] if '"' not in text else _in_single_quotes(text)


def _in_json(text: str) -> str:
    return json.dumps(text)[1:-1]


def _in_bytes_single_quotes(text: str) -> str:
    return repr(text.encode("utf-8", "backslashreplace") + b'"')[2:-2]


def _in_bytes_double_quotes(text: str) -> str:
    data = text.encode("utf-8", "backslashreplace")
    return repr(data + b"'")[2:-2] if b'"' not in data else _in_bytes_single_quotes(text)


# Escapings a secret may have gone through once; any of them may then be quoted again by
# repr or JSON (a JSON body in an assertion message, the repr of a repr), so each spelling
# is also taken through one more of _REQUOTINGS.
_ESCAPINGS: tuple[Callable[[str], str], ...] = (
    _in_single_quotes,
    _in_double_quotes,
    _in_json,
    lambda text: json.dumps(text, ensure_ascii=False)[1:-1],
    _in_bytes_single_quotes,
    _in_bytes_double_quotes,
    html.escape,
    lambda text: html.escape(text, quote=False).replace('"', "&quot;"),  # XML leaves ' as is
    lambda text: urllib.parse.quote(text, safe=""),
    lambda text: urllib.parse.quote_plus(text, safe=""),
)
_REQUOTINGS: tuple[Callable[[str], str], ...] = (_in_single_quotes, _in_double_quotes, _in_json)


def _spellings(value: str) -> set[str]:
    """*value* as it appears after the escaping of repr (either quotes, bytes), JSON,
    XML/HTML and URLs, and after one more repr or JSON quoting of any of those."""
    once = {value, *(escape(value) for escape in _ESCAPINGS)}
    return once | {quote(spelling) for spelling in once for quote in _REQUOTINGS}


class Redactor:
    """Replaces every known secret value in text with ``***``; cheap when none is known.

    Besides the exact value it masks the value's escaped spellings, a fragment of it that
    an excerpt cut off at an ellipsis (``tok_4f9…`` or ``…2c``), and any credential in an
    ``Authorization``-shaped header or a long ``Bearer``/``Basic`` credential.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str | Secret) -> None:
        """Learn one more secret value (too short ones are ignored, see module notes)."""
        raw = value.reveal() if isinstance(value, Secret) else value
        if len(raw) >= _MIN_SECRET_LENGTH and raw not in self._values:
            self._values.add(raw)
            self._pattern = None  # compiled again on first use: one compile for many values

    def _compile(self) -> re.Pattern[str]:
        whole = {s for value in self._values for s in _spellings(value)}
        heads: set[str] = set()
        tails: set[str] = set()
        for value in self._values:
            for size in range(_MIN_FRAGMENT, len(value)):
                heads.add(value[:size])
                tails.add(value[-size:])
        ellipsis = "|".join(re.escape(e) for e in _ELLIPSES)
        # Longest first, so a secret containing another is masked whole.
        parts = [_alternatives(whole)]
        if heads:
            parts.append(f"(?:{_alternatives(heads)})(?={ellipsis})")
            behind = "|".join(f"(?<={re.escape(e)})" for e in _ELLIPSES)
            parts.append(f"(?:{behind})(?:{_alternatives(tails)})")
        return re.compile("|".join(parts))

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        if not self._values:
            return text
        pattern = self._pattern  # one read: add() on another thread may reset it
        if pattern is None:
            pattern = self._pattern = self._compile()
        text = pattern.sub(MASK, text)
        text = _HEADER_CREDENTIAL.sub(_mask_value, text)
        return _SCHEME_CREDENTIAL.sub(_mask_value, text)

    def finds(self, text: str) -> bool:
        """Whether *text* holds something this redactor would mask."""
        return self(text) != text

    def bytes(self, data: bytes) -> bytes:
        """Redact raw output (for example a rollback's captured stdout)."""
        if not self._values:
            return data
        return self(data.decode("utf-8", errors="replace")).encode()


def _alternatives(values: Iterable[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))


def _mask_value(match: re.Match[str]) -> str:
    if match["value"] == MASK:
        return match[0]
    prefix = match.groupdict().get("name") or ""
    return f"{prefix}{match['scheme'] or ''}{MASK}"


def secret_in_arguments(arguments: Iterable[str], redactor: Redactor) -> str | None:
    """A usage-error message if a known secret is on the command line, else ``None``.

    Command lines are readable by every local user (``/proc/*/cmdline``) and are echoed by
    CI logs and by subprocess errors, so a secret there has already leaked; say so, naming
    the argument with the secret masked.
    """
    for argument in arguments:
        if redactor.finds(argument):
            return (
                f"a secret value is on the command line (in {redactor(argument)!r}); pass "
                f"secrets through the environment variable named by token_env instead: "
                f"command lines are visible to every local user and end up in CI logs"
            )
    return None


def redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    """Mask secrets in *record*'s message, exception text and stack in place."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports that itself when emitting
        return
    masked = redactor(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if redactor.finds(text):
            # Formatters use a record's exc_text when it is set, instead of formatting again.
            record.exc_text = redactor(text)
    if record.stack_info:
        record.stack_info = redactor(record.stack_info)


class LogRedaction:
    """Redacts every log record made while installed; see :func:`install_log_redaction`."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
        self._active = True
        logging.setLogRecordFactory(self._make_record)

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._previous(*args, **kwargs)
        if self._active:
            redact_record(record, self._redactor)
        return record

    def uninstall(self) -> None:
        """Stop redacting; restore the previous record factory if nobody replaced ours."""
        self._active = False
        if logging.getLogRecordFactory() == self._make_record:
            logging.setLogRecordFactory(self._previous)


def install_log_redaction(redactor: Redactor) -> LogRedaction:
    """Redact every log record of the process, from every logger, as it is made.

    A record factory rather than a :class:`logging.Filter`: filters on a logger do not see
    records propagated from its children, and pytest adds and removes its handlers (live
    logging, ``--log-file``, the per-phase capture that feeds reports and JUnit) around each
    test, so a filter on today's handlers would miss tomorrow's. Call
    :meth:`LogRedaction.uninstall` when the run ends.
    """
    return LogRedaction(redactor)
