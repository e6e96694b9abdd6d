"""``--rehearsal-plan``: every request and command is listed; none is sent or run (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_helpers import TinyStaging, write_config, write_rollback_script
from pytest_rehearsal.checks import build_checks
from pytest_rehearsal.config_loader import parse_config
from pytest_rehearsal.plan import planned_requests, render_plan
from pytest_rehearsal.settings import Settings

CONFIG = """\
checks:
  headers: false
  secrets: {paths: [/.env]}
  retry_safe: [{method: POST, path: /orders, json: {sku: A1}}]
deploy: {command: ['./rollback.sh', 'deploy'], timeout: 2m, within: 30s}
rollback:
  command: ./rollback.sh
  env: {DEPLOY_ENV: staging}
  timeout: 45s
  verify: {path: /health, track: [version], within: 20s}
  restore: ['./rollback.sh', 'forward']
  watch: {interval: 250ms}
  max_outage: 2s
"""


def test_the_plan_lists_requests_and_commands_and_sends_and_runs_nothing(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    ran = pytester.path / "ran.log"
    write_rollback_script(pytester.path, "rollback.sh", f"echo ran >> {ran}\n")
    write_config(pytester, CONFIG)
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--rehearsal-plan")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "rehearsal plan: nothing is sent and nothing is run",
            f"staging: {url} (request timeout 10 s, 2 retries of idempotent requests)",
            "  rehearsal::health (no owner)",
            "    GET /health",
            "  rehearsal::secrets[/.env] (no owner)",
            "    GET /__rehearsal_*",
            "    GET /.env",
            "  rehearsal::retry_safe[POST /orders] (no owner)",
            '    POST /orders {"sku": "A1"} [[]Idempotency-Key[]]',
            '    POST /orders {"sku": "A1"} [[]Idempotency-Key[]]',
            '    POST /orders {"sku": "A1-variant"} [[]Idempotency-Key[]]',
            "deploy, before the checks:",
            f"  command: ./rollback.sh deploy (in {pytester.path}, timeout 2 min, env DEPLOY_ENV)",
            "  then: GET /health passes the health check within 30 s",
            "rollback, after every check:",
            "  baseline: GET /health (what staging serves before the rollback)",
            f"  command: ./rollback.sh (in {pytester.path}, timeout 45 s, env DEPLOY_ENV)",
            "  verify: GET /health until status 200, version changed from the baseline, "
            "within 20 s",
            f"  restore: ./rollback.sh forward (in {pytester.path}, timeout 45 s, env DEPLOY_ENV)",
            "  restore verify: GET /health until it answers like the baseline again",
            "  watch: GET /health every 250 ms while the commands and verifies run",
            "  budgets: max_outage 2 s",
        ]
    )
    assert staging.requests == []
    assert not ran.exists()


def test_a_config_error_still_exits_4_with_a_plan_asked_for(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    write_config(pytester, "checks: {helth: {}}\n")
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--rehearsal-plan")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown key 'helth'" in result.stderr.str()


def test_actions_are_described_and_canary_credentials_masked(tmp_path: Path) -> None:
    config = parse_config(
        "checks:\n"
        "  headers: false\n"
        "  secrets: false\n"
        "  tls: {}\n"
        "  logging: {command: [journalctl, -u, app], paths: [/health]}\n",
        tmp_path / "rehearsal.yaml",
    )
    checks = {check.id: check for check in build_checks(config, "https://127.0.0.1:8443")}
    assert list(planned_requests(checks["tls"])) == [
        "TLS handshake (the certificate verified, its expiry read)",
        "TLS handshake offering at most TLSv1.1 (to be refused)",
        "then judged on what came back",
    ]
    logging = checks["logging"]
    request, read, end = planned_requests(logging)
    # The probe carries canary credentials of its own: it is not "(anonymous)".
    assert request == "GET /health?access_token=*** [X-Request-ID, Authorization]"
    assert read.startswith("run journalctl -u app (REHEARSAL_SINCE=")
    assert logging.marker in read  # type: ignore[attr-defined]
    assert end == "then judged on what came back"
    for secret in logging.secrets:
        assert secret not in request + read


def test_the_verify_line_says_the_expected_answer_as_the_rollback_does(tmp_path: Path) -> None:
    config = parse_config(
        "checks: {headers: false, secrets: false}\n"
        "rollback:\n"
        "  command: ./rollback.sh\n"
        "  verify: {path: /version, expect_status: 203, expect_json: {v: '1.4', ok: true}}\n",
        tmp_path / "rehearsal.yaml",
    )
    assert config.rollback.command is not None
    settings = Settings(
        "https://staging.example.com",
        config,
        config.rollback.command,
        False,
        0.0,
        10.0,
        None,
        None,
        None,
    )
    plan = render_plan(settings, [], [])
    assert (
        '  verify: GET /version until status 203 with JSON containing {"ok": true, "v": "1.4"}, '
        "within 60 s\n"
    ) in plan
