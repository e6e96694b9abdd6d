"""Shared by the hostile suite: the token, and a full rehearsal run in a pytester subprocess.

:func:`rehearse` lays out a project (``rehearsal.yaml`` pointing the health check at a
hostile path, a rollback script that echoes the token, a conftest that records the peak RSS)
and runs pytest on it in a subprocess with every report enabled. The :class:`Run` it returns
holds each output, so a test can assert the outcome and that the token is in none of them.
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from processes import PEAK_RSS_CONFTEST
from pytest_rehearsal._credentials import Credentials
from pytest_rehearsal.checks._base import ReplyLog
from pytest_rehearsal.client import ProbeSender, make_probe_client, make_ssl_context
from pytest_rehearsal.redact import Secret

__all__ = ["CREDENTIALS", "SLACK", "TIMEOUT", "TOKEN", "Run", "probe_sender", "rehearse"]

#: The staging token of every hostile test: searched for verbatim in every output.
TOKEN = "tok_HOSTILE_SECRET_7d3e91c0b5"
CREDENTIALS = Credentials("Authorization", "Bearer", {"default": Secret(TOKEN)})
#: The staging timeout (the budget of one request) the hostile tests use, in seconds.
TIMEOUT = 2.0
#: Added to a budget in elapsed-time assertions: a hang guard, not a benchmark.
SLACK = 5.0
SUBPROCESS_TIMEOUT = 120.0
MIB = 1024 * 1024


def probe_sender(
    url: str, *, timeout: float = TIMEOUT, retries: int = 2, ca_bundle: Path | None = None
) -> ProbeSender:
    """The built-in checks' sender on *url*, as the engine builds it."""
    context = make_ssl_context(url, ca_bundle)
    return ProbeSender(
        make_probe_client(url, timeout, context),
        CREDENTIALS,
        timeout=timeout,
        retries=retries,
        log=ReplyLog(),
        ssl_context=context,
    )


@dataclass(frozen=True)
class Run:
    """One finished rehearsal subprocess and everything it wrote."""

    ret: int
    stdout: str
    stderr: str
    junit: str
    report_text: str
    summary: str
    elapsed: float
    peak_rss: int  # bytes

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_text)
        return data

    def check(self, check_id: str = "rehearsal::health") -> dict[str, Any]:
        """The JSON report's entry for *check_id*."""
        (entry,) = [c for c in self.report["checks"] if c["id"] == check_id]
        return entry

    def outputs(self) -> dict[str, str]:
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "JUnit XML": self.junit,
            "JSON report": self.report_text,
            "Markdown summary": self.summary,
        }

    def assert_no_secret(self, secret: str = TOKEN) -> None:
        """The secret is in none of the outputs (and each output exists)."""
        leaks = [name for name, text in self.outputs().items() if secret in text]
        assert not leaks, f"the token leaked into {', '.join(leaks)}"
        missing = [name for name, text in self.outputs().items() if not text and "std" not in name]
        assert not missing, f"no {', '.join(missing)} was written"


def rehearse(
    pytester: pytest.Pytester,
    url: str,
    path: str,
    *args: str,
    timeout: str = "2s",
    config: str = "",
    secrets: str = "false",
    user_tests: str | None = None,
    conftest: str = "",
    rollback: str = "{command: ./rollback.sh}",
) -> Run:
    """Rehearse against *url* with the health check on *path*; every report is written.

    *config* is appended to ``rehearsal.yaml``, *secrets* is its ``checks.secrets`` (off by
    default), *rollback* its ``rollback`` section, *conftest* is appended to the project's
    ``conftest.py``, and *user_tests* becomes ``test_user.py``.
    """
    script = pytester.path / "rollback.sh"
    script.write_text('#!/bin/sh\necho "rolling back as $STAGING_TOKEN"\n')
    script.chmod(0o755)
    (pytester.path / "rehearsal.yaml").write_text(
        "auth: {token_env: STAGING_TOKEN}\n"
        "checks:\n"
        "  headers: false\n"
        f"  secrets: {secrets}\n"
        f"  health: {{path: '{path}', expect_json: {{ok: true}}}}\n"
        f"rollback: {rollback}\n" + textwrap.dedent(config)
    )
    pytester.makeconftest(PEAK_RSS_CONFTEST + textwrap.dedent(conftest))
    if user_tests is not None:
        pytester.makepyfile(test_user=user_tests)
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}",
        f"--staging-timeout={timeout}",
        "--junitxml=junit.xml",
        "--rehearsal-report=report.json",
        "--rehearsal-summary=summary.md",
        "-rA",
        "-p",
        "no:cacheprovider",
        *args,
        timeout=SUBPROCESS_TIMEOUT,
    )
    elapsed = time.monotonic() - started

    def read(name: str) -> str:
        target = pytester.path / name
        return target.read_text(encoding="utf-8") if target.exists() else ""

    rss = read("maxrss.txt")
    return Run(
        ret=int(result.ret),
        stdout=result.stdout.str(),
        stderr=result.stderr.str(),
        junit=read("junit.xml"),
        report_text=read("report.json"),
        summary=read("summary.md"),
        elapsed=elapsed,
        peak_rss=int(rss) * 1024 if rss else 0,
    )
