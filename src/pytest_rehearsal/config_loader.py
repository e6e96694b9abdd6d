"""Reading ``rehearsal.yaml`` strictly: every mistake is a usage error that points at its line.

The file is composed into a YAML node tree by a :class:`yaml.SafeLoader` subclass that refuses
anchors, aliases, non-standard tags and deep nesting, and the tree is then validated node by node
against the schema of :mod:`pytest_rehearsal.config`. Validating nodes rather than loaded Python
values keeps each node's line and column and its source text, which is how ``010`` (octal in
YAML 1.1) is told apart from ``10``. All problems are collected and reported together, one per
line, as ``<file>:<line>:<col>: <key path>: <problem>; found <value>, expected <what>``.

``yaml`` is imported inside functions only: pytest imports the plugin on every run.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
import shlex
import stat
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .config import (
    AuthConfig,
    ChecksConfig,
    ConfigError,
    Defaults,
    HeadersCheckConfig,
    HeadersPathConfig,
    HealthCheckConfig,
    InputEntry,
    Meta,
    PermissionsCheckConfig,
    RehearsalConfig,
    RetrySafeEntry,
    RoleConfig,
    RollbackConfig,
    SecretsCheckConfig,
    UploadsCheckConfig,
    VerifyConfig,
)
from .redact import MASK
from .units import DURATION_EXPECTED, SIZE_EXPECTED, format_size, parse_duration, parse_size

if TYPE_CHECKING:
    from typing import TypeAlias

    from yaml import MarkedYAMLError, SafeLoader
    from yaml.nodes import Node

__all__ = [
    "MAX_CONFIG_BYTES",
    "check_production",
    "load_config",
    "parse_config",
    "production_match",
    "split_command",
    "validate_staging_url",
]

MAX_CONFIG_BYTES = 64 * 1024
# Deeper than any sane config; stops a "[[[[..." file from exhausting the recursive composer.
_MAX_DEPTH = 32
_MAX_REPORTED = 20
_SHOW_WIDTH = 60

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + name for name in ("str", "int", "float", "bool", "null"))
_STANDARD_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
)
_TAG_NAMES = {
    _STR: "a string",
    _INT: "an integer",
    _FLOAT: "a number",
    _BOOL: "a boolean",
    _NULL: "null",
    _TAG + "timestamp": "a date",
    _TAG + "merge": "a merge key",
    _TAG + "value": "a value key",
}
# PyYAML's YAML 1.1 booleans, compared lowercased.
_YAML_TRUE = frozenset({"true", "yes", "on"})
_YAML_FALSE = frozenset({"false", "no", "off"})

_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_ROLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?")
_BAD_PATH_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")
# Query parameters and options that carry credentials; the same words redact.mask_url masks.
_CREDENTIAL_WORD = re.compile(r"token|key|secret|passw|auth|sig", re.IGNORECASE)
_SECRET_OPTION = re.compile(r"--?[\w-]*(?:token|password|passwd|secret|api[-_]?key)", re.I)
_SECRET_KEYS = frozenset({"token", "password", "secret", "api_key", "apikey"})

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
_UPLOAD_FLOOR = f"at least {format_size(_MIN_UPLOAD_BYTES)}"
_UPLOAD_SIZE_EXPECTED = f"{SIZE_EXPECTED} ({_UPLOAD_FLOOR})"
_ENV_EXPECTED = "an environment variable name such as STAGING_TOKEN ([A-Za-z_][A-Za-z0-9_]*)"
_HIDDEN = "a value that is not shown (it may be a secret)"

_T = TypeVar("_T")

if TYPE_CHECKING:
    Converter: TypeAlias = Callable[["_Context", Node, str], _T]


class _Position(Protocol):
    """A yaml mark (pure-Python or libyaml): 0-based line and column."""

    line: int
    column: int


class _Invalid(Exception):
    """One value is wrong; the caller knows where it sits (or *node*/*keypath* say so)."""

    def __init__(
        self,
        problem: str,
        expected: str,
        *,
        found: str | None = None,
        node: Node | None = None,
        keypath: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.expected = expected
        self.found = found
        self.node = node
        self.keypath = keypath


class _Recorded(Exception):
    """Errors have been recorded below this value; it cannot be built."""


class _Refused(Exception):
    """Raised by the composer for YAML features this config refuses (aliases, tags, depth)."""

    def __init__(
        self, mark: _Position | None, keypath: str, problem: str, found: str, expected: str
    ) -> None:
        super().__init__(problem)
        self.mark = mark
        self.keypath = keypath
        self.problem = problem
        self.found = found
        self.expected = expected


# ---------------------------------------------------------------------------------------------
# Public API


def load_config(path: Path) -> RehearsalConfig:
    """Read, parse and validate the config file at *path*.

    Raises :class:`ConfigError` naming the path when the file is missing, a directory or
    otherwise not a regular file, unreadable, larger than 64 KiB, not UTF-8, or invalid.
    """
    source = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            _format(source, "", "no such file", "nothing at that path", "a YAML file")
        ) from None
    except OSError as exc:
        raise ConfigError(_os_problem(source, exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(_format(source, "", "is a directory", repr(source), "a YAML file"))
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block or never end.
        raise ConfigError(_format(source, "", "not a regular file", repr(source), "a YAML file"))
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(_os_problem(source, exc)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(_too_large(source, f"{info.st_size} bytes"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            _format(
                f"{source}:{line}:{column}",
                "",
                "not valid UTF-8",
                f"byte 0x{data[exc.start]:02x}",
                "a UTF-8 text file",
            )
        ) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> RehearsalConfig:
    """Parse and validate config *text*; *path* is named in messages and anchors ``cwd``.

    Raises :class:`ConfigError` listing every problem found, one per line.
    """
    import yaml

    source = str(path)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(_too_large(source, f"{size} bytes"))
    loader: SafeLoader | None = None
    try:
        loader = _strict_loader()(text)
        root = loader.get_single_node()
    except _Refused as exc:
        where = _where(source, exc.mark)
        raise ConfigError(
            _format(where, exc.keypath, exc.problem, exc.found, exc.expected)
        ) from None
    except yaml.MarkedYAMLError as exc:
        keypath = getattr(loader, "error_path", None) or ""
        raise ConfigError(_syntax_error(source, keypath, exc)) from None
    except yaml.reader.ReaderError as exc:
        where = _where_in_text(source, text, exc.position)
        found = f"character U+{exc.character:04X}" if isinstance(exc.character, int) else "?"
        raise ConfigError(
            _format(where, "", "special characters are not allowed", found, "printable text")
        ) from None
    finally:
        if loader is not None:
            loader.dispose()

    # abspath, not resolve(): relative paths in the file are relative to where the user sees it.
    context = _Context(source, Path(os.path.abspath(path)))
    if root is None:
        context.record_at(1, 1, "", *_TOP_LEVEL_EMPTY)
        raise context.failure()
    try:
        return context.convert(_top_level, root, "")
    except _Recorded:
        raise context.failure() from None


def validate_staging_url(url: str, where: str) -> str:
    """Check that *url* is an http(s) URL with a host and without credentials.

    Returns it without surrounding whitespace or trailing slash, with scheme and host lowercased.
    Raises :class:`ConfigError` naming *where* (an option, a variable, ``file:line:col``), the
    value (credentials masked as ``***``) and what was expected.
    """
    try:
        return _normalised_url(url)
    except _Invalid as exc:
        raise ConfigError(_format(where, "", exc.problem, exc.found or "?", exc.expected)) from None


def split_command(value: str | list[str], where: str) -> tuple[str, ...]:
    """Turn a command into argv: a list is taken as is, a string is split like a shell would.

    Nothing is ever run by a shell: ``./rollback.sh; rm -rf x`` becomes four arguments.
    Raises :class:`ConfigError` naming *where* for an unterminated quote, an empty command,
    an empty or non-string argument, or a secret passed as ``--token=...``.
    """
    try:
        if isinstance(value, str):
            return _split_string(value)
        if not isinstance(value, list):
            raise _Invalid(f"wrong type ({type(value).__name__})", _COMMAND_EXPECTED)
        for index, argument in enumerate(value):
            if not isinstance(argument, str):
                raise _Invalid(
                    f"argument {index + 1} is not a string",
                    "every argument a string",
                    found=_clip(repr(argument)),
                )
            _check_argument(argument, index)
        if not value:
            raise _Invalid("empty command", _COMMAND_EXPECTED, found="[]")
        return tuple(value)
    except _Invalid as exc:
        found = exc.found if exc.found is not None else _clip(repr(value))
        raise ConfigError(_format(where, "", exc.problem, found, exc.expected)) from None


def production_match(url: str, patterns: tuple[str, ...]) -> str | None:
    """The first production regex of *patterns* found in *url*, or ``None``.

    The patterns are searched in the URL as given and with its scheme and host lowercased (and
    each with a trailing slash), so letter case cannot slip a production host past them.
    Patterns are validated when the config is loaded; :func:`check_production` reports bad ones.
    """
    candidates = _production_candidates(url)
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
            f"staging URL {_clip(repr(_masked_url(url)))} matches production pattern "
            f"'{match}' from {where}; refusing to rehearse against production (no override)"
        )


def _compile_production_pattern(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            _format(
                where,
                "production",
                f"not a valid regular expression ({exc})",
                _clip(repr(pattern)),
                "a Python regular expression",
            )
        ) from None


# ---------------------------------------------------------------------------------------------
# Messages


def _format(where: str, keypath: str, problem: str, found: str, expected: str) -> str:
    subject = f"{keypath}: " if keypath else ""
    return f"{where}: {subject}{problem}; found {found}, expected {expected}"


def _where(source: str, mark: _Position | None) -> str:
    if mark is None:
        return f"{source}:1:1"
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _where_in_text(source: str, text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{source}:{line}:{column}"


def _too_large(source: str, size: str) -> str:
    return _format(
        source,
        "",
        f"config larger than {MAX_CONFIG_BYTES // 1024} KiB",
        size,
        f"a file of at most {MAX_CONFIG_BYTES // 1024} KiB",
    )


def _os_problem(source: str, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return _format(source, "", f"cannot read the file ({reason})", repr(source), "a readable file")


def _syntax_error(source: str, keypath: str, exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context:
        started = ""
        context_mark = exc.context_mark
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            started = f" (started at line {context_mark.line + 1})"
        problem = f"{exc.context}{started}, {problem}"
    if "'\\t'" in problem:
        expected = "spaces for indentation (YAML does not allow tabs)"
    elif "'@'" in problem or "'`'" in problem:
        expected = "a quoted value: '@' and '`' cannot start a plain YAML value"
    else:
        expected = "valid YAML (check the indentation, colons and quotes)"
    found = "unparsable text"
    return _format(_where(source, mark), keypath, f"YAML syntax error: {problem}", found, expected)


def _clip(text: str) -> str:
    return text if len(text) <= _SHOW_WIDTH else text[: _SHOW_WIDTH - 3] + "..."


def _kind(node: Node) -> str:
    """``scalar``, ``sequence`` or ``mapping``."""
    kind: str = getattr(node, "id", "")
    return kind


def _what(node: Node) -> str:
    kind = _kind(node)
    if kind == "mapping":
        return "a mapping"
    if kind == "sequence":
        return "a list"
    return _TAG_NAMES.get(node.tag, f"a value tagged {node.tag}")


def _render(node: Node) -> str:
    """The node as the user wrote it; mappings show keys only, so no value leaks by accident."""
    kind = _kind(node)
    if kind == "mapping":
        keys = [key.value if _kind(key) == "scalar" else "?" for key, _ in node.value]
        return "{" + ", ".join(f"{key}: ..." for key in keys) + "}"
    if kind == "sequence":
        parts: list[str] = []
        for child in node.value:
            parts.append(_render(child))
            if sum(len(part) for part in parts) > _SHOW_WIDTH:
                parts.append("...")
                break
        return "[" + ", ".join(parts) + "]"
    if node.tag == _STR:
        return repr(node.value)
    if node.tag == _NULL:
        return "null"
    return str(node.value)


def _show(node: Node) -> str:
    return _clip(_render(node))


def _one_of(names: Sequence[str]) -> str:
    return "one of: " + ", ".join(names)


# ---------------------------------------------------------------------------------------------
# The strict loader


@functools.cache
def _strict_loader() -> type[SafeLoader]:
    """The SafeLoader subclass, built on first use so that yaml is imported only then."""
    import yaml
    from yaml.events import AliasEvent, CollectionStartEvent, Event, NodeEvent, ScalarEvent
    from yaml.nodes import ScalarNode

    class StrictLoader(yaml.SafeLoader):
        """Composes nodes only; refuses anchors, aliases, non-standard tags and deep nesting."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.key_path: list[str] = []
            self.error_path: str | None = None

        def joined_path(self) -> str:
            return "".join(self.key_path).lstrip(".")

        def compose_node(self, parent: Node | None, index: object) -> Node | None:
            if isinstance(index, ScalarNode):
                segment = f".{index.value}"
            elif isinstance(index, int):
                segment = f"[{index}]"
            else:
                segment = ""  # the document root, or a mapping key
            self.key_path.append(segment)
            try:
                self.refuse_unsafe(self.peek_event())  # type: ignore[no-untyped-call]
                return super().compose_node(parent, index)  # type: ignore[arg-type]
            except yaml.YAMLError:
                if self.error_path is None:
                    self.error_path = self.joined_path()
                raise
            finally:
                self.key_path.pop()

        def refuse_unsafe(self, event: Event) -> None:
            mark = event.start_mark
            if isinstance(event, AliasEvent):
                raise _Refused(
                    mark,
                    self.joined_path(),
                    "aliases are not allowed (they can expand a small file into a huge one)",
                    f"*{event.anchor}",
                    "each value written out in full",
                )
            if isinstance(event, NodeEvent) and event.anchor is not None:
                raise _Refused(
                    mark,
                    self.joined_path(),
                    "anchors and aliases are not allowed",
                    f"&{event.anchor}",
                    "each value written out in full",
                )
            tag = event.tag if isinstance(event, (ScalarEvent, CollectionStartEvent)) else None
            if tag is not None and tag not in _STANDARD_TAGS:
                shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
                raise _Refused(
                    mark,
                    self.joined_path(),
                    f"tag {_clip(shown)} is not allowed",
                    _clip(repr(shown)),
                    "plain values (only the tags !!str, !!int, !!float, !!bool, !!null, "
                    "!!seq and !!map)",
                )
            if len(self.key_path) > _MAX_DEPTH:
                raise _Refused(
                    mark,
                    self.joined_path(),
                    f"nested more than {_MAX_DEPTH} levels deep",
                    "deeper nesting",
                    f"at most {_MAX_DEPTH} levels",
                )

    return StrictLoader


# ---------------------------------------------------------------------------------------------
# Validation context


class _Context:
    """Collects every problem of one file, so that all of them are reported at once."""

    def __init__(self, source: str, file: Path) -> None:
        self.source = source
        self.file = file
        self.base = file.parent
        self.errors: list[tuple[int, int, str]] = []

    def record_at(
        self, line: int, column: int, keypath: str, problem: str, found: str, expected: str
    ) -> None:
        message = _format(f"{self.source}:{line}:{column}", keypath, problem, found, expected)
        self.errors.append((line, column, message))

    def record(self, node: Node, keypath: str, problem: str, found: str, expected: str) -> None:
        mark = node.start_mark
        self.record_at(mark.line + 1, mark.column + 1, keypath, problem, found, expected)

    def convert(self, converter: Converter[_T], node: Node, keypath: str) -> _T:
        """Run *converter*; a problem it raises is recorded and becomes :class:`_Recorded`."""
        try:
            return converter(self, node, keypath)
        except _Invalid as exc:
            self.record_invalid(exc, node, keypath)
            raise _Recorded from None

    def attempt(self, converter: Converter[_T], node: Node, keypath: str) -> tuple[_T] | None:
        """Like :meth:`convert`, but ``None`` (problem recorded) instead of raising."""
        try:
            return (self.convert(converter, node, keypath),)
        except _Recorded:
            return None

    def record_invalid(self, exc: _Invalid, node: Node, keypath: str) -> None:
        at = exc.node if exc.node is not None else node
        found = exc.found if exc.found is not None else _show(at)
        self.record(at, exc.keypath or keypath, exc.problem, found, exc.expected)

    def pairs(self, node: Node, keypath: str) -> tuple[list[tuple[str, Node, Node]], bool]:
        """The (name, key node, value node) of a mapping; duplicates and odd keys recorded."""
        items: list[tuple[str, Node, Node]] = []
        first_lines: dict[str, int] = {}
        ok = True
        for key, value in node.value:
            if _kind(key) != "scalar":
                self.record(key, keypath, "keys must be plain names", _show(key), "a name")
                ok = False
                continue
            name: str = key.value
            where = _join(keypath, name)
            if name in first_lines:
                found = _HIDDEN if name.lower() in _SECRET_KEYS else _show(value)
                problem = f"duplicate key {_clip(repr(name))} (first at line {first_lines[name]})"
                self.record(key, where, problem, found, "each key at most once")
                ok = False
                continue
            first_lines[name] = key.start_mark.line + 1
            items.append((name, key, value))
        return items, ok

    def failure(self) -> ConfigError:
        ordered = [message for _, _, message in sorted(self.errors, key=lambda e: e[:2])]
        unique = list(dict.fromkeys(ordered))
        if len(unique) > _MAX_REPORTED:
            rest = len(unique) - _MAX_REPORTED
            unique = [*unique[:_MAX_REPORTED], f"{self.source}: ... and {rest} more problems"]
        return ConfigError("\n".join(unique))


def _join(keypath: str, name: str) -> str:
    return f"{keypath}.{name}" if keypath else name


class _Mapping:
    """One YAML mapping, read against the keys that are valid at its place in the schema."""

    def __init__(
        self,
        context: _Context,
        node: Node,
        keypath: str,
        keys: Sequence[str],
        required: Mapping[str, str] | None = None,
    ) -> None:
        if _kind(node) != "mapping":
            raise _Invalid(f"wrong type ({_what(node)})", f"a mapping (keys: {', '.join(keys)})")
        self.context = context
        self.keypath = keypath
        self.values: dict[str, Node] = {}
        self.keys: dict[str, Node] = {}
        items, ok = context.pairs(node, keypath)
        self.failed = not ok
        for name, key, value in items:
            if name in keys:
                self.keys[name] = key
                self.values[name] = value
            elif name.lower() in _SECRET_KEYS and "token_env" in keys:
                self.error(
                    key,
                    self.path(name),
                    "secrets only come from the environment: use token_env",
                    _HIDDEN,
                    "token_env: NAME_OF_THE_VARIABLE_HOLDING_IT",
                )
            else:
                close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problem = f"unknown key {_clip(repr(name))}{hint}"
                self.error(key, self.path(name), problem, _clip(repr(name)), _one_of(keys))
        for name, expected in (required or {}).items():
            if name not in self.values:
                self.error(node, self.path(name), f"missing key {name!r}", _show(node), expected)

    def path(self, name: str) -> str:
        return _join(self.keypath, name)

    def error(self, node: Node, keypath: str, problem: str, found: str, expected: str) -> None:
        self.context.record(node, keypath, problem, found, expected)
        self.failed = True

    def put(
        self,
        kwargs: dict[str, Any],
        name: str,
        converter: Converter[Any],
        field: str | None = None,
    ) -> None:
        """Convert the value of *name*, if present, into ``kwargs[field or name]``."""
        node = self.values.get(name)
        if node is None:
            return
        try:
            kwargs[field or name] = self.context.convert(converter, node, self.path(name))
        except _Recorded:
            self.failed = True

    def meta(self) -> Meta:
        kwargs: dict[str, Any] = {}
        for name in _META_KEYS:
            self.put(kwargs, name, _text)
        return Meta(**kwargs)

    def build(self, factory: Callable[..., _T], kwargs: dict[str, Any]) -> _T:
        if self.failed:
            raise _Recorded
        return factory(**kwargs)


# ---------------------------------------------------------------------------------------------
# Scalars


def _quote_hint(node: Node) -> str:
    if _kind(node) == "scalar" and node.tag != _STR and node.value:
        return f" (quote it: {_clip(repr(str(node.value)))})"
    return ""


def _string(node: Node, expected: str = "a string") -> str:
    if _kind(node) == "scalar" and node.tag == _STR:
        value: str = node.value
        return value
    raise _Invalid(f"wrong type ({_what(node)})", expected + _quote_hint(node))


def _text(context: _Context, node: Node, keypath: str) -> str:
    value = _string(node, "a non-empty string")
    if not value.strip():
        raise _Invalid("empty string", "a non-empty string")
    return value


def _boolean(context: _Context, node: Node, keypath: str) -> bool:
    if _kind(node) == "scalar" and node.tag == _BOOL:
        text = str(node.value).lower()
        if text in _YAML_TRUE:
            return True
        if text in _YAML_FALSE:
            return False
        raise _Invalid("not a boolean", "true or false")
    hint = " (unquoted)" if _kind(node) == "scalar" and node.tag == _STR else ""
    raise _Invalid(f"wrong type ({_what(node)})", f"true or false{hint}")


def _int_text(node: Node, expected: str) -> int:
    """An int scalar in plain decimal; refuses octal-looking, hex, sexagesimal and underscores."""
    text = str(node.value)
    if _DECIMAL.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts
            raise _Invalid("integer too large", expected) from None
    if _LEADING_ZERO.fullmatch(text):
        raise _Invalid(
            "integer with a leading zero (YAML 1.1 reads it as octal)",
            f"{expected}, without leading zeros",
        )
    raise _Invalid("not a plain decimal integer", expected)


def _number(node: Node, expected: str) -> int | float:
    if node.tag == _INT:
        return _int_text(node, expected)
    if node.tag == _FLOAT and _FLOAT_TEXT.fullmatch(str(node.value)):
        return float(node.value)
    raise _Invalid("not a plain decimal number", expected)


def _integer_in(low: int, high: int) -> Converter[int]:
    expected = f"an integer from {low} to {high}"

    def convert(context: _Context, node: Node, keypath: str) -> int:
        if _kind(node) == "scalar" and node.tag == _INT:
            value = _int_text(node, expected)
            if low <= value <= high:
                return value
            raise _Invalid("out of range", expected)
        if _kind(node) == "scalar" and node.tag == _STR and _DECIMAL.fullmatch(node.value.strip()):
            raise _Invalid("a quoted string, not an integer", f"{expected} (unquoted)")
        raise _Invalid(f"wrong type ({_what(node)})", expected)

    return convert


_status = _integer_in(100, 599)
_retries = _integer_in(0, 100)


def _duration(*, positive: bool) -> Converter[float]:
    expected = f"{DURATION_EXPECTED}{' (more than zero)' if positive else ''}"

    def convert(context: _Context, node: Node, keypath: str) -> float:
        value: str | int | float
        if _kind(node) == "scalar" and node.tag == _STR:
            value = node.value
        elif _kind(node) == "scalar" and node.tag in (_INT, _FLOAT):
            value = _number(node, expected)
        else:
            raise _Invalid(f"wrong type ({_what(node)})", expected)
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise _Invalid("not a duration", expected) from None
        if positive and seconds <= 0:
            raise _Invalid("must be more than zero", expected)
        return seconds

    return convert


def _upload_size(context: _Context, node: Node, keypath: str) -> int:
    expected = _UPLOAD_SIZE_EXPECTED
    value: str | int
    if _kind(node) == "scalar" and node.tag == _STR:
        value = node.value
    elif _kind(node) == "scalar" and node.tag == _INT:
        value = _int_text(node, expected)
    else:
        raise _Invalid(f"wrong type ({_what(node)})", expected)
    try:
        size = parse_size(value)
    except ValueError:
        raise _Invalid("not a size", expected) from None
    if size < _MIN_UPLOAD_BYTES:
        raise _Invalid("too small to hold a multipart upload", _UPLOAD_FLOOR)
    return size


def _form_field(context: _Context, node: Node, keypath: str) -> str:
    value = _text(context, node, keypath)
    if len(value) > _MAX_FIELD_CHARS:
        expected = f"a form field name of at most {_MAX_FIELD_CHARS} characters"
        raise _Invalid("field name too long for the upload probe", expected)
    return value


def _url_path(context: _Context, node: Node, keypath: str) -> str:
    value = _string(node, _PATH_EXPECTED)
    if not value.startswith("/"):
        raise _Invalid("path does not start with '/'", _PATH_EXPECTED)
    if value.startswith("//"):
        # An HTTP client reads "//host/x" as another host, and would send credentials there.
        raise _Invalid("path starts with '//' (read as another host)", _PATH_EXPECTED)
    if _BAD_PATH_CHARS.search(value):
        raise _Invalid(
            "path contains whitespace, backslashes or control characters", _PATH_EXPECTED
        )
    return value


def _method(allowed: Sequence[str]) -> Converter[str]:
    expected = f"an HTTP method, {_one_of(allowed)}"

    def convert(context: _Context, node: Node, keypath: str) -> str:
        value = _string(node, expected).upper()
        if value not in allowed:
            raise _Invalid("unsupported HTTP method", expected)
        return value

    return convert


def _header_name(context: _Context, node: Node, keypath: str) -> str:
    expected = "an HTTP header name such as Authorization"
    value = _string(node, expected)
    if not _HEADER_NAME.fullmatch(value):
        raise _Invalid("not a valid header name", expected)
    return value


def _header_rule(context: _Context, node: Node, keypath: str) -> str:
    expected = "a header name, or 'Name: value', such as X-Content-Type-Options: nosniff"
    value = _string(node, expected)
    name, _, _ = value.partition(":")
    if not _HEADER_NAME.fullmatch(name.strip()):
        raise _Invalid("not a valid header name", expected)
    return value


def _scheme(context: _Context, node: Node, keypath: str) -> str | None:
    expected = "an auth scheme such as Bearer, or null/'' for the raw token"
    if _kind(node) == "scalar" and node.tag == _NULL:
        return None
    value = _string(node, expected)
    if not value:
        return None
    if not _HEADER_NAME.fullmatch(value):
        raise _Invalid("not a valid auth scheme", expected)
    return value


def _secret_env_name(context: _Context, node: Node, keypath: str) -> str:
    value = _string(node, _ENV_EXPECTED)
    if not _ENV_NAME.fullmatch(value):
        # Someone may have pasted the token itself here: never echo it.
        raise _Invalid("not an environment variable name", _ENV_EXPECTED, found=_HIDDEN)
    return value


def _choice(allowed: Sequence[str], what: str) -> Converter[str]:
    """One of the words in *allowed*; a near miss gets a "did you mean"."""
    expected = _one_of(allowed)

    def convert(context: _Context, node: Node, keypath: str) -> str:
        value = _string(node, expected)
        if value not in allowed:
            close = difflib.get_close_matches(value.lower(), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Invalid(f"unknown {what}{hint}", expected)
        return value

    return convert


_profile = _choice(_PROFILES, "profile")
_key_format = _choice(_KEY_FORMATS, "key format")


def _regex(context: _Context, node: Node, keypath: str) -> str:
    expected = r"a Python regular expression such as '^https://api\.example\.com'"
    value = _string(node, expected)
    if not value:
        raise _Invalid("an empty pattern matches every URL", expected)
    try:
        re.compile(value)
    except re.error as exc:
        raise _Invalid(f"not a valid regular expression ({exc})", expected) from None
    return value


def _production(context: _Context, node: Node, keypath: str) -> tuple[str, ...]:
    if _kind(node) == "scalar" and node.tag == _STR:
        return (_regex(context, node, keypath),)
    return _list_of(_regex, "regular expressions")(context, node, keypath)


def _local_path(context: _Context, node: Node, keypath: str) -> Path:
    value = _text(context, node, keypath)
    if "\x00" in value:
        raise _Invalid("contains a NUL character", "a file system path")
    return Path(os.path.normpath(context.base / value))


def _staging_url(context: _Context, node: Node, keypath: str) -> str:
    return _normalised_url(_string(node, _URL_EXPECTED))


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

    def invalid(problem: str) -> _Invalid:
        return _Invalid(problem, _URL_EXPECTED, found=_clip(repr(_masked_url(text))))

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
        raise invalid(f"unsupported scheme {_clip(repr(parts.scheme))}")
    if "@" in parts.netloc:
        raise invalid("credentials in the URL: secrets only come from the environment")
    host = parts.hostname
    if not host:
        raise invalid("no host")
    if not _valid_host(host):
        raise invalid(f"invalid host {_clip(repr(host))}")
    for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if _CREDENTIAL_WORD.search(key):
            raise invalid(
                f"query parameter {_clip(repr(key))} looks like a credential: "
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
        raise _Invalid(f"argument {index + 1} is empty", "every argument a non-empty string")
    if "\x00" in argument:
        raise _Invalid(
            f"argument {index + 1} contains a NUL character",
            "arguments without NUL characters",
            found=_HIDDEN,
        )
    option, sep, value = argument.partition("=")
    if sep and value and _SECRET_OPTION.fullmatch(option):
        # argv is readable by every local user (/proc/*/cmdline) and shows up in error text.
        raise _Invalid(
            f"argument {index + 1} passes a secret on the command line",
            "secrets passed through the environment (rollback.env or CI secret variables)",
            found=_clip(repr(f"{option}={MASK}")),
        )


