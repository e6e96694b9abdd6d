"""``pytest_rehearsal.expect`` and the reason on the short summary line (issue 14)."""

from __future__ import annotations

import json
import sys

import pytest

from plugin_helpers import QUIET_CHECKS, TOKEN, TinyStaging, load_report, write_config

USER_CHECKS = """
import pytest
from pytest_rehearsal import expect


@pytest.mark.rehearsal(owner="@web")
def test_health_says_not_ok(staging):
    expect(staging.get("/health"), status=200, json={"ok": False}, headers={"X-Mode": "on"})


@pytest.mark.rehearsal(owner="@web")
def test_echo_passes(staging):
    expect(staging.get("/health"), status=200, json={"ok": True}, max_latency="5s")


@pytest.mark.rehearsal(owner="@web")
def test_a_500_that_echoes_the_token(staging):
    expect(staging.get("/echo"), status=200, contains="nothing secret")


@pytest.mark.rehearsal(owner="@web")
def test_a_header_that_should_carry_the_token(staging):
    import os

    # The finding's one-line message, the summary line's reason, quotes the token.
    expect(staging.get("/health"), headers={"X-Echo": os.environ["STAGING_TOKEN"]})
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_expect_fails_like_a_built_in_check_with_the_reason_on_the_summary_line(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
    xdist: tuple[str, ...],
) -> None:
    _, url = tiny_staging
    monkeypatch.setenv("STAGING_TOKEN", TOKEN)
    write_config(pytester, QUIET_CHECKS + "auth: {token_env: STAGING_TOKEN}\n")
    pytester.makepyfile(test_user=USER_CHECKS)
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}",
        "--no-rollback",
        "--rehearsal-report=r.json",
        "--junitxml=junit.xml",
        "-p",
        "no:cacheprovider",
        *xdist,
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            f"GET {url}/health",
            '  expected: status 200 with JSON containing {"ok": false}, X-Mode: on',
            '  got:      200 OK · {"ok":true,"version":"1.5.0"}',
            "    2 problems:",
            '    - the JSON body does not contain {"ok": false}',
            "    - X-Mode is missing, expected 'on'",
            "  retry:    safe: GET does not change staging",
        ]
    )
    for line in (  # in the order the workers finished them under xdist
        "FAILED test_user.py::test_health_says_not_ok - the JSON body does not contain*",
        "FAILED test_user.py::test_a_500_that_echoes_the_token - status 500, expected 200",
        "FAILED test_user.py::test_a_header_that_should_carry_the_token - X-Echo*",
    ):
        result.stdout.fnmatch_lines([line])
    output = result.stdout.str() + (pytester.path / "junit.xml").read_text()
    assert TOKEN not in output + (pytester.path / "r.json").read_text()
    assert 'message="status 500, expected 200"' in output  # JUnit's failure message
    checks = {c["id"]: c for c in load_report(pytester.path / "r.json")["checks"]}
    failing = checks["test_user.py::test_health_says_not_ok"]
    assert [f["rule"] for f in failing["findings"]] == ["json", "header"]
    assert checks["test_user.py::test_echo_passes"]["outcome"] == "passed"


def test_a_failed_built_in_check_shows_its_first_finding_on_the_summary_line(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    staging.health_status = 503
    write_config(pytester, QUIET_CHECKS)
    result = pytester.runpytest(f"--staging-url={url}", "--no-rollback", "--tb=no")
    assert result.ret == 1
    reason = "expected status 200, got 503 Service Unavailable"
    result.stdout.fnmatch_lines([f"FAILED rehearsal::health - {reason}*"])


def test_expect_is_importable_without_a_rehearsal_and_costs_nothing_until_used(
    pytester: pytest.Pytester,
) -> None:
    code = (
        "import sys, pytest_rehearsal; "
        "heavy = {'httpx', 'yaml', 'pytest_rehearsal.expectations'}; "
        "print(json.dumps(sorted(heavy & set(sys.modules))))"
    )
    result = pytester.run(sys.executable, "-c", "import json; " + code)
    assert json.loads(result.stdout.str()) == []
