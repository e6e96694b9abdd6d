"""The schema of ``rehearsal.yaml``: each section's keys, types and rules, into frozen config.

:func:`load_config` reads the file strictly (:mod:`.config_yaml`), then validates the node tree
section by section with the converters of :mod:`.config_nodes`, collecting every problem so
that all are reported together, one per line, as ``<file>:<line>:<col>: <key path>: <problem>;
found <value>, expected <what>``. URLs, commands and production patterns are validated here too,
for the command line and the environment as well as for the file. ``${NAME}`` references in
string values are replaced first (:func:`.config_nodes.interpolate`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .accept import refusal
from .checks import BUILTIN
from .config import (
    TLS_VERSIONS,
    AcceptEntry,
    AuthConfig,
    ChecksConfig,
    ConfigError,
    Defaults,
    DeployConfig,
    HeadersCheckConfig,
    HeadersPathConfig,
    HealthCheckConfig,
    InputEntry,
    LoggingCheckConfig,
    Meta,
    PermissionsCheckConfig,
    RehearsalConfig,
    RetrySafeEntry,
    RoleConfig,
    RollbackConfig,
    SecretsCheckConfig,
    TlsCheckConfig,
    UploadsCheckConfig,
    VerifyConfig,
    WatchConfig,
)
from .config_nodes import (
    HIDDEN,
    NULL,
    STR,
    Context,
    Invalid,
    MappingReader,
    Recorded,
    all_or_recorded,
    boolean,
    choice,
    duration_value,
    entry_list,
    integer_in,
    interpolate,
    join_key,
    json_object,
    json_value,
    list_of,
    node_kind,
    non_empty_text,
    one_of,
    section,
    show_node,
    string,
    switch,
    text_or_number,
    type_name,
)
from .config_yaml import MAX_CONFIG_BYTES, TAG, clip, compose, read_config_text
from .problems import format_problem
from .redact import MASK
from .regex_safety import REWRITE_HINT, backtracking_problem
from .units import SIZE_EXPECTED, format_duration, format_size, parse_size

if TYPE_CHECKING:
    from yaml.nodes import Node

    from .config_nodes import Converter

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_PRODUCTION_TEXT",
    "check_production",
    "load_config",
    "parse_config",
    "production_match",
    "split_command",
    "validate_staging_url",
]


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_ROLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?")
_BAD_PATH_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Query parameters and options that carry credentials; the same words redact.mask_url masks.
_CREDENTIAL_WORD = re.compile(r"token|key|secret|passw|auth|sig", re.IGNORECASE)
_SECRET_OPTION = re.compile(r"--?[\w-]*(?:token|password|passwd|secret|api[-_]?key)", re.I)

_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_UPLOAD_METHODS = ("POST", "PUT", "PATCH")
_PROFILES = ("auto", "html", "api")
_KEY_FORMATS = ("quoted", "bare")
# The small upload probe is 1 KiB, and its multipart framing (about 200 bytes plus the field
# name, up to 4 bytes a character once encoded) must fit in it: upload_probe.send_upload
# raises ValueError for a body smaller than its framing.
_MIN_UPLOAD_BYTES = 1024
_MAX_FIELD_CHARS = 128
_META_KEYS = ("owner", "expect", "rollback_note")

_URL_EXPECTED = "an http:// or https:// URL with a host, such as https://staging.example.com"
_PATH_EXPECTED = "a path starting with '/', such as /health"
_COMMAND_EXPECTED = (
    "a command as a list of arguments or a string, such as ['./deploy.sh', 'rollback']"
)
# What a shell would read as an operator; a string command is never run by one.
_SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", "<", ">", ">>"})
_NO_SHELL_EXPECTED = "a script that does it, or the list form such as ['./deploy.sh', 'rollback']"
_TRACK_EXPECTED = "dotted paths into the JSON body, such as version or build.sha"
_MIN_WATCH_INTERVAL = 0.1  # each poll is a request to staging
_UPLOAD_FLOOR = f"at least {format_size(_MIN_UPLOAD_BYTES)}"
_UPLOAD_SIZE_EXPECTED = f"{SIZE_EXPECTED} ({_UPLOAD_FLOOR})"
_ENV_EXPECTED = "an environment variable name such as STAGING_TOKEN ([A-Za-z_][A-Za-z0-9_]*)"
_REGEX_EXPECTED = r"a Python regular expression such as '^https://api\.example\.com'"
#: Production patterns are searched in at most this much of a URL or redirect target: even
#: a pattern that passed the load-time check may take time quadratic in the text searched.
MAX_PRODUCTION_TEXT = 4096

_T = TypeVar("_T")


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> RehearsalConfig:
    """Read, parse and validate the config file at *path*.

    ``${NAME}`` in its values refers to *environ* (default: ``os.environ``). Raises
    :class:`ConfigError` naming the path when the file is missing, a directory or otherwise
    not a regular file, unreadable, larger than 64 KiB, not UTF-8, or invalid.
    """
    return parse_config(read_config_text(path), path, environ)


def parse_config(
    text: str, path: Path, environ: Mapping[str, str] | None = None
) -> RehearsalConfig:
    """Parse and validate config *text*; *path* is named in messages and anchors ``cwd``.

    ``${NAME}`` and ``${NAME:-default}`` in string values are taken from *environ* (default:
    ``os.environ``). Raises :class:`ConfigError` listing every problem found, one per line.
    """
    source = str(path)
    root = compose(text, source)

    # abspath, not resolve(): relative paths in the file are relative to where the user sees it.
    context = Context(source, Path(os.path.abspath(path)), environ)
    if root is None:
        context.record_at(1, 1, "", *_TOP_LEVEL_EMPTY)
        raise context.failure()
    interpolate(context, root)
    try:
        config = context.convert(_top_level, root, "")
    except Recorded:
        raise context.failure() from None
    if context.errors:  # an unset variable in a value that is otherwise fine
        raise context.failure()
    return config


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


def split_command(value: str | list[str], where: str) -> tuple[str, ...]:
    """Turn a command into argv: a list is taken as is, a string is split like a shell would.

    Nothing is ever run by a shell, so a string that only a shell could run (``a && b``,
    ``a | b``, ``$(...)``) is refused. Raises :class:`ConfigError` naming *where* for a shell
    operator, an unterminated quote, an empty command, an empty or non-string argument, or a
    secret passed as ``--token=...``.
    """
    try:
        if isinstance(value, str):
            return _split_string(value)
        if not isinstance(value, list):
            raise Invalid(f"wrong type ({type(value).__name__})", _COMMAND_EXPECTED)
        for index, argument in enumerate(value):
            if not isinstance(argument, str):
                raise Invalid(
                    f"argument {index + 1} is not a string",
                    "every argument a string",
                    found=clip(repr(argument)),
                )
            _check_argument(argument, index)
        if not value:
            raise Invalid("empty command", _COMMAND_EXPECTED, found="[]")
        return tuple(value)
    except Invalid as exc:
        found = exc.found if exc.found is not None else clip(repr(value))
        raise ConfigError(format_problem(where, "", exc.problem, found, exc.expected)) from None


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
            f"staging URL {clip(repr(_masked_url(url)))} matches production pattern "
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
    """Refuse a pattern that does not compile, or could backtrack catastrophically."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise Invalid(f"not a valid regular expression ({exc})", _REGEX_EXPECTED) from None
    problem = backtracking_problem(pattern)
    if problem is not None:
        # It will be searched in text a server chose (redirect targets): never let it hang.
        raise Invalid(f"pattern can backtrack catastrophically: {problem}", REWRITE_HINT)