def _split_string(value: str) -> tuple[str, ...]:
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise _Invalid(
            f"cannot split the command ({exc})",
            f"balanced quotes; or {_COMMAND_EXPECTED}",
            found=_clip(repr(value)),
        ) from None
    if not argv:
        raise _Invalid("empty command", _COMMAND_EXPECTED, found=_clip(repr(value)))
    for index, argument in enumerate(argv):
        _check_argument(argument, index)
    return tuple(argv)


def _command(context: _Context, node: Node, keypath: str) -> tuple[str, ...]:
    if _kind(node) == "scalar" and node.tag == _STR:
        return _split_string(node.value)
    if _kind(node) != "sequence":
        raise _Invalid(f"wrong type ({_what(node)})", _COMMAND_EXPECTED)
    if not node.value:
        raise _Invalid("empty command", _COMMAND_EXPECTED)
    argv = [
        context.attempt(_argument(index), item, f"{keypath}[{index}]")
        for index, item in enumerate(node.value)
    ]
    return tuple(_all_or_recorded(argv))


def _argument(index: int) -> Converter[str]:
    def convert(context: _Context, node: Node, keypath: str) -> str:
        argument = _string(node, "every argument a string")
        _check_argument(argument, index)
        return argument

    return convert


def _all_or_recorded(results: list[tuple[_T] | None]) -> list[_T]:
    """The values of successful :meth:`_Context.attempt` calls, or :class:`_Recorded`."""
    values = [result[0] for result in results if result is not None]
    if len(values) != len(results):
        raise _Recorded
    return values


