"""``pytest_rehearsal.expect``: custom checks that speak the built-in checks' language.

A test marked ``@pytest.mark.rehearsal`` can assert with plain ``assert``, but then its failure
says only what Python saw. :func:`expect` judges a response from the ``staging`` fixture the
way the built-in checks judge theirs, and fails the test with the same message (what was
requested, what was expected, what came back, whether a retry is safe), secrets masked, and
its findings in the JSON report::

    from pytest_rehearsal import expect

    @pytest.mark.rehearsal(owner="@web")
    def test_search(staging):
        response = staging.get("/search", params={"q": "shoes"})
        expect(response, status=200, json={"ok": True}, max_latency="500ms")

Imported only when used: it needs no more than the response object it is given.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest

from .answers import describe_answer, describe_json, json_contains, parse_json
from .checks._base import Probe, Reply, finding
from .findings import Finding, render
from .redact import mask_url
from .text import excerpt
from .units import format_duration, format_elapsed, parse_duration

__all__ = ["ExpectationFailed", "expect"]


class _Request(Protocol):
    method: str
    url: Any


class Response(Protocol):
    """What :func:`expect` reads of a response (an ``httpx.Response`` has all of it)."""

    status_code: int
    reason_phrase: str
    content: bytes

    @property
    def headers(self) -> Any: ...

    @property
    def request(self) -> _Request: ...

    @property
    def elapsed(self) -> Any: ...


class ExpectationFailed(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """The failure :func:`expect` raises: a test failure whose findings reach the reports."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        super().__init__(render(findings), pytrace=False)
        self.findings = findings


def expect(
    response: Response,
    *,
    status: int | None = None,
    json: Mapping[str, Any] | None = None,
    max_latency: str | float | None = None,
    headers: Mapping[str, str] | None = None,
    contains: str | None = None,
) -> None:
    """Fail the test unless *response* meets every expectation given; all are reported.

    - *status*: the status code it must have;
    - *json*: a subset the JSON body must contain (mappings by key, recursively);
    - *max_latency*: the most it may have taken (``"500ms"``, ``"2s"`` or seconds);
    - *headers*: headers it must carry, with these values (names case-insensitive);
    - *contains*: text the body must contain.
    """
    reply = _reply(response)
    limit = parse_duration(max_latency) if max_latency is not None else None
    wanted = _expectation(status, json, limit, headers, contains)
    problems: list[tuple[str, str]] = []
    if status is not None and response.status_code != status:
        problems.append(("status", f"status {response.status_code}, expected {status}"))
    if json is not None:
        parsed = parse_json(response.content)
        if not parsed.ok:
            problems.append(("json", f"the body is {parsed.problem}, expected JSON"))
        elif not json_contains(parsed.value, json):
            problems.append(("json", f"the JSON body does not contain {_json_text(json)}"))
    if limit is not None and reply.elapsed > limit:
        took, most = format_elapsed(reply.elapsed), format_duration(limit)
        problems.append(("too-slow", f"answered after {took}, slower than {most}"))
    for name, value in (headers or {}).items():
        seen = reply.header(name)
        if seen is None or seen.strip() != value:
            shown = "missing" if seen is None else repr(excerpt(seen, 80))
            problems.append(("header", f"{name} is {shown}, expected {value!r}"))
    if contains is not None and contains not in reply.text:
        problems.append(("contains", f"the body does not contain {contains!r}"))
    if problems:
        raise ExpectationFailed(
            tuple(
                finding(reply, wanted, rule=rule, message=message, itemized=True)
                for rule, message in problems
            )
        )


def _expectation(
    status: int | None,
    json: Mapping[str, Any] | None,
    limit: float | None,
    headers: Mapping[str, str] | None,
    contains: str | None,
) -> str:
    """Every expectation given, in words: ``status 200 with JSON containing {...}, ...``."""
    parts = []
    if status is not None:
        parts.append(describe_answer(status, json))
    elif json is not None:
        parts.append(describe_json(json))
    if limit is not None:
        parts.append(f"within {format_duration(limit)}")
    parts += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if contains is not None:
        parts.append(f"a body containing {contains!r}")
    return ", ".join(parts) or "a response"


def _reply(response: Response) -> Reply:
    """*response* as the built-in checks see a reply (for the same "got" and retry texts)."""
    request = response.request
    url = str(request.url)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    elapsed = response.elapsed
    return Reply(
        probe=Probe(request.method, path or "/"),
        url=mask_url(url),
        status=response.status_code,
        reason=response.reason_phrase,
        headers=tuple(response.headers.multi_items()),
        body=response.content,
        elapsed=elapsed.total_seconds() if hasattr(elapsed, "total_seconds") else float(elapsed),
    )


def _json_text(value: Mapping[str, Any]) -> str:
    return jsonlib.dumps(value, sort_keys=True)
