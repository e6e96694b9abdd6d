"""Hostile inputs from the team's own side: text no report can hold, patterns that never end,
durations that overflow, report paths that are not files. Each is a whole pytest run.

Refusals are usage errors (exit 4) before any request or command; text that cannot be
encoded still reaches every report.
"""

from __future__ import annotations

import fnmatch
import os

import pytest
from hostile_support import TOKEN, rehearse

from conftest import Hostile

DEAD_URL = "http://127.0.0.1:9"  # never contacted: each refusal comes first


def _usage_error(pytester: pytest.Pytester, config: str, *args: str) -> str:
    """Run with *config* as ``rehearsal.yaml``; assert exit 4 and return stderr."""
    (pytester.path / "rehearsal.yaml").write_text(config, encoding="utf-8")
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(
        f"--staging-url={DEAD_URL}", "-p", "no:cacheprovider", *args, timeout=60
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    return result.stderr.str()


def test_a_production_pattern_that_backtracks_is_refused_before_any_request(
    pytester: pytest.Pytester,
) -> None:
    """Issue 11.7: this pattern against a hostile Location never ended and ignored SIGTERM."""
    stderr = _usage_error(
        pytester, "production: ['^https?://([a-z0-9]+-?)+\\.prod\\.example\\.com']\n"
    )
    assert "rehearsal.yaml:1:14: production[0]: pattern can backtrack catastrophically" in stderr
    assert "end each repeated part at a character the part cannot contain" in stderr


def test_a_lone_surrogate_in_the_config_is_refused_at_its_line(pytester: pytest.Pytester) -> None:
    """Issue 11.6: ``"/\\ud800"`` used to crash the report writer with a raw traceback."""
    stderr = _usage_error(pytester, 'checks:\n  health: {path: "/\\ud800"}\n')
    assert "rehearsal.yaml:2:18: checks.health.path: a lone surrogate is not text" in stderr


def test_an_endless_duration_on_the_command_line_is_refused(pytester: pytest.Pytester) -> None:
    """Issue 11.10: 999...9h used to be accepted, then every request hit an OverflowError."""
    stderr = _usage_error(pytester, "checks: {headers: false}\n", "--staging-timeout=999999999999h")
    assert "--staging-timeout: expected a duration of at most 24 h, got '999999999999h'" in stderr


def test_a_symlinked_report_path_is_refused_and_its_target_untouched(
    pytester: pytest.Pytester,
) -> None:
    """Issue 11.16: the report used to replace whatever the path named (/dev/null, as root)."""
    target = pytester.path / "elsewhere.json"
    target.write_text("keep me")
    (pytester.path / "report.json").symlink_to(target)
    stderr = _usage_error(pytester, "checks: {headers: false}\n", "--rehearsal-report=report.json")
    assert (
        "--rehearsal-report: the path exists and is a symbolic link, not a regular file" in stderr
    )
    assert (pytester.path / "report.json").is_symlink()
    assert target.read_text() == "keep me"


UNDECODABLE_FAILURE = """
import os
import pytest

@pytest.mark.rehearsal(owner="@web")
def test_undecodable():
    assert False, os.fsdecode(b"x-\\xff")
"""


def test_a_failure_message_that_is_not_text_reaches_every_report(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.6: a user test failing with ``os.fsdecode(b"x-\\xff")`` ("x-\\udcff") used to
    end in a raw traceback from the report writer: no JSON report, no summary, no JUnit."""
    # pytest prints the message's byte 0xff raw, which pytester cannot decode: escape it.
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8:backslashreplace")
    run = rehearse(pytester, hostile.url, "/health", user_tests=UNDECODABLE_FAILURE)
    assert run.ret == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.report["verdict"] == "blocked"
    (entry,) = [c for c in run.report["checks"] if c["id"].endswith("test_undecodable")]
    assert entry["outcome"] == "failed"
    assert "AssertionError: x-\udcff" in entry["message"]  # JSON's escape reads back as is
    assert "x-\\udcff" in run.summary
    assert "x-#xDCFF" in run.junit or "x-\\udcff" in run.junit
    run.assert_no_secret(TOKEN)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_as_summary_path_is_refused_without_blocking(pytester: pytest.Pytester) -> None:
    """Opening a FIFO for writing blocks until a reader comes: the run must not get there."""
    os.mkfifo(pytester.path / "summary.md")
    stderr = _usage_error(pytester, "checks: {headers: false}\n", "--rehearsal-summary=summary.md")
    assert "--rehearsal-summary: the path exists and is a named pipe (FIFO)" in stderr


def test_unusable_tokens_are_one_usage_error_naming_every_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.13 and 11.4: ``STAGING_TOKEN=lock`` turned "blocked" into "b***ed"; a
    newline from ``$(cat file)`` leaked; only the first missing variable was named."""
    monkeypatch.setenv("STAGING_TOKEN", "lock")
    monkeypatch.setenv("OPS_TOKEN", TOKEN + "\n")
    monkeypatch.delenv("VIEWER_TOKEN", raising=False)
    config = (
        "auth: {token_env: STAGING_TOKEN}\n"
        "checks:\n"
        "  permissions:\n"
        "    roles: {viewer: {token_env: VIEWER_TOKEN}, ops: {token_env: OPS_TOKEN}}\n"
    )
    stderr = _usage_error(pytester, config)
    for line in [
        "ERROR: environment variable STAGING_TOKEN is shorter than 8 characters; *",
        "environment variable VIEWER_TOKEN is not set; *(named by roles.viewer.token_env)",
        "environment variable OPS_TOKEN has whitespace around its value (a newline from "
        "$(cat file)?); strip it: a token is one word (named by roles.ops.token_env)",
    ]:
        assert any(fnmatch.fnmatch(have, line) for have in stderr.splitlines()), line
    assert TOKEN not in stderr
    assert "lock" not in stderr