# ---------------------------------------------------------------------------------------------
# Collections


def _list_of(
    converter: Converter[_T], what: str, *, non_empty: bool = False, unique: bool = False
) -> Converter[tuple[_T, ...]]:
    """A list converter; *unique* refuses a repeated value (it would repeat an item id)."""
    expected = f"a list of {what}"

    def convert(context: _Context, node: Node, keypath: str) -> tuple[_T, ...]:
        if _kind(node) != "sequence":
            raise _Invalid(f"wrong type ({_what(node)})", expected)
        if non_empty and not node.value:
            raise _Invalid("empty list", f"{expected}, at least one")
        results = []
        first_lines: dict[object, int] = {}
        for index, item in enumerate(node.value):
            where = f"{keypath}[{index}]"
            result = context.attempt(converter, item, where)
            if unique and result is not None:
                (value,) = result
                if value in first_lines:
                    problem = f"duplicate {_clip(repr(value))} (first at line {first_lines[value]})"
                    context.record(item, where, problem, _show(item), "each value at most once")
                    result = None
                else:
                    first_lines[value] = item.start_mark.line + 1
            results.append(result)
        return tuple(_all_or_recorded(results))

    return convert


def _json_value(context: _Context, node: Node, keypath: str) -> Any:
    """Any JSON-compatible value, as plain Python (dict, list, str, int, float, bool, None)."""
    expected = "a JSON-compatible value (mapping, list, string, number, true/false or null)"
    kind = _kind(node)
    if kind == "mapping":
        items, ok = context.pairs(node, keypath)
        result: dict[str, Any] = {}
        for name, key, value in items:
            if key.tag != _STR:
                raise _Invalid(
                    "JSON object keys must be strings",
                    f"a string key (quote it: {_clip(repr(name))})",
                    node=key,
                    keypath=_join(keypath, name),
                )
            result[name] = context.convert(_json_value, value, _join(keypath, name))
        if not ok:
            raise _Recorded
        return result
    if kind == "sequence":
        return [
            context.convert(_json_value, item, f"{keypath}[{index}]")
            for index, item in enumerate(node.value)
        ]
    if node.tag == _STR:
        return node.value
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return _boolean(context, node, keypath)
    if node.tag in (_INT, _FLOAT):
        number = _number(node, expected)
        if isinstance(number, float) and number in (float("inf"), float("-inf")):
            raise _Invalid("number too large for JSON", expected)
        return number
    raise _Invalid(f"wrong type ({_what(node)})", expected + _quote_hint(node))


