"""``--rehearsal-plan``: every request and command is listed; none is sent or run (issue 14)."""

from __future__ import annotations

import pytest

from plugin_helpers import TinyStaging, write_config, write_rollback_script

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
