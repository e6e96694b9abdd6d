"""The staging URL and the production patterns that guard it.

The same rules hold wherever a URL comes from (``--staging-url``, ``STAGING_URL`` or the
file's ``staging_url``): :func:`validate_staging_url` for the command line and the
environment, :func:`staging_url_value` for the file. A URL is http(s) with a host and
never carries a credential. ``production`` patterns are regular expressions that may not
backtrack catastrophically (they are searched in redirect targets a server chose);
:func:`check_production` refuses a staging URL that one of them matches, and
:func:`production_match` is asked again for every redirect.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
import warnings
from typing import TYPE_CHECKING

from .config_nodes import STR, Context, Invalid, node_kind
from .config_types import list_of, string
from .config_values import CREDENTIAL_WORD
from .config_yaml import clip
from .errors import ConfigError
from .problems import format_problem
from .redact import mask_url
from .regex_safety import REWRITE_HINT, backtracking_problem

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = [
    "MAX_PRODUCTION_TEXT",
    "check_production",
    "production_match",
    "production_patterns",
    "staging_url_value",
    "validate_staging_url",
]

_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?")
_URL_EXPECTED = "an http:// or https:// URL with a host, such as https://staging.example.com"
_REGEX_EXPECTED = r"a Python regular expression such as '^https://api\.example\.com'"
#: Production patterns are searched in at most this much of a URL or redirect target: even
#: a pattern that passed the load-time check may take time quadratic in the text searched.
MAX_PRODUCTION_TEXT = 4096


def validate_staging_url(url: str, where: str) -> str:
    """Check that *url* is an http(s) URL with a host and without credentials.

    Returns it without surrounding whitespace or trailing slash, with scheme and host lowercased.
    Raises :class:`ConfigError` naming *where* (an option, a variable, ``file:line:col``), the
    value (credentials masked as ``***``) and what was expected.
    """
    try:
        return _normalised_url(url)
    except Invalid as exc:
        raise ConfigError(
            format_problem(where, "", exc.problem, exc.found or "?", exc.expected)
        ) from None


def production_match(url: str, patterns: tuple[str, ...]) -> str | None:
    """The first production regex of *patterns* found in *url*, or ``None``.

    The patterns are searched in the URL as given and with its scheme and host lowercased (and
    each with a trailing slash), so letter case cannot slip a production host past them.
    A URL may be a redirect target a server chose: only its first
    :data:`MAX_PRODUCTION_TEXT` characters are searched, where scheme and host are.
    Patterns are validated when the config is loaded; :func:`check_production` reports bad ones.
    """
    candidates = _production_candidates(url[:MAX_PRODUCTION_TEXT])
    for pattern in patterns:
        try:
            compiled = re.compile(pattern)
        except re.error:
            continue
        if any(compiled.search(candidate) for candidate in candidates):
            return pattern
    return None


def check_production(url: str, patterns: tuple[str, ...], where: str) -> None:
    """Refuse *url* when any production regex in *patterns* (from *where*) is found in it."""
    for pattern in patterns:
        _compile_production_pattern(pattern, where)
    match = production_match(url, patterns)
    if match is not None:
        raise ConfigError(
            f"staging URL {clip(repr(mask_url(url)))} matches production pattern "
            f"'{match}' from {where}; refusing to rehearse against production (no override)"
        )


def _compile_production_pattern(pattern: str, where: str) -> None:
    try:
        _safe_regex(pattern)
    except Invalid as exc:
        raise ConfigError(
            format_problem(where, "production", exc.problem, clip(repr(pattern)), exc.expected)
        ) from None


def _safe_regex(pattern: str) -> None:
    """Refuse a pattern that does not compile, is ambiguous, or could backtrack catastrophically.

    Ambiguous: Python's parser warns about it (``[[``, ``[a--b]``: a later Python reads such
    sets otherwise). A production guard must mean one thing, and under ``-W error`` the warning
    would escape from the load as a crash.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(pattern)
            # It parses afresh (re.compile may answer from its cache, warning once per process).
            problem = backtracking_problem(pattern)
        except re.error as exc:
            raise Invalid(f"not a valid regular expression ({exc})", _REGEX_EXPECTED) from None
        except Warning as warned:
            raise Invalid(
                f"an ambiguous regular expression: Python warns '{warned}'",
                "the character escaped where it is meant literally (\\[, \\-, \\&, \\~, \\|)",
            ) from None
    if problem is not None:
        # It will be searched in text a server chose (redirect targets): never let it hang.
        raise Invalid(f"pattern can backtrack catastrophically: {problem}", REWRITE_HINT)


def _regex(context: Context, node: Node, keypath: str) -> str:
    value = string(node, _REGEX_EXPECTED)
    if not value:
        raise Invalid("an empty pattern matches every URL", _REGEX_EXPECTED)
    _safe_regex(value)
    return value


def production_patterns(context: Context, node: Node, keypath: str) -> tuple[str, ...]:
    if node_kind(node) == "scalar" and node.tag == STR:
        return (_regex(context, node, keypath),)
    return list_of(_regex, "regular expressions")(context, node, keypath)


def staging_url_value(context: Context, node: Node, keypath: str) -> str:
    return _normalised_url(string(node, _URL_EXPECTED))


def _normalised_url(url: str) -> str:
    text = url.strip()

    def invalid(problem: str) -> Invalid:
        return Invalid(problem, _URL_EXPECTED, found=clip(repr(mask_url(text))))

    if not text:
        raise invalid("empty URL")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise invalid("URL contains whitespace or control characters")
    if "://" not in text:
        raise invalid("no scheme")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018  # parsing the port is what validates it
    except ValueError as exc:
        raise invalid(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise invalid(f"unsupported scheme {clip(repr(parts.scheme))}")
    if "@" in parts.netloc:
        raise invalid("credentials in the URL: secrets only come from the environment")
    host = parts.hostname
    if not host:
        raise invalid("no host")
    if not _valid_host(host):
        raise invalid(f"invalid host {clip(repr(host))}")
    for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if CREDENTIAL_WORD.search(key):
            raise invalid(
                f"query parameter {clip(repr(key))} looks like a credential: "
                "secrets only come from the environment"
            )
    if parts.fragment:
        raise invalid("a fragment (#...) means nothing in a base URL")
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.lower(), path, parts.query, ""))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST.fullmatch(host)) and not host.startswith("-")
    return True


def _production_candidates(url: str) -> list[str]:
    forms = [url]
    try:
        parts = urllib.parse.urlsplit(url)
        forms.append(
            urllib.parse.urlunsplit(
                (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, "")
            )
        )
    except ValueError:
        forms.append(url.lower())
    forms += [form + "/" for form in forms if not form.endswith("/")]
    return list(dict.fromkeys(forms))