def _json_object(context: _Context, node: Node, keypath: str) -> dict[str, Any]:
    if _kind(node) != "mapping":
        raise _Invalid(f"wrong type ({_what(node)})", "a mapping of expected keys and values")
    result: dict[str, Any] = _json_value(context, node, keypath)
    return result


def _environment(context: _Context, node: Node, keypath: str) -> dict[str, str]:
    if _kind(node) != "mapping":
        raise _Invalid(f"wrong type ({_what(node)})", "a mapping of variable names to strings")
    items, ok = context.pairs(node, keypath)
    results = [
        context.attempt(_variable(key), value, _join(keypath, name)) for name, key, value in items
    ]
    values = _all_or_recorded(results)
    if not ok:
        raise _Recorded
    return dict(zip((name for name, _, _ in items), values, strict=True))


def _variable(key: Node) -> Converter[str]:
    """One ``rollback.env`` entry: *key* must be a variable name, the value a string."""

    def convert(context: _Context, node: Node, keypath: str) -> str:
        # Only the text counts for a name: `ON:` is a fine variable name, not a boolean.
        name = str(key.value)
        if not _ENV_NAME.fullmatch(name):
            raise _Invalid("not an environment variable name", _ENV_EXPECTED, node=key)
        if _CREDENTIAL_WORD.search(name) and not (_kind(node) == "scalar" and node.tag == _STR):
            # DB_PASSWORD: 12345678 is a secret typed unquoted: say what is wrong, not what it is.
            raise _Invalid(f"wrong type ({_what(node)})", "a string (quote it)", found=_HIDDEN)
        text = _string(node, "a string")
        if "\x00" in text:
            raise _Invalid("contains a NUL character", "a string", found=_HIDDEN)
        return text

    return convert