_status = integer_in(100, 599)
_retries = integer_in(0, 100)


def _upload_size(context: Context, node: Node, keypath: str) -> int:
    value = text_or_number(node, _UPLOAD_SIZE_EXPECTED, fractions=False)
    try:
        size = parse_size(value)
    except ValueError:
        raise Invalid("not a size", _UPLOAD_SIZE_EXPECTED) from None
    if size < _MIN_UPLOAD_BYTES:
        raise Invalid("too small to hold a multipart upload", _UPLOAD_FLOOR)
    return size


def _form_field(context: Context, node: Node, keypath: str) -> str:
    value = non_empty_text(context, node, keypath)
    if len(value) > _MAX_FIELD_CHARS:
        expected = f"a form field name of at most {_MAX_FIELD_CHARS} characters"
        raise Invalid("field name too long for the upload probe", expected)
    return value


def _url_path(context: Context, node: Node, keypath: str) -> str:
    value = string(node, _PATH_EXPECTED)
    if not value.startswith("/"):
        raise Invalid("path does not start with '/'", _PATH_EXPECTED)
    if value.startswith("//"):
        # An HTTP client reads "//host/x" as another host, and would send credentials there.
        raise Invalid("path starts with '//' (read as another host)", _PATH_EXPECTED)
    if _BAD_PATH_CHARS.search(value):
        raise Invalid("path contains whitespace, backslashes or control characters", _PATH_EXPECTED)
    return value


