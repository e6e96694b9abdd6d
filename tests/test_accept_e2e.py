"""Accepted findings end to end (issue 15): a tracked finding does not block until its date."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from plugin_helpers import load_report, write_config, write_rollback_script

TOMORROW = (date.today() + timedelta(days=2)).isoformat()
YESTERDAY = (date.today() - timedelta(days=2)).isoformat()
# The example app's "missing-header" defect drops these three headers from every page.
MISSING = ("X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options")


def _entry(finding: str, until: str = TOMORROW, check: str = "headers[*]") -> str:
    return (
        f"  - {{check: '{check}', finding: {finding}, reason: 'tracked in WEB-{len(finding)}', "
        f"owner: '@web', until: {until}}}\n"
    )


def _rehearse(pytester: pytest.Pytester, url: str, entries: str) -> tuple[Any, dict[str, Any]]:
    write_rollback_script(pytester.path, "rollback.sh", "exit 0\n")
    write_config(
        pytester,
        "checks: {headers: {paths: [/]}, secrets: false}\n"
        "rollback: {command: ./rollback.sh}\n"
        "accept:\n" + entries,
    )
    result = pytester.runpytest(
        f"--staging-url={url}", "--rehearsal-report=r.json", "--rehearsal-summary=s.md", "-rA"
    )
    report = load_report(pytester.path / "r.json")
    return result, report


def _headers(report: dict[str, Any]) -> dict[str, Any]:
    (check,) = [c for c in report["checks"] if c["id"] == "rehearsal::headers[/]"]
    return check


def test_a_check_whose_every_finding_is_accepted_does_not_block(
    pytester: pytest.Pytester, shared_app_factory: Any
) -> None:
    url = shared_app_factory("missing-header")
    result, report = _rehearse(pytester, url, "".join(_entry(name) for name in MISSING))
    assert result.ret == 0, result.stdout.str()
    assert report["verdict"] == "ready"
    check = _headers(report)
    assert check["outcome"] == "accepted"
    assert [f["accepted"]["until"] for f in check["findings"]] == [TOMORROW] * 3
    result.stdout.fnmatch_lines(
        ["ACCEPTED rehearsal::headers[[]/[]]*", "XFAIL rehearsal::headers[[]/[]] - accepted: *"]
    )
    summary = (pytester.path / "s.md").read_text()
    assert "<details><summary>Accepted findings (3)</summary>" in summary
    assert "| `rehearsal::headers[/]` | X-Content-Type-Options: missing (expected nosniff) | " in (
        summary
    )
    assert f"| @web | {TOMORROW} |" in summary


def test_one_finding_accepted_and_another_not_still_fails_naming_the_accepted_one(
    pytester: pytest.Pytester, shared_app_factory: Any
) -> None:
    url = shared_app_factory("missing-header")
    result, report = _rehearse(pytester, url, _entry("Content-Security-Policy"))
    assert result.ret == 1
    assert report["verdict"] == "blocked"
    check = _headers(report)
    assert check["outcome"] == "failed"
    accepted = [f["rule"] for f in check["findings"] if f["accepted"]]
    assert accepted == ["Content-Security-Policy"]
    assert "Content-Security-Policy" not in check["message"].split("\n")[2]  # not a blocker
    assert "accepted" in check["message"]  # the note names the accepted finding


def test_an_expired_entry_no_longer_applies_and_says_so(
    pytester: pytest.Pytester, shared_app_factory: Any
) -> None:
    url = shared_app_factory("missing-header")
    entries = "".join(_entry(name, until=YESTERDAY) for name in MISSING)
    result, report = _rehearse(pytester, url, entries)
    assert result.ret == 1
    check = _headers(report)
    assert check["outcome"] == "failed"
    assert f"accepted until {YESTERDAY}: expired; the finding blocks again" in check["message"]


def test_an_entry_that_matches_nothing_is_a_note_in_every_report(
    pytester: pytest.Pytester, shared_app_factory: Any
) -> None:
    url = shared_app_factory()  # the good app: nothing to accept
    result, report = _rehearse(pytester, url, _entry("Content-Security-Policy"))
    assert result.ret == 0
    (note,) = report["notes"]
    assert "matched no finding: if the problem is fixed, remove the entry" in note
    assert "".join(note.split()) in "".join(result.stdout.str().split())  # wrapped, whole
    assert "matched no finding" in (pytester.path / "s.md").read_text()


def test_the_rollback_cannot_be_accepted(pytester: pytest.Pytester) -> None:
    write_config(pytester, "accept:\n" + _entry("status 3", check="rollback"))
    result = pytester.runpytest("--staging-url=http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "the rollback cannot be accepted" in result.stderr.str()


def test_a_team_s_xfail_that_says_accepted_is_not_an_accepted_finding(
    pytester: pytest.Pytester, shared_app_factory: Any
) -> None:
    # Only an accept: entry accepts; a team's xfail reason that starts with the same words is
    # a rehearsal test that did not pass: the rehearsal is incomplete, not ready.
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.rehearsal(owner="@web")
        @pytest.mark.xfail(reason="accepted: known bug")
        def test_checkout():
            assert False
        """
    )
    result, report = _rehearse(pytester, shared_app_factory(), _entry("'Server: missing'"))
    assert report["verdict"] == "incomplete", result.stdout.str()
    (record,) = [c for c in report["checks"] if c["id"].endswith("::test_checkout")]
    assert record["outcome"] == "skipped"