# ---------------------------------------------------------------------------------------------
# Sections


def _switch(
    build: Converter[_T], default: Callable[[], _T] | None, what: str
) -> Converter[_T | None]:
    """A check that may be a mapping, ``false`` (off) or, when it has defaults, ``true``."""
    expected = (
        f"a mapping with {what}, true or false" if default else f"a mapping with {what}, or false"
    )

    def convert(context: _Context, node: Node, keypath: str) -> _T | None:
        if _kind(node) == "scalar" and node.tag == _BOOL:
            if not _boolean(context, node, keypath):
                return None
            if default is not None:
                return default()
            raise _Invalid("true is not enough here: this check needs settings", expected)
        if _kind(node) != "mapping":
            raise _Invalid(f"wrong type ({_what(node)})", expected)
        return build(context, node, keypath)

    return convert


def _entries(converter: Converter[_T], what: str) -> Converter[tuple[_T, ...]]:
    """A list of check entries; ``false`` or ``[]`` means none."""
    as_list = _list_of(converter, what)

    def convert(context: _Context, node: Node, keypath: str) -> tuple[_T, ...]:
        if _kind(node) == "scalar" and node.tag == _BOOL and not _boolean(context, node, keypath):
            return ()
        if _kind(node) != "sequence":
            raise _Invalid(f"wrong type ({_what(node)})", f"a list of {what}, or false")
        return as_list(context, node, keypath)

    return convert