def _method(allowed: Sequence[str]) -> Converter[str]:
    expected = f"an HTTP method, {one_of(allowed)}"

    def convert(context: Context, node: Node, keypath: str) -> str:
        value = string(node, expected).upper()
        if value not in allowed:
            raise Invalid("unsupported HTTP method", expected)
        return value

    return convert


def _header_name(context: Context, node: Node, keypath: str) -> str:
    expected = "an HTTP header name such as Authorization"
    value = string(node, expected)
    if not _HEADER_NAME.fullmatch(value):
        raise Invalid("not a valid header name", expected)
    return value


def _header_rule(context: Context, node: Node, keypath: str) -> str:
    expected = "a header name, or 'Name: value', such as X-Content-Type-Options: nosniff"
    value = string(node, expected)
    name, _, _ = value.partition(":")
    if not _HEADER_NAME.fullmatch(name.strip()):
        raise Invalid("not a valid header name", expected)
    return value


def _scheme(context: Context, node: Node, keypath: str) -> str | None:
    expected = "an auth scheme such as Bearer, or null/'' for the raw token"
    if node_kind(node) == "scalar" and node.tag == NULL:
        return None
    value = string(node, expected)
    if not value:
        return None
    if not _HEADER_NAME.fullmatch(value):
        raise Invalid("not a valid auth scheme", expected)
    return value


def _secret_env_name(context: Context, node: Node, keypath: str) -> str:
    value = string(node, _ENV_EXPECTED)
    if not _ENV_NAME.fullmatch(value):
        # Someone may have pasted the token itself here: never echo it.
        raise Invalid("not an environment variable name", _ENV_EXPECTED, found=HIDDEN)
    return value


_profile = choice(_PROFILES, "profile")
_key_format = choice(_KEY_FORMATS, "key format")


def _regex(context: Context, node: Node, keypath: str) -> str:
    value = string(node, _REGEX_EXPECTED)
    if not value:
        raise Invalid("an empty pattern matches every URL", _REGEX_EXPECTED)
    _safe_regex(value)
    return value


def _production(context: Context, node: Node, keypath: str) -> tuple[str, ...]:
    if node_kind(node) == "scalar" and node.tag == STR:
        return (_regex(context, node, keypath),)
    return list_of(_regex, "regular expressions")(context, node, keypath)


def _local_path(context: Context, node: Node, keypath: str) -> Path:
    value = non_empty_text(context, node, keypath)
    if "\x00" in value:
        raise Invalid("contains a NUL character", "a file system path")
    return Path(os.path.normpath(context.base / value))


def _staging_url(context: Context, node: Node, keypath: str) -> str:
    return _normalised_url(string(node, _URL_EXPECTED))


# ---------------------------------------------------------------------------------------------
# URLs and commands (shared by the public functions and the loader)


