"""Validating YAML nodes against a schema: the reader every section of the config is built on.

A *converter* takes ``(context, node, keypath)`` and returns a value, or raises
:class:`Invalid`; :class:`Context` records the problem at the node's line and column, so that
every problem of a file is reported together. :class:`MappingReader` reads one mapping against
the keys valid at its place (unknown keys with a "did you mean"), and :func:`section` makes a
converter of a mapping from a table of its keys and their converters. The generic converters
(strings, booleans, integers, durations, lists, JSON values) are in :mod:`.config_types`; the
schema itself, section by section, is in the ``config_*`` modules that :mod:`.config_loader`
names.

Validating nodes rather than loaded Python values keeps each node's position and its source
text, which is how ``010`` (octal in YAML 1.1) is told apart from ``10``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .config_yaml import SHOW_WIDTH, TAG, clip
from .errors import ConfigError
from .problems import format_problem

if TYPE_CHECKING:
    from typing import TypeAlias

    from yaml.nodes import Node

__all__ = [
    "BOOL",
    "FLOAT",
    "HIDDEN",
    "INT",
    "NULL",
    "SECRET_KEYS",
    "STR",
    "Context",
    "Converter",
    "Invalid",
    "MappingReader",
    "Recorded",
    "all_or_recorded",
    "join_key",
    "node_kind",
    "one_of",
    "section",
    "show_node",
    "type_name",
]

_MAX_REPORTED = 20
STR, INT, FLOAT, BOOL, NULL = (TAG + name for name in ("str", "int", "float", "bool", "null"))
_TAG_NAMES = {
    STR: "a string",
    INT: "an integer",
    FLOAT: "a number",
    BOOL: "a boolean",
    NULL: "null",
    TAG + "timestamp": "a date",
    TAG + "merge": "a merge key",
    TAG + "value": "a value key",
}
#: Keys whose values are secrets: a message never shows them.
SECRET_KEYS = frozenset({"token", "password", "secret", "api_key", "apikey"})
HIDDEN = "a value that is not shown (it may be a secret)"

_T = TypeVar("_T")

if TYPE_CHECKING:
    Converter: TypeAlias = Callable[["Context", Node, str], _T]


class Invalid(Exception):
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


class Recorded(Exception):
    """Errors have been recorded below this value; it cannot be built."""


def node_kind(node: Node) -> str:
    """``scalar``, ``sequence`` or ``mapping``."""
    kind: str = getattr(node, "id", "")
    return kind


def type_name(node: Node) -> str:
    kind = node_kind(node)
    if kind == "mapping":
        return "a mapping"
    if kind == "sequence":
        return "a list"
    return _TAG_NAMES.get(node.tag, f"a value tagged {node.tag}")


def _render(node: Node) -> str:
    """The node as the user wrote it; mappings show keys only, so no value leaks by accident."""
    kind = node_kind(node)
    if kind == "mapping":
        keys = [key.value if node_kind(key) == "scalar" else "?" for key, _ in node.value]
        return "{" + ", ".join(f"{key}: ..." for key in keys) + "}"
    if kind == "sequence":
        parts: list[str] = []
        for child in node.value:
            parts.append(_render(child))
            if sum(len(part) for part in parts) > SHOW_WIDTH:
                parts.append("...")
                break
        return "[" + ", ".join(parts) + "]"
    if node.tag == STR:
        return repr(node.value)
    if node.tag == NULL:
        return "null"
    return str(node.value)


def show_node(node: Node) -> str:
    return clip(_render(node))


def one_of(names: Sequence[str]) -> str:
    return "one of: " + ", ".join(names)


class Context:
    """Collects every problem of one file, so that all of them are reported at once.

    *environ* (default ``os.environ``) is what ``${NAME}`` in the file's values refers to.
    """

    def __init__(self, source: str, file: Path, environ: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.file = file
        self.base = file.parent
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.errors: list[tuple[int, int, str]] = []
        # Values whose ${NAME} could not be replaced: what else is wrong with them is moot.
        self._unresolved: set[int] = set()

    def record_at(
        self, line: int, column: int, keypath: str, problem: str, found: str, expected: str
    ) -> None:
        message = format_problem(
            f"{self.source}:{line}:{column}", keypath, problem, found, expected
        )
        self.errors.append((line, column, message))

    def record(self, node: Node, keypath: str, problem: str, found: str, expected: str) -> None:
        if id(node) in self._unresolved:
            return
        mark = node.start_mark
        self.record_at(mark.line + 1, mark.column + 1, keypath, problem, found, expected)

    def convert(self, converter: Converter[_T], node: Node, keypath: str) -> _T:
        """Run *converter*; a problem it raises is recorded and becomes :class:`Recorded`."""
        try:
            return converter(self, node, keypath)
        except Invalid as exc:
            self.record_invalid(exc, node, keypath)
            raise Recorded from None

    def attempt(self, converter: Converter[_T], node: Node, keypath: str) -> tuple[_T] | None:
        """Like :meth:`convert`, but ``None`` (problem recorded) instead of raising."""
        try:
            return (self.convert(converter, node, keypath),)
        except Recorded:
            return None

    def record_invalid(self, exc: Invalid, node: Node, keypath: str) -> None:
        at = exc.node if exc.node is not None else node
        found = exc.found if exc.found is not None else show_node(at)
        self.record(at, exc.keypath or keypath, exc.problem, found, exc.expected)

    def pairs(self, node: Node, keypath: str) -> tuple[list[tuple[str, Node, Node]], bool]:
        """The (name, key node, value node) of a mapping; duplicates and odd keys recorded."""
        items: list[tuple[str, Node, Node]] = []
        first_lines: dict[str, int] = {}
        ok = True
        for key, value in node.value:
            if node_kind(key) != "scalar":
                self.record(key, keypath, "keys must be plain names", show_node(key), "a name")
                ok = False
                continue
            name: str = key.value
            where = join_key(keypath, name)
            if name in first_lines:
                found = HIDDEN if name.lower() in SECRET_KEYS else show_node(value)
                problem = f"duplicate key {clip(repr(name))} (first at line {first_lines[name]})"
                self.record(key, where, problem, found, "each key at most once")
                ok = False
                continue
            first_lines[name] = key.start_mark.line + 1
            items.append((name, key, value))
        return items, ok

    def unresolved(self, node: Node, keypath: str, problems: Sequence[tuple[str, str]]) -> None:
        """Record each ``(problem, expected)`` of *node*'s references, then mute the node."""
        for problem, expected in problems:
            self.record(node, keypath, problem, show_node(node), expected)
        self._unresolved.add(id(node))

    def failure(self) -> ConfigError:
        ordered = [message for _, _, message in sorted(self.errors, key=lambda e: e[:2])]
        unique = list(dict.fromkeys(ordered))
        if len(unique) > _MAX_REPORTED:
            rest = len(unique) - _MAX_REPORTED
            unique = [*unique[:_MAX_REPORTED], f"{self.source}: ... and {rest} more problems"]
        return ConfigError("\n".join(unique))