_paths = _list_of(_url_path, "paths starting with '/'", unique=True)
_names = _list_of(_text, "non-empty strings")


def _health(context: _Context, node: Node, keypath: str) -> HealthCheckConfig:
    keys = ("path", "expect_status", "expect_json", "max_latency", *_META_KEYS)
    mapping = _Mapping(context, node, keypath, keys)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "path", _url_path)
    mapping.put(kwargs, "expect_status", _status)
    mapping.put(kwargs, "expect_json", _json_object)
    mapping.put(kwargs, "max_latency", _duration(positive=True))
    kwargs["meta"] = mapping.meta()
    return mapping.build(HealthCheckConfig, kwargs)


_header_rules = _list_of(_header_rule, "header names or 'Name: value' rules")
_HEADERS_PATH_EXPECTED = (
    "a path starting with '/', or a mapping {path: ..., profile: ..., require: [...], "
    "forbid: [...]}"
)


def _headers_path(context: _Context, node: Node, keypath: str) -> HeadersPathConfig:
    """One ``headers.paths`` entry: a path, or a path with rules of its own."""
    if _kind(node) == "scalar":
        return HeadersPathConfig(_url_path(context, node, keypath))
    if _kind(node) != "mapping":
        raise _Invalid(f"wrong type ({_what(node)})", _HEADERS_PATH_EXPECTED)
    keys = ("path", "profile", "require", "forbid")
    mapping = _Mapping(context, node, keypath, keys, {"path": _PATH_EXPECTED})
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "path", _url_path)
    mapping.put(kwargs, "profile", _profile)
    mapping.put(kwargs, "require", _header_rules)
    mapping.put(kwargs, "forbid", _header_rules)
    return mapping.build(HeadersPathConfig, kwargs)


