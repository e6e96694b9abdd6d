"""Secrets against hostile inputs (cases 10, 38, 40; 36/37 are in ``test_redact.py`` and
``test_hostile_rehearsal.py``, 39 in every rehearsal of this suite: its rollback echoes the
token).
"""

from __future__ import annotations

import pytest
from hostile_support import TOKEN, Run, rehearse

from conftest import Hostile

USER_LOGS = """
import logging
import os

def test_logs(staging):
    logging.getLogger("app.client").warning("calling staging with %s", os.environ["STAGING_TOKEN"])
    assert staging.get("/health").status_code == 200
"""
LOG_ARGS = ("--log-cli-level=INFO", "--log-file=run.log", "--log-file-level=DEBUG")
# What the engine is asked to do at start (see the report): here done by a conftest.
INSTALL_LOG_REDACTION = """
import os

from pytest_rehearsal.redact import Redactor, install_log_redaction

def pytest_configure(config):
    config._log_redaction = install_log_redaction(Redactor([os.environ["STAGING_TOKEN"]]))

def pytest_unconfigure(config):
    config._log_redaction.uninstall()
"""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://user:{TOKEN}@127.0.0.1:1/", "found 'http://***@127.0.0.1:1/'"),
        (f"http://127.0.0.1:1/?api_key={TOKEN}", "found 'http://127.0.0.1:1/?api_key=***'"),
    ],
    ids=["userinfo", "query"],
)
def test_credentials_in_the_staging_url_are_refused_and_never_shown(
    pytester: pytest.Pytester, token_env: str, url: str, shown: str
) -> None:
    """Case 10."""
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "secrets only come from the environment" in err
    assert shown in err
    assert TOKEN not in result.stdout.str() + err


def _assert_logs_masked(run: Run, log_file: str) -> None:
    assert "calling staging with ***" in run.stdout  # live logging, on the terminal
    assert "calling staging with ***" in log_file
    assert TOKEN not in log_file
    run.assert_no_secret()


def test_installed_log_redaction_covers_live_logging_and_log_files(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Case 38, with the redaction installed as the engine is asked to install it."""
    run = rehearse(
        pytester,
        hostile.url,
        "/health",
        *LOG_ARGS,
        user_tests=USER_LOGS,
        conftest=INSTALL_LOG_REDACTION,
    )
    assert run.ret == 0, run.stdout
    _assert_logs_masked(run, (pytester.path / "run.log").read_text())


def test_the_engine_redacts_live_logging_and_log_files(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Case 38 as users get it: nothing but the plugin installed."""
    run = rehearse(pytester, hostile.url, "/health", *LOG_ARGS, user_tests=USER_LOGS)
    assert run.ret == 0, run.stdout
    _assert_logs_masked(run, (pytester.path / "run.log").read_text())


def test_a_secret_on_the_command_line_is_a_usage_error(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Case 40: argv is world-readable; a known secret there is refused, shown masked."""
    run = rehearse(pytester, hostile.url, "/health", f"--rollback-command=./rollback.sh {TOKEN}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "a secret value is on the command line (in '--rollback-command=./rollback.sh ***')"
    ) in run.stderr
    assert TOKEN not in run.stdout + run.stderr