def join_key(keypath: str, name: str) -> str:
    return f"{keypath}.{name}" if keypath else name


class MappingReader:
    """One YAML mapping, read against the keys that are valid at its place in the schema."""

    def __init__(
        self,
        context: Context,
        node: Node,
        keypath: str,
        keys: Sequence[str],
        required: Mapping[str, str] | None = None,
    ) -> None:
        if node_kind(node) != "mapping":
            raise Invalid(f"wrong type ({type_name(node)})", f"a mapping (keys: {', '.join(keys)})")
        self.context = context
        self.node = node
        self.keypath = keypath
        self.values: dict[str, Node] = {}
        self.keys: dict[str, Node] = {}
        items, ok = context.pairs(node, keypath)
        self.failed = not ok
        for name, key, value in items:
            if name in keys:
                self.keys[name] = key
                self.values[name] = value
            elif name.lower() in SECRET_KEYS and "token_env" in keys:
                self.error(
                    key,
                    self.path(name),
                    "secrets only come from the environment: use token_env",
                    HIDDEN,
                    "token_env: NAME_OF_THE_VARIABLE_HOLDING_IT",
                )
            else:
                close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problem = f"unknown key {clip(repr(name))}{hint}"
                self.error(key, self.path(name), problem, clip(repr(name)), one_of(keys))
        for name, expected in (required or {}).items():
            if name not in self.values:
                self.error(
                    node, self.path(name), f"missing key {name!r}", show_node(node), expected
                )

    def path(self, name: str) -> str:
        return join_key(self.keypath, name)

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
        except Recorded:
            self.failed = True

    def build(self, factory: Callable[..., _T], kwargs: dict[str, Any]) -> _T:
        if self.failed:
            raise Recorded
        return factory(**kwargs)


def section(
    factory: Callable[..., _T],
    fields: Mapping[str, Converter[Any]],
    required: Mapping[str, str] | None = None,
    *,
    more: Sequence[str] = (),
    finish: Callable[[MappingReader, dict[str, Any]], None] | None = None,
) -> Converter[_T]:
    """A converter of a mapping into *factory*: each key of *fields* by its converter, in
    that order (the order the valid keys are listed in), then the keys *more* names, which
    *finish* reads (it may add to the keyword arguments, or record a problem of the whole).
    *required* names the keys that must be there, with what is expected of each.
    """
    keys = (*fields, *more)

    def convert(context: Context, node: Node, keypath: str) -> _T:
        mapping = MappingReader(context, node, keypath, keys, required)
        kwargs: dict[str, Any] = {}
        for name, converter in fields.items():
            mapping.put(kwargs, name, converter)
        if finish is not None:
            finish(mapping, kwargs)
        return mapping.build(factory, kwargs)

    return convert


def all_or_recorded(results: list[tuple[_T] | None]) -> list[_T]:
    """The values of successful :meth:`Context.attempt` calls, or :class:`Recorded`."""
    values = [result[0] for result in results if result is not None]
    if len(values) != len(results):
        raise Recorded
    return values