def _path_node(entry: Node) -> Node:
    """Where an entry's path is written: the entry itself, or its ``path`` value."""
    if _kind(entry) == "mapping":
        for key, value in entry.value:
            if _kind(key) == "scalar" and key.value == "path":
                found: Node = value
                return found
    return entry


def _header_paths(context: _Context, node: Node, keypath: str) -> tuple[HeadersPathConfig, ...]:
    """The ``headers.paths`` list: at least one entry, each path at most once."""
    expected = f"a list of entries, each {_HEADERS_PATH_EXPECTED}"
    if _kind(node) != "sequence":
        raise _Invalid(f"wrong type ({_what(node)})", expected)
    if not node.value:
        raise _Invalid("empty list", f"{expected}, at least one")
    results: list[tuple[HeadersPathConfig] | None] = []
    first_lines: dict[str, int] = {}
    for index, item in enumerate(node.value):
        where = f"{keypath}[{index}]"
        result = context.attempt(_headers_path, item, where)
        if result is not None:
            path, at = result[0].path, _path_node(item)
            if path in first_lines:
                # Two items would share the id headers[path]; one policy per path.
                problem = f"duplicate path {_clip(repr(path))} (first at line {first_lines[path]})"
                keyed = where if at is item else f"{where}.path"
                context.record(at, keyed, problem, _show(at), "each path at most once")
                result = None
            else:
                first_lines[path] = at.start_mark.line + 1
        results.append(result)
    return tuple(_all_or_recorded(results))


def _headers(context: _Context, node: Node, keypath: str) -> HeadersCheckConfig:
    keys = ("paths", "require", "forbid", "profile", *_META_KEYS)
    mapping = _Mapping(context, node, keypath, keys)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "paths", _header_paths)
    mapping.put(kwargs, "require", _header_rules)
    mapping.put(kwargs, "forbid", _header_rules)
    mapping.put(kwargs, "profile", _profile)
    kwargs["meta"] = mapping.meta()
    return mapping.build(HeadersCheckConfig, kwargs)


def _secrets(context: _Context, node: Node, keypath: str) -> SecretsCheckConfig:
    mapping = _Mapping(context, node, keypath, ("paths", "scan_bodies", *_META_KEYS))
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "paths", _paths)
    mapping.put(kwargs, "scan_bodies", _boolean)
    kwargs["meta"] = mapping.meta()
    return mapping.build(SecretsCheckConfig, kwargs)


def _role(context: _Context, node: Node, keypath: str) -> RoleConfig:
    required = {"token_env": "the environment variable holding this role's token"}
    mapping = _Mapping(context, node, keypath, ("token_env", "denied"), required)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "token_env", _secret_env_name)
    mapping.put(kwargs, "denied", _paths)
    return mapping.build(RoleConfig, kwargs)


def _roles(context: _Context, node: Node, keypath: str) -> dict[str, RoleConfig]:
    expected = "a mapping of role names to {token_env: ..., denied: [...]}"
    if _kind(node) != "mapping":
        raise _Invalid(f"wrong type ({_what(node)})", expected)
    items, ok = context.pairs(node, keypath)
    for name, key, _ in items:
        if not _ROLE_NAME.fullmatch(name):
            expected = "a role name of letters, digits, '_', '.' or '-'"
            context.record(key, _join(keypath, name), "not a valid role name", _show(key), expected)
            ok = False
    results = [context.attempt(_role, value, _join(keypath, name)) for name, _, value in items]
    roles = _all_or_recorded(results)
    if not ok:
        raise _Recorded
    return dict(zip((name for name, _, _ in items), roles, strict=True))


def _permissions(context: _Context, node: Node, keypath: str) -> PermissionsCheckConfig:
    mapping = _Mapping(context, node, keypath, ("protected", "roles", *_META_KEYS))
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "protected", _paths)
    mapping.put(kwargs, "roles", _roles)
    kwargs["meta"] = mapping.meta()
    if not mapping.failed and not kwargs.get("protected") and not kwargs.get("roles"):
        mapping.error(
            node,
            keypath,
            "nothing to check",
            _show(node),
            "protected paths or roles (or permissions: false)",
        )
    return mapping.build(PermissionsCheckConfig, kwargs)


def _uploads(context: _Context, node: Node, keypath: str) -> UploadsCheckConfig:
    keys = ("path", "field", "max_bytes", "method", *_META_KEYS)
    required = {"path": _PATH_EXPECTED, "max_bytes": _UPLOAD_SIZE_EXPECTED}
    mapping = _Mapping(context, node, keypath, keys, required)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "path", _url_path)
    mapping.put(kwargs, "field", _form_field)
    mapping.put(kwargs, "max_bytes", _upload_size)
    mapping.put(kwargs, "method", _method(_UPLOAD_METHODS))
    kwargs["meta"] = mapping.meta()
    return mapping.build(UploadsCheckConfig, kwargs)


_ENTRY_REQUIRED = {"method": f"an HTTP method, {_one_of(_HTTP_METHODS)}", "path": _PATH_EXPECTED}