def _masked_url(url: str) -> str:
    """*url* with userinfo and credential-like query values replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{key}={MASK}" if _CREDENTIAL_WORD.search(key) else f"{key}={value}" if sep else key
        for key, sep, value in (item.partition("=") for item in parts.query.split("&"))
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _normalised_url(url: str) -> str:
    text = url.strip()

    def invalid(problem: str) -> Invalid:
        return Invalid(problem, _URL_EXPECTED, found=clip(repr(_masked_url(text))))

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
        if _CREDENTIAL_WORD.search(key):
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


def _check_argument(argument: str, index: int) -> None:
    if not argument:
        raise Invalid(f"argument {index + 1} is empty", "every argument a non-empty string")
    if "\x00" in argument:
        raise Invalid(
            f"argument {index + 1} contains a NUL character",
            "arguments without NUL characters",
            found=HIDDEN,
        )
    option, sep, value = argument.partition("=")
    if sep and value and _SECRET_OPTION.fullmatch(option):
        # argv is readable by every local user (/proc/*/cmdline) and shows up in error text.
        raise Invalid(
            f"argument {index + 1} passes a secret on the command line",
            "secrets passed through the environment (rollback.env or CI secret variables)",
            found=clip(repr(f"{option}={MASK}")),
        )


def _split_string(value: str) -> tuple[str, ...]:
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise Invalid(
            f"cannot split the command ({exc})",
            f"balanced quotes; or {_COMMAND_EXPECTED}",
            found=clip(repr(value)),
        ) from None
    if not argv:
        raise Invalid("empty command", _COMMAND_EXPECTED, found=clip(repr(value)))
    operator = _shell_syntax(value, argv)
    if operator is not None:
        raise Invalid(
            f"shell syntax {operator!r} in a string command, which is split into arguments "
            "and never run by a shell",
            _NO_SHELL_EXPECTED,
            found=clip(repr(value)),
        )
    for index, argument in enumerate(argv):
        _check_argument(argument, index)
    return tuple(argv)


def _shell_syntax(value: str, argv: Sequence[str]) -> str | None:
    """The shell operator written as a word of its own in *value*, or ``$(`` / a backtick."""
    for marker in ("$(", "`"):
        if marker in value:
            return marker
    try:
        # Quotes stay in non-POSIX words, so a quoted '&&' (a real argument) is not an operator.
        words = shlex.split(value, posix=False)
    except ValueError:
        words = list(argv)
    return next((word for word in words if word in _SHELL_OPERATORS), None)


def _command(context: Context, node: Node, keypath: str) -> tuple[str, ...]:
    if node_kind(node) == "scalar" and node.tag == STR:
        return _split_string(node.value)
    if node_kind(node) != "sequence":
        raise Invalid(f"wrong type ({type_name(node)})", _COMMAND_EXPECTED)
    if not node.value:
        raise Invalid("empty command", _COMMAND_EXPECTED)
    argv = [
        context.attempt(_argument(index), item, f"{keypath}[{index}]")
        for index, item in enumerate(node.value)
    ]
    return tuple(all_or_recorded(argv))


def _argument(index: int) -> Converter[str]:
    def convert(context: Context, node: Node, keypath: str) -> str:
        argument = string(node, "every argument a string")
        _check_argument(argument, index)
        return argument

    return convert


def _environment(context: Context, node: Node, keypath: str) -> dict[str, str]:
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", "a mapping of variable names to strings")
    items, ok = context.pairs(node, keypath)
    results = [
        context.attempt(_variable(key), value, join_key(keypath, name))
        for name, key, value in items
    ]
    values = all_or_recorded(results)
    if not ok:
        raise Recorded
    return dict(zip((name for name, _, _ in items), values, strict=True))


def _variable(key: Node) -> Converter[str]:
    """One ``rollback.env`` entry: *key* must be a variable name, the value a string."""

    def convert(context: Context, node: Node, keypath: str) -> str:
        # Only the text counts for a name: `ON:` is a fine variable name, not a boolean.
        name = str(key.value)
        if not _ENV_NAME.fullmatch(name):
            raise Invalid("not an environment variable name", _ENV_EXPECTED, node=key)
        if _CREDENTIAL_WORD.search(name) and not (node_kind(node) == "scalar" and node.tag == STR):
            # DB_PASSWORD: 12345678 is a secret typed unquoted: say what is wrong, not what it is.
            raise Invalid(f"wrong type ({type_name(node)})", "a string (quote it)", found=HIDDEN)
        text = string(node, "a string")
        if "\x00" in text:
            raise Invalid("contains a NUL character", "a string", found=HIDDEN)
        return text

    return convert


# ---------------------------------------------------------------------------------------------
# Sections


_paths = list_of(_url_path, "paths starting with '/'", unique=True)
_names = list_of(non_empty_text, "non-empty strings")


def _meta(mapping: MappingReader) -> Meta:
    """The owner, expected result and rollback note of an entry."""
    kwargs: dict[str, Any] = {}
    for name in _META_KEYS:
        mapping.put(kwargs, name, non_empty_text)
    return Meta(**kwargs)


def _check(
    factory: Callable[..., _T],
    fields: Mapping[str, Converter[Any]],
    required: Mapping[str, str] | None = None,
    *,
    then: Callable[[MappingReader, dict[str, Any]], None] | None = None,
) -> Converter[_T]:
    """A check's section or entry: its *fields*, then its owner, expected result and rollback
    note (``meta``); *then* judges the whole."""

    def finish(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
        kwargs["meta"] = _meta(mapping)
        if then is not None:
            then(mapping, kwargs)

    return section(factory, fields, required, more=_META_KEYS, finish=finish)


_health = _check(
    HealthCheckConfig,
    {
        "path": _url_path,
        "expect_status": _status,
        "expect_json": json_object,
        "max_latency": duration_value(positive=True),
    },
)


_header_rules = list_of(_header_rule, "header names or 'Name: value' rules")
_HEADERS_PATH_EXPECTED = (
    "a path starting with '/', or a mapping {path: ..., profile: ..., require: [...], "
    "forbid: [...]}"
)


_headers_path_entry = section(
    HeadersPathConfig,
    {"path": _url_path, "profile": _profile, "require": _header_rules, "forbid": _header_rules},
    {"path": _PATH_EXPECTED},
)


def _headers_path(context: Context, node: Node, keypath: str) -> HeadersPathConfig:
    """One ``headers.paths`` entry: a path, or a path with rules of its own."""
    if node_kind(node) == "scalar":
        return HeadersPathConfig(_url_path(context, node, keypath))
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", _HEADERS_PATH_EXPECTED)
    return _headers_path_entry(context, node, keypath)


_header_paths = list_of(
    _headers_path, f"entries, each {_HEADERS_PATH_EXPECTED}", non_empty=True, unique="path"
)


_headers = _check(
    HeadersCheckConfig,
    {
        "paths": _header_paths,
        "require": _header_rules,
        "forbid": _header_rules,
        "profile": _profile,
    },
)


_secrets = _check(SecretsCheckConfig, {"paths": _paths, "scan_bodies": boolean})


_role = section(
    RoleConfig,
    {"token_env": _secret_env_name, "denied": _paths},
    {"token_env": "the environment variable holding this role's token"},
)


def _roles(context: Context, node: Node, keypath: str) -> dict[str, RoleConfig]:
    expected = "a mapping of role names to {token_env: ..., denied: [...]}"
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", expected)
    items, ok = context.pairs(node, keypath)
    for name, key, _ in items:
        if not _ROLE_NAME.fullmatch(name):
            expected = "a role name of letters, digits, '_', '.' or '-'"
            context.record(
                key, join_key(keypath, name), "not a valid role name", show_node(key), expected
            )
            ok = False
    results = [context.attempt(_role, value, join_key(keypath, name)) for name, _, value in items]
    roles = all_or_recorded(results)
    if not ok:
        raise Recorded
    return dict(zip((name for name, _, _ in items), roles, strict=True))


def _something_to_check(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    if not mapping.failed and not kwargs.get("protected") and not kwargs.get("roles"):
        mapping.error(
            mapping.node,
            mapping.keypath,
            "nothing to check",
            show_node(mapping.node),
            "protected paths or roles (or permissions: false)",
        )


_permissions = _check(
    PermissionsCheckConfig, {"protected": _paths, "roles": _roles}, then=_something_to_check
)


_uploads = _check(
    UploadsCheckConfig,
    {
        "path": _url_path,
        "field": _form_field,
        "max_bytes": _upload_size,
        "method": _method(_UPLOAD_METHODS),
    },
    {"path": _PATH_EXPECTED, "max_bytes": _UPLOAD_SIZE_EXPECTED},
)


_ENTRY_REQUIRED = {"method": f"an HTTP method, {one_of(_HTTP_METHODS)}", "path": _PATH_EXPECTED}


_retry_safe = _check(
    RetrySafeEntry,
    {
        "method": _method(_HTTP_METHODS),
        "path": _url_path,
        "json": json_value,
        "idempotency_header": _header_name,
        "key_format": _key_format,
        "conflict_status": list_of(_status, "HTTP statuses", non_empty=True),
        "ignore_fields": _names,
    },
    _ENTRY_REQUIRED,
)


_input = _check(
    InputEntry,
    {
        "method": _method(_HTTP_METHODS),
        "path": _url_path,
        "json": json_value,
        "expect_status": _status,
        "mentions": _names,
    },
    _ENTRY_REQUIRED,
)


_logging = _check(
    LoggingCheckConfig,
    {
        "command": _command,
        "paths": list_of(_url_path, "paths starting with '/'", non_empty=True, unique=True),
        "within": duration_value(positive=True),
    },
    {"command": _COMMAND_EXPECTED},
)


_tls = _check(
    TlsCheckConfig,
    {"min_days": integer_in(0, 3650), "min_version": choice(TLS_VERSIONS, "TLS version")},
)


_checks = section(
    ChecksConfig,
    {
        "health": switch(_health, HealthCheckConfig, "path, expect_status..."),
        "headers": switch(_headers, HeadersCheckConfig, "paths, require..."),
        "secrets": switch(_secrets, SecretsCheckConfig, "paths, scan_bodies"),
        "permissions": switch(_permissions, None, "protected and/or roles"),
        "uploads": switch(_uploads, None, "path and max_bytes"),
        "retry_safe": entry_list(_retry_safe, "{method: ..., path: ...} entries"),
        "inputs": entry_list(_input, "{method: ..., path: ...} entries"),
        "logging": switch(_logging, None, "command and paths"),
        "tls": switch(_tls, TlsCheckConfig, "min_days, min_version"),
    },
)


_ACCEPT_CHECK_EXPECTED = (
    "the item id of a built-in check without 'rehearsal::', such as headers[/] "
    "('*' matches any text)"
)
_DATE_EXPECTED = "a date such as 2027-01-31 (the last day the entry applies)"
_ACCEPT_ENTRY_EXPECTED = "{check: ..., finding: ..., reason: ..., owner: ..., until: ...} entries"


def _accepted_check(context: Context, node: Node, keypath: str) -> str:
    # Node ids are copied from pytest's output, prefix included: the prefix is implied.
    value = non_empty_text(context, node, keypath).strip().removeprefix("rehearsal::")
    problem = refusal(value, BUILTIN)
    if problem is not None:
        raise Invalid(problem, _ACCEPT_CHECK_EXPECTED)
    return value


def _date(context: Context, node: Node, keypath: str) -> date:
    # Unquoted, YAML reads 2027-01-31 as a timestamp; quoted, as a string: both are fine.
    if node_kind(node) != "scalar" or node.tag not in (STR, TAG + "timestamp"):
        raise Invalid(f"wrong type ({type_name(node)})", _DATE_EXPECTED)
    text = str(node.value).strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        raise Invalid("not a valid date", _DATE_EXPECTED) from None
    raise Invalid("not a date", _DATE_EXPECTED)


def _where(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    """Where an ``accept`` entry is written, for the notes that name it."""
    kwargs["where"] = f"{mapping.context.source}:{mapping.node.start_mark.line + 1}"


_accept_entry = section(
    AcceptEntry,
    {
        "check": _accepted_check,
        "finding": non_empty_text,
        "reason": non_empty_text,
        "owner": non_empty_text,
        "until": _date,
    },
    {
        "check": _ACCEPT_CHECK_EXPECTED,
        "finding": "text the finding's message contains, such as Content-Security-Policy",
        "reason": "why the finding may ship for now, such as a ticket",
        "owner": "who fixes it, such as '@web'",
        "until": _DATE_EXPECTED,
    },
    finish=_where,
)


def _track_path(context: Context, node: Node, keypath: str) -> str:
    value = string(node, _TRACK_EXPECTED)
    if not value or any(not part.strip() for part in value.split(".")):
        raise Invalid("not a dotted path (an empty part)", _TRACK_EXPECTED)
    return value


_track = list_of(_track_path, _TRACK_EXPECTED, unique=True)


_verify = section(
    VerifyConfig,
    {
        "path": _url_path,
        "expect_status": _status,
        "expect_json": json_object,
        "track": _track,
        "within": duration_value(positive=False),
    },
)


def _watch_interval(context: Context, node: Node, keypath: str) -> float:
    seconds = duration_value(positive=True)(context, node, keypath)
    if seconds < _MIN_WATCH_INTERVAL:
        expected = f"at least {format_duration(_MIN_WATCH_INTERVAL)} (each poll is a request)"
        raise Invalid("interval too short", expected)
    return seconds


_watch = section(WatchConfig, {"interval": _watch_interval})


_restore_after = choice(("always", "verified"), "restore_after")


def _rollback_rules(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    """What holds across ``rollback``'s keys: max_outage needs the watch, and note and
    rollback_note are one field, given once."""
    if "max_outage" in mapping.keys and kwargs.get("watch", WatchConfig()) is None:
        mapping.error(
            mapping.keys["max_outage"],
            mapping.path("max_outage"),
            "max_outage needs the watch, and watch is false",
            show_node(mapping.values["max_outage"]),
            "watch: {interval: ...} (or no max_outage)",
        )
    if "note" in mapping.keys and "rollback_note" in mapping.keys:
        later = max(("note", "rollback_note"), key=lambda name: mapping.keys[name].start_mark.index)
        mapping.error(
            mapping.keys[later],
            mapping.path(later),
            "both note and rollback_note given (they are the same field)",
            show_node(mapping.values[later]),
            "only one of them",
        )
    mapping.put(kwargs, "rollback_note", non_empty_text, field="note")


_rollback = section(
    RollbackConfig,
    {
        "command": _command,
        "cwd": _local_path,
        "env": _environment,
        "timeout": duration_value(positive=True),
        "verify": switch(_verify, VerifyConfig, "path, expect_status, within"),
        "restore": _command,
        "restore_after": _restore_after,
        "watch": switch(_watch, WatchConfig, "interval"),
        "max_recovery": duration_value(positive=True),
        "max_outage": duration_value(positive=False),
        "owner": non_empty_text,
        "expect": non_empty_text,
        "note": non_empty_text,
    },
    more=("rollback_note",),
    finish=_rollback_rules,
)


_deploy = section(
    DeployConfig,
    {
        "command": _command,
        "timeout": duration_value(positive=True),
        "within": duration_value(positive=True),
        **dict.fromkeys(_META_KEYS, non_empty_text),
    },
    {"command": _COMMAND_EXPECTED},
)


_auth = section(
    AuthConfig,
    {"header": _header_name, "scheme": _scheme, "token_env": _secret_env_name},
    {"token_env": "the environment variable holding the token, such as STAGING_TOKEN"},
)


_defaults = section(
    Defaults,
    {
        "owner": non_empty_text,
        "timeout": duration_value(positive=True),
        "retries": _retries,
        "rollback_note": non_empty_text,
    },
)


_TOP_LEVEL_EXPECTED = "keys such as staging_url, checks and rollback"
_TOP_LEVEL_EMPTY = ("expected a mapping at top level", "an empty document", _TOP_LEVEL_EXPECTED)


def _file(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    kwargs["path"] = mapping.context.file


_top_level_mapping = section(
    RehearsalConfig,
    {
        "staging_url": _staging_url,
        "production": _production,
        "ca_bundle": _local_path,
        "auth": _auth,
        "defaults": _defaults,
        "checks": _checks,
        "deploy": _deploy,
        "rollback": _rollback,
        "accept": list_of(_accept_entry, _ACCEPT_ENTRY_EXPECTED),
    },
    finish=_file,
)


def _top_level(context: Context, node: Node, keypath: str) -> RehearsalConfig:
    if node_kind(node) != "mapping":
        found = "an empty document" if node.tag == NULL and not node.value else show_node(node)
        raise Invalid("expected a mapping at top level", _TOP_LEVEL_EXPECTED, found=found)
    return _top_level_mapping(context, node, keypath)
