"""The reason on the short test summary line of a failed rehearsal test, and in JUnit.

pytest shows a failure's ``reprcrash.message`` on the ``FAILED <id> - <reason>`` line and as
the JUnit ``<failure message=...>``; for the rehearsal's failures that would be "Failed: GET
https://...", the request line. A failure with findings is shown instead with its first
finding (``X-Content-Type-Options: missing (expected nosniff)``), its full text unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .report import failure_reasons

__all__ = ["HeadlinedFailure", "headline_of"]


@dataclass(frozen=True)
class _Crash:
    """The part of a failure pytest reads for the short summary and JUnit's message."""

    message: str


class HeadlinedFailure:
    """A failure's text (``toterminal``) with a headline (``reprcrash.message``)."""

    def __init__(self, text: str, headline: str) -> None:
        self.text = text
        self.reprcrash = _Crash(headline)

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def headline_of(text: str, findings: Sequence[Mapping[str, Any]]) -> str:
    """The first of the failure's reasons (:func:`.report.failure_reasons`): its first
    finding not accepted, else the first line of *text*."""
    return next(iter(failure_reasons(findings, text.strip(), most_lines=1)), "")
