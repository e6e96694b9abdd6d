"""What a check found: each separate problem as a :class:`Finding`, and the message built from them.

Pure module. A check's verdict is a list of findings, not one text: a page missing three
headers has three findings. Each finding has a stable ``rule``, a one-line ``message`` that
stands on its own (the short test summary, the acceptance of known findings and the JSON
report use it), what came back (``got``), and the :class:`Exchange` it came from: the request,
what was expected of it, and whether repeating it is safe. :func:`render` builds the full
failure message from findings, one block per request::

    GET https://staging.example.com/
      expected: the html secure-headers policy (see docs/checks.md#headers)
      got:      200 OK with 2 problems:
        - X-Content-Type-Options: missing (expected nosniff)
        - Referrer-Policy: missing (expected one of no-referrer, ...)
      retry:    safe: GET does not change staging
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Acceptance", "Exchange", "Finding", "render"]


@dataclass(frozen=True)
class Exchange:
    """A request a check made (or an action it took) and what it expected of it."""

    request: str  # "GET https://staging.example.com/health", URL already masked
    expected: str
    retry: str = ""  # whether repeating the request is safe, in words
    noun: str = "problem"  # what its itemized findings are called: "2 header problems"


@dataclass(frozen=True)
class Acceptance:
    """Why a finding does not block the release for now (an ``accept:`` entry that matched)."""

    reason: str
    owner: str
    until: str  # ISO date, the last day the entry applies

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "owner": self.owner, "until": self.until}


@dataclass(frozen=True)
class Finding:
    """One separate problem a check found.

    ``itemized`` findings of one request and one ``got`` are listed as bullets under their
    ``got:`` line (the problems of one page); otherwise the ``got:`` line says it all.
    """

    rule: str
    message: str
    got: str = ""
    exchange: Exchange | None = None
    itemized: bool = False
    accepted: Acceptance | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``findings[]`` entry of the JSON report."""
        exchange = self.exchange
        return {
            "rule": self.rule,
            "message": self.message,
            "accepted": self.accepted.to_json() if self.accepted else None,
            "request": exchange.request if exchange else None,
            "expected": exchange.expected if exchange else None,
            "got": self.got or None,
        }


def render(findings: Iterable[Finding]) -> str:
    """The failure message of *findings*: one block per request, in the order found."""
    groups: dict[tuple[Exchange | None, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.exchange, finding.got), []).append(finding)
    return "\n".join(_block(exchange, got, group) for (exchange, got), group in groups.items())


def _block(exchange: Exchange | None, got: str, group: Sequence[Finding]) -> str:
    items = list(dict.fromkeys(f.message for f in group if f.itemized))
    if len(items) == 1:
        got_line = f"{got} · {items[0]}" if got else items[0]
    elif items:
        noun = exchange.noun if exchange else "problem"
        count = f"{len(items)} {noun}{'s' if len(items) > 1 else ''}"
        if not got:
            got_line = f"{count}:"
        elif " · " in got:
            got_line = f"{got}\n    {count}:"  # the evidence (a body) first, then what is wrong
        else:
            got_line = f"{got} with {count}:"
        got_line += "".join(f"\n    - {item}" for item in items)
    else:
        got_line = got or group[0].message
    if exchange is None:
        lines = [group[0].message] if got_line != group[0].message else []
        return "\n".join([*lines, f"  got:      {got_line}"] if lines else [got_line])
    lines = [exchange.request, f"  expected: {exchange.expected}", f"  got:      {got_line}"]
    if exchange.retry:
        lines.append(f"  retry:    {exchange.retry}")
    return "\n".join(lines)