def _retry_safe(context: _Context, node: Node, keypath: str) -> RetrySafeEntry:
    keys = (
        "method",
        "path",
        "json",
        "idempotency_header",
        "key_format",
        "conflict_status",
        "ignore_fields",
        *_META_KEYS,
    )
    mapping = _Mapping(context, node, keypath, keys, _ENTRY_REQUIRED)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "method", _method(_HTTP_METHODS))
    mapping.put(kwargs, "path", _url_path)
    mapping.put(kwargs, "json", _json_value)
    mapping.put(kwargs, "idempotency_header", _header_name)
    mapping.put(kwargs, "key_format", _key_format)
    mapping.put(kwargs, "conflict_status", _list_of(_status, "HTTP statuses", non_empty=True))
    mapping.put(kwargs, "ignore_fields", _names)
    kwargs["meta"] = mapping.meta()
    return mapping.build(RetrySafeEntry, kwargs)


def _input(context: _Context, node: Node, keypath: str) -> InputEntry:
    keys = ("method", "path", "json", "expect_status", "mentions", *_META_KEYS)
    mapping = _Mapping(context, node, keypath, keys, _ENTRY_REQUIRED)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "method", _method(_HTTP_METHODS))
    mapping.put(kwargs, "path", _url_path)
    mapping.put(kwargs, "json", _json_value)
    mapping.put(kwargs, "expect_status", _status)
    mapping.put(kwargs, "mentions", _names)
    kwargs["meta"] = mapping.meta()
    return mapping.build(InputEntry, kwargs)


def _checks(context: _Context, node: Node, keypath: str) -> ChecksConfig:
    keys = ("health", "headers", "secrets", "permissions", "uploads", "retry_safe", "inputs")
    mapping = _Mapping(context, node, keypath, keys)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "health", _switch(_health, HealthCheckConfig, "path, expect_status..."))
    mapping.put(kwargs, "headers", _switch(_headers, HeadersCheckConfig, "paths, require..."))
    mapping.put(kwargs, "secrets", _switch(_secrets, SecretsCheckConfig, "paths, scan_bodies"))
    mapping.put(kwargs, "permissions", _switch(_permissions, None, "protected and/or roles"))
    mapping.put(kwargs, "uploads", _switch(_uploads, None, "path and max_bytes"))
    mapping.put(kwargs, "retry_safe", _entries(_retry_safe, "{method: ..., path: ...} entries"))
    mapping.put(kwargs, "inputs", _entries(_input, "{method: ..., path: ...} entries"))
    return mapping.build(ChecksConfig, kwargs)


def _verify(context: _Context, node: Node, keypath: str) -> VerifyConfig:
    keys = ("path", "expect_status", "expect_json", "within")
    mapping = _Mapping(context, node, keypath, keys)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "path", _url_path)
    mapping.put(kwargs, "expect_status", _status)
    mapping.put(kwargs, "expect_json", _json_object)
    mapping.put(kwargs, "within", _duration(positive=False))
    return mapping.build(VerifyConfig, kwargs)


def _rollback(context: _Context, node: Node, keypath: str) -> RollbackConfig:
    keys = (
        "command",
        "cwd",
        "env",
        "timeout",
        "verify",
        "restore",
        "owner",
        "expect",
        "note",
        "rollback_note",
    )
    mapping = _Mapping(context, node, keypath, keys)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "command", _command)
    mapping.put(kwargs, "cwd", _local_path)
    mapping.put(kwargs, "env", _environment)
    mapping.put(kwargs, "timeout", _duration(positive=True))
    mapping.put(kwargs, "verify", _switch(_verify, VerifyConfig, "path, expect_status, within"))
    mapping.put(kwargs, "restore", _command)
    mapping.put(kwargs, "owner", _text)
    mapping.put(kwargs, "expect", _text)
    if "note" in mapping.keys and "rollback_note" in mapping.keys:
        later = max(("note", "rollback_note"), key=lambda name: mapping.keys[name].start_mark.index)
        mapping.error(
            mapping.keys[later],
            mapping.path(later),
            "both note and rollback_note given (they are the same field)",
            _show(mapping.values[later]),
            "only one of them",
        )
    mapping.put(kwargs, "note", _text)
    mapping.put(kwargs, "rollback_note", _text, field="note")
    return mapping.build(RollbackConfig, kwargs)


def _auth(context: _Context, node: Node, keypath: str) -> AuthConfig:
    required = {"token_env": "the environment variable holding the token, such as STAGING_TOKEN"}
    mapping = _Mapping(context, node, keypath, ("header", "scheme", "token_env"), required)
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "header", _header_name)
    mapping.put(kwargs, "scheme", _scheme)
    mapping.put(kwargs, "token_env", _secret_env_name)
    return mapping.build(AuthConfig, kwargs)


def _defaults(context: _Context, node: Node, keypath: str) -> Defaults:
    mapping = _Mapping(context, node, keypath, ("owner", "timeout", "retries", "rollback_note"))
    kwargs: dict[str, Any] = {}
    mapping.put(kwargs, "owner", _text)
    mapping.put(kwargs, "timeout", _duration(positive=True))
    mapping.put(kwargs, "retries", _retries)
    mapping.put(kwargs, "rollback_note", _text)
    return mapping.build(Defaults, kwargs)


_TOP_LEVEL_KEYS = (
    "staging_url",
    "production",
    "ca_bundle",
    "auth",
    "defaults",
    "checks",
    "rollback",
)
_TOP_LEVEL_EXPECTED = "keys such as staging_url, checks and rollback"
_TOP_LEVEL_EMPTY = ("expected a mapping at top level", "an empty document", _TOP_LEVEL_EXPECTED)


def _top_level(context: _Context, node: Node, keypath: str) -> RehearsalConfig:
    if _kind(node) != "mapping":
        found = "an empty document" if node.tag == _NULL and not node.value else _show(node)
        raise _Invalid("expected a mapping at top level", _TOP_LEVEL_EXPECTED, found=found)
    mapping = _Mapping(context, node, keypath, _TOP_LEVEL_KEYS)
    kwargs: dict[str, Any] = {"path": context.file}
    mapping.put(kwargs, "staging_url", _staging_url)
    mapping.put(kwargs, "production", _production)
    mapping.put(kwargs, "ca_bundle", _local_path)
    mapping.put(kwargs, "auth", _auth)
    mapping.put(kwargs, "defaults", _defaults)
    mapping.put(kwargs, "checks", _checks)
    mapping.put(kwargs, "rollback", _rollback)
    return mapping.build(RehearsalConfig, kwargs)
