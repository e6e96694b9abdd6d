"""The generic value types of ``rehearsal.yaml``: the converters any section may use.

Converters in the manner of :mod:`.config_nodes`: strings, booleans, plain decimal integers
and numbers (never YAML 1.1's octal, hex or sexagesimal readings), durations, a choice among
words (with a "did you mean"), lists (optionally of distinct values), JSON values, and the
forms a check's section takes (a mapping, ``true`` or ``false``; a list of entries or
``false``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .config_nodes import (
    BOOL,
    FLOAT,
    INT,
    NULL,
    STR,
    Context,
    Invalid,
    Recorded,
    all_or_recorded,
    join_key,
    node_kind,
    one_of,
    show_node,
    type_name,
)
from .config_yaml import clip
from .units import (
    DURATION_EXPECTED,
    MAX_DURATION_S,
    DurationTooLong,
    format_duration,
    parse_duration,
)

if TYPE_CHECKING:
    from yaml.nodes import Node

    from .config_nodes import Converter

__all__ = [
    "boolean",
    "choice",
    "duration_value",
    "entry_list",
    "int_text",
    "integer_in",
    "json_object",
    "json_value",
    "list_of",
    "non_empty_text",
    "plain_number",
    "quote_hint",
    "string",
    "switch",
    "text_or_number",
]

# PyYAML's YAML 1.1 booleans, compared lowercased.
_YAML_TRUE = frozenset({"true", "yes", "on"})
_YAML_FALSE = frozenset({"false", "no", "off"})
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

_T = TypeVar("_T")


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
