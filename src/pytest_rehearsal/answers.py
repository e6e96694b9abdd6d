"""What a JSON answer holds: parsing any body safely, and judging status + JSON expectations.

Pure functions shared by the health check and the release lifecycle (baseline, verify,
restore verify). A reply is whatever a server chose to send, so :func:`parse_json` never
raises for it: a body nested deeper than :data:`MAX_JSON_DEPTH` (``[[[[...``, which would
exhaust the recursion of every function that walks it) is "not JSON" like any other body
that cannot be used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "ParsedJson",
    "describe_answer",
    "json_contains",
    "judge_answer",
    "parse_json",
]

#: Deeper documents are refused: functions that walk JSON recurse once per level.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class ParsedJson:
    """A body as JSON: ``value`` when ``ok``, otherwise ``problem`` says why it is not JSON."""

    ok: bool
    value: Any = None
    problem: str = ""


def parse_json(body: bytes | str) -> ParsedJson:
    """*body* parsed as JSON, or why it cannot be (never raises)."""
    try:
        value = json.loads(body)
    except RecursionError:
        return ParsedJson(False, problem=f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    except (ValueError, TypeError):
        return ParsedJson(False, problem="not JSON")
    if _deeper_than(value, MAX_JSON_DEPTH):
        return ParsedJson(False, problem=f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return ParsedJson(True, value)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether *value* nests more than *limit* containers deep (iteratively: no recursion)."""
    level: list[Any] = [value]
    depth = 0
    while level:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for item in containers
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return False


def json_contains(actual: Any, expected: Any) -> bool:
    """Whether *actual* holds *expected* as a subset: mappings by key, recursively; else equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and json_contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected  # true is not 1
    return bool(actual == expected)


def describe_answer(status: int, expect_json: Mapping[str, Any] | None) -> str:
    """``status 200 with JSON containing {"ok": true}``: the expectation in words."""
    text = f"status {status}"
    if expect_json:
        text += f" with {describe_json(expect_json)}"
    return text


def describe_json(expect_json: Mapping[str, Any]) -> str:
    """``JSON containing {"ok": true}``: an expected JSON subset in words."""
    return f"JSON containing {json.dumps(expect_json, sort_keys=True)}"


def judge_answer(
    status: int | None, body: bytes, expect_status: int, expect_json: Mapping[str, Any] | None
) -> bool:
    """Whether a reply meets a status and JSON-subset expectation (health and rollback verify)."""
    if status != expect_status:
        return False
    if not expect_json:
        return True
    parsed = parse_json(body)
    return parsed.ok and json_contains(parsed.value, expect_json)
