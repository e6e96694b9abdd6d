"""pytest-html gains the rehearsal's columns and its verdict (issue 14), parsed as HTML."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from plugin_helpers import QUIET_CHECKS, TinyStaging, write_config, write_rollback_script


class _Report(HTMLParser):
    """The table headers, the rows' cells and the text of the pytest-html page.

    pytest-html 4 renders its rows from JSON kept in ``data-jsonblob``; that is read too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.blob: dict[str, object] = {}
        self.text: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_th = tag == "th"
        for name, value in attrs:
            if name == "data-jsonblob" and value:
                self.blob = json.loads(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th and data.strip():
            self.headers.append(data.strip())
        self.text.append(data)


def test_the_html_report_has_owner_expected_and_rollback_note_and_the_verdict(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    write_rollback_script(pytester.path, "rollback.sh", "exit 0\n")
    write_config(
        pytester,
        QUIET_CHECKS.replace(
            "checks:\n",
            "checks:\n  health: {owner: '@platform', rollback_note: 'nothing to undo'}\n",
        )
        + "rollback: {command: ./rollback.sh, owner: '@oncall'}\n",
    )
    result = pytester.runpytest(
        f"--staging-url={url}", "--html=report.html", "--self-contained-html"
    )
    assert result.ret == 0
    page = _Report()
    page.feed((pytester.path / "report.html").read_text())
    for column in ("Owner", "Expected", "Rollback note"):
        assert column in page.headers
    rows = json.dumps(page.blob)
    for value in ("@platform", "nothing to undo", "@oncall"):
        assert value in rows
    assert "GET /health answers status 200" in rows
    text = " ".join(page.text)
    assert "Staging rehearsal: ready" in text
    assert "verdict: ready — 1 of 1 checks passed, rollback passed" in text
