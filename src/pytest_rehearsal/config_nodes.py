"""Validating YAML nodes against a schema: the tools every section of the config is built with.

A *converter* takes ``(context, node, keypath)`` and returns a value, or raises
:class:`Invalid`; :class:`Context` records the problem at the node's line and column, so that
every problem of a file is reported together. :class:`MappingReader` reads one mapping against
the keys valid at its place (unknown keys with a "did you mean"), and the scalar and
collection converters here are the generic ones (strings, booleans, integers, durations,
lists, JSON values). The schema itself, section by section, is in :mod:`.config_loader`.

Validating nodes rather than loaded Python values keeps each node's position and its source
text, which is how ``010`` (octal in YAML 1.1) is told apart from ``10``.

:func:`interpolate` replaces ``${NAME}`` / ``${NAME:-default}`` in every string value of the
tree before it is validated, so every converter sees the values the rehearsal will use.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .config_yaml import SHOW_WIDTH, TAG, clip
from .errors import ConfigError
from .problems import format_problem
from .units import (
    DURATION_EXPECTED,
    MAX_DURATION_S,
    DurationTooLong,
    format_duration,
    parse_duration,
)

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
    "boolean",
    "choice",
    "duration_value",
    "entry_list",
    "int_text",
    "integer_in",
    "interpolate",
    "join_key",
    "json_object",
    "json_value",
    "list_of",
    "node_kind",
    "non_empty_text",
    "one_of",
    "plain_number",
    "quote_hint",
    "section",
    "show_node",
    "string",
    "switch",
    "text_or_number",
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
# PyYAML's YAML 1.1 booleans, compared lowercased.
_YAML_TRUE = frozenset({"true", "yes", "on"})
_YAML_FALSE = frozenset({"false", "no", "off"})
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
#: Keys whose values are secrets: a message never shows them.
SECRET_KEYS = frozenset({"token", "password", "secret", "api_key", "apikey"})
HIDDEN = "a value that is not shown (it may be a secret)"
# $$, ${NAME}, ${NAME:-default}, or a "${" that is none of these (malformed).
_REFERENCE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bad>\{))"
)
_REFERENCE_EXPECTED = "${NAME} or ${NAME:-default} (NAME of letters, digits and _), or $$ for a $"

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


def interpolate(context: Context, node: Node, keypath: str = "") -> None:
    """Replace environment references in every string value under *node*, in place.

    ``${NAME}`` becomes the variable's value and ``${NAME:-default}`` its value or, when it
    is unset or empty, the default; ``$$`` is a literal ``$``; a bare ``$NAME`` (or any other
    ``$``) stays as written. Every unset variable without a default, and every malformed
    ``${``, is recorded at its value's line; keys are never interpolated.
    """
    kind = node_kind(node)
    if kind == "mapping":
        for key, value in node.value:
            name = key.value if node_kind(key) == "scalar" else "?"
            interpolate(context, value, join_key(keypath, str(name)))
    elif kind == "sequence":
        for index, item in enumerate(node.value):
            interpolate(context, item, f"{keypath}[{index}]")
    elif node.tag == STR and "$" in node.value:
        problems: list[tuple[str, str]] = []

        def replace(match: re.Match[str]) -> str:
            if match["dollar"]:
                return "$"
            name = match["name"]
            if name is None:
                problems.append(("malformed ${...} reference", _REFERENCE_EXPECTED))
                return match.group(0)
            value = context.environ.get(name)
            if match["default"] is not None:
                return value or match["default"]
            if value is None:
                problems.append(
                    (
                        f"environment variable {name} is not set",
                        f"{name} set in the environment, or a default: ${{{name}:-value}}",
                    )
                )
                return match.group(0)
            return value

        replaced = _REFERENCE.sub(replace, node.value)
        if problems:
            context.unresolved(node, keypath, list(dict.fromkeys(problems)))
        else:
            node.value = replaced


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


def quote_hint(node: Node) -> str:
    if node_kind(node) == "scalar" and node.tag != STR and node.value:
        return f" (quote it: {clip(repr(str(node.value)))})"
    return ""


def string(node: Node, expected: str = "a string") -> str:
    if node_kind(node) == "scalar" and node.tag == STR:
        value: str = node.value
        return value
    raise Invalid(f"wrong type ({type_name(node)})", expected + quote_hint(node))


def non_empty_text(context: Context, node: Node, keypath: str) -> str:
    value = string(node, "a non-empty string")
    if not value.strip():
        raise Invalid("empty string", "a non-empty string")
    return value


def boolean(context: Context, node: Node, keypath: str) -> bool:
    if node_kind(node) == "scalar" and node.tag == BOOL:
        text = str(node.value).lower()
        if text in _YAML_TRUE:
            return True
        if text in _YAML_FALSE:
            return False
        raise Invalid("not a boolean", "true or false")
    hint = " (unquoted)" if node_kind(node) == "scalar" and node.tag == STR else ""
    raise Invalid(f"wrong type ({type_name(node)})", f"true or false{hint}")


def int_text(node: Node, expected: str) -> int:
    """An int scalar in plain decimal; refuses octal-looking, hex, sexagesimal and underscores."""
    text = str(node.value)
    if _DECIMAL.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts
            raise Invalid("integer too large", expected) from None
    if _LEADING_ZERO.fullmatch(text):
        raise Invalid(
            "integer with a leading zero (YAML 1.1 reads it as octal)",
            f"{expected}, without leading zeros",
        )
    raise Invalid("not a plain decimal integer", expected)


def plain_number(node: Node, expected: str) -> int | float:
    if node.tag == INT:
        return int_text(node, expected)
    if node.tag == FLOAT and _FLOAT_TEXT.fullmatch(str(node.value)):
        return float(node.value)
    raise Invalid("not a plain decimal number", expected)


def integer_in(low: int, high: int) -> Converter[int]:
    expected = f"an integer from {low} to {high}"

    def convert(context: Context, node: Node, keypath: str) -> int:
        if node_kind(node) == "scalar" and node.tag == INT:
            value = int_text(node, expected)
            if low <= value <= high:
                return value
            raise Invalid("out of range", expected)
        if (
            node_kind(node) == "scalar"
            and node.tag == STR
            and _DECIMAL.fullmatch(node.value.strip())
        ):
            raise Invalid("a quoted string, not an integer", f"{expected} (unquoted)")
        raise Invalid(f"wrong type ({type_name(node)})", expected)

    return convert


def text_or_number(node: Node, expected: str, *, fractions: bool) -> str | int | float:
    """A quantity written as text (``30s``, ``1 MiB``) or as a plain decimal number (an
    integer, or any number when *fractions* are allowed), for a parser of both."""
    numbers = (INT, FLOAT) if fractions else (INT,)
    if node_kind(node) == "scalar" and node.tag == STR:
        text: str = node.value
        return text
    if node_kind(node) == "scalar" and node.tag in numbers:
        return plain_number(node, expected)
    raise Invalid(f"wrong type ({type_name(node)})", expected)


def duration_value(*, positive: bool) -> Converter[float]:
    expected = f"{DURATION_EXPECTED}{' (more than zero)' if positive else ''}"

    def convert(context: Context, node: Node, keypath: str) -> float:
        value = text_or_number(node, expected, fractions=True)
        try:
            seconds = parse_duration(value)
        except DurationTooLong:
            limit = format_duration(MAX_DURATION_S)
            raise Invalid(
                f"duration longer than the {limit} maximum", f"{expected}, at most {limit}"
            ) from None
        except ValueError:
            raise Invalid("not a duration", expected) from None
        if positive and seconds <= 0:
            raise Invalid("must be more than zero", expected)
        return seconds

    return convert


def choice(allowed: Sequence[str], what: str) -> Converter[str]:
    """One of the words in *allowed*; a near miss gets a "did you mean"."""
    expected = one_of(allowed)

    def convert(context: Context, node: Node, keypath: str) -> str:
        value = string(node, expected)
        if value not in allowed:
            close = difflib.get_close_matches(value.lower(), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise Invalid(f"unknown {what}{hint}", expected)
        return value

    return convert


def all_or_recorded(results: list[tuple[_T] | None]) -> list[_T]:
    """The values of successful :meth:`Context.attempt` calls, or :class:`Recorded`."""
    values = [result[0] for result in results if result is not None]
    if len(values) != len(results):
        raise Recorded
    return values


# ---------------------------------------------------------------------------------------------
# Collections


def list_of(
    converter: Converter[_T], what: str, *, non_empty: bool = False, unique: bool | str = False
) -> Converter[tuple[_T, ...]]:
    """A list converter; *unique* refuses a repeated value (it would repeat an item id).

    *unique* may name a field instead (``"path"``): then no two items may have the same value
    of that field, written as the item's key of that name or, in an item written as a plain
    value, as the item itself.
    """
    expected = f"a list of {what}"
    field = unique if isinstance(unique, str) else None
    label = f"{field} " if field else ""

    def convert(context: Context, node: Node, keypath: str) -> tuple[_T, ...]:
        if node_kind(node) != "sequence":
            raise Invalid(f"wrong type ({type_name(node)})", expected)
        if non_empty and not node.value:
            raise Invalid("empty list", f"{expected}, at least one")
        results = []
        first_lines: dict[object, int] = {}
        for index, item in enumerate(node.value):
            where = f"{keypath}[{index}]"
            result = context.attempt(converter, item, where)
            if unique and result is not None:
                value = getattr(result[0], field) if field else result[0]
                at = _field_node(item, field) if field else item
                if value in first_lines:
                    problem = (
                        f"duplicate {label}{clip(repr(value))} (first at line {first_lines[value]})"
                    )
                    keyed = where if at is item else f"{where}.{field}"
                    context.record(
                        at, keyed, problem, show_node(at), f"each {field or 'value'} at most once"
                    )
                    result = None
                else:
                    first_lines[value] = at.start_mark.line + 1
            results.append(result)
        return tuple(all_or_recorded(results))

    return convert


def _field_node(item: Node, field: str) -> Node:
    """Where an item's *field* is written: the value of its key *field*, or the item itself."""
    if node_kind(item) == "mapping":
        for key, value in item.value:
            if node_kind(key) == "scalar" and key.value == field:
                found: Node = value
                return found
    return item


def json_value(context: Context, node: Node, keypath: str) -> Any:
    """Any JSON-compatible value, as plain Python (dict, list, str, int, float, bool, None)."""
    expected = "a JSON-compatible value (mapping, list, string, number, true/false or null)"
    kind = node_kind(node)
    if kind == "mapping":
        items, ok = context.pairs(node, keypath)
        result: dict[str, Any] = {}
        for name, key, value in items:
            if key.tag != STR:
                raise Invalid(
                    "JSON object keys must be strings",
                    f"a string key (quote it: {clip(repr(name))})",
                    node=key,
                    keypath=join_key(keypath, name),
                )
            result[name] = context.convert(json_value, value, join_key(keypath, name))
        if not ok:
            raise Recorded
        return result
    if kind == "sequence":
        return [
            context.convert(json_value, item, f"{keypath}[{index}]")
            for index, item in enumerate(node.value)
        ]
    if node.tag == STR:
        return node.value
    if node.tag == NULL:
        return None
    if node.tag == BOOL:
        return boolean(context, node, keypath)
    if node.tag in (INT, FLOAT):
        number = plain_number(node, expected)
        if isinstance(number, float) and number in (float("inf"), float("-inf")):
            raise Invalid("number too large for JSON", expected)
        return number
    raise Invalid(f"wrong type ({type_name(node)})", expected + quote_hint(node))


def json_object(context: Context, node: Node, keypath: str) -> dict[str, Any]:
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", "a mapping of expected keys and values")
    result: dict[str, Any] = json_value(context, node, keypath)
    return result


def switch(
    build: Converter[_T], default: Callable[[], _T] | None, what: str
) -> Converter[_T | None]:
    """A check that may be a mapping, ``false`` (off) or, when it has defaults, ``true``."""
    expected = (
        f"a mapping with {what}, true or false" if default else f"a mapping with {what}, or false"
    )

    def convert(context: Context, node: Node, keypath: str) -> _T | None:
        if node_kind(node) == "scalar" and node.tag == BOOL:
            if not boolean(context, node, keypath):
                return None
            if default is not None:
                return default()
            raise Invalid("true is not enough here: this check needs settings", expected)
        if node_kind(node) != "mapping":
            raise Invalid(f"wrong type ({type_name(node)})", expected)
        return build(context, node, keypath)

    return convert


def entry_list(converter: Converter[_T], what: str) -> Converter[tuple[_T, ...]]:
    """A list of check entries; ``false`` or ``[]`` means none."""
    as_list = list_of(converter, what)

    def convert(context: Context, node: Node, keypath: str) -> tuple[_T, ...]:
        if node_kind(node) == "scalar" and node.tag == BOOL and not boolean(context, node, keypath):
            return ()
        if node_kind(node) != "sequence":
            raise Invalid(f"wrong type ({type_name(node)})", f"a list of {what}, or false")
        return as_list(context, node, keypath)

    return convert
