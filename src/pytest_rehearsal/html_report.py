"""pytest-html: the rehearsal's columns (Owner, Expected, Rollback note) and its verdict on top.

Registered by the engine on the controller only when pytest-html is installed and active;
it implements pytest-html's own hooks (``optionalhook``: nothing depends on pytest-html).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest

from .items import PROPERTY_PREFIX
from .report import RehearsalReport

__all__ = ["COLUMNS", "HtmlColumns"]

#: Column title -> the user property that holds its value.
COLUMNS = {
    "Owner": PROPERTY_PREFIX + "owner",
    "Expected": PROPERTY_PREFIX + "expect",
    "Rollback note": PROPERTY_PREFIX + "rollback_note",
}
_VERDICT_COLOURS = {"ready": "#1a7f37", "incomplete": "#9a6700", "blocked": "#cf222e"}


class HtmlColumns:
    """pytest-html hook implementations; *report* gives the final rehearsal report."""

    def __init__(self, report: Callable[[], RehearsalReport | None]) -> None:
        self._report = report

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        # After the test column (result, test, duration, links): who, what, and how to undo.
        at = min(2, len(cells))
        cells[at:at] = [f'<th class="sortable">{html.escape(title)}</th>' for title in COLUMNS]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        props = dict(report.user_properties)
        at = min(2, len(cells))
        cells[at:at] = [
            f"<td>{html.escape(str(props.get(name) or ''))}</td>" for name in COLUMNS.values()
        ]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: Any
    ) -> None:
        report = self._report()
        if report is None:
            return
        colour = _VERDICT_COLOURS[report.verdict]
        lines = [
            f'<h2 style="color: {colour}">Staging rehearsal: {html.escape(report.verdict)}</h2>'
        ]
        lines.append(f"<p>{html.escape(report.verdict_line())}</p>")
        if report.not_rehearsed:
            lines.append(f"<p>Not rehearsed: {html.escape(', '.join(report.not_rehearsed))}</p>")
        prefix[:0] = lines
